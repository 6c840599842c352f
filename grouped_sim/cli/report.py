"""`grouped-sim report` and `grouped-sim compare`: measure a run, and put runs side by side.

This is the composition root of evaluation: it builds the judge and customer models from specs,
loads the discriminator, the SOP store (to tag stages of unlabelled turns) and the taxonomy, then
hands plain callables to `grouped_sim.metrics` / `grouped_sim.report`, which import none of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from grouped_sim.cli.common import console, label, out, progress, warn
from grouped_sim.config import DEFAULT_CUSTOMER_SPEC
from grouped_sim.errors import InputError
from grouped_sim.io import write_text_atomic

JUDGE_CACHE = "judge.jsonl"
LIKENESS_CACHE = "likeness.jsonl"


def _run_artifact(run_dir: Path, kind: str) -> Any:
    """A file of a run folder as an artifact: `simulate --resume` repairs a torn line and redoes
    lost calls (it needs the run's plan.json); without a plan only the run itself can be redone."""
    from grouped_sim.artifacts import Artifact

    if (run_dir / "plan.json").is_file():
        return Artifact(kind, f"grouped-sim simulate --resume {run_dir} (repairs a line cut short and redoes the calls that are missing)")
    return Artifact(kind, f"rerun the grouped-sim simulate command that wrote {run_dir} (it has no plan.json to resume)")


def _read_run(run_dir: Path) -> tuple[list[Any], dict[str, Any]]:
    """A run's dialogues and its run.json, checked against each other: fewer dialogues than the
    summary counts means lines were lost, and no figure should rest on what is left."""
    from grouped_sim.corpus import read_corpus

    if not run_dir.is_dir():
        raise InputError(f"{run_dir}: run folder not found (make one with `grouped-sim simulate --out DIR`)")
    path = run_dir / "dialogues.jsonl"
    if not path.is_file():
        raise InputError(f"{run_dir}: no dialogues.jsonl in this folder; is it a run folder from `grouped-sim simulate`?")
    info: dict[str, Any] = {}
    summary = run_dir / "run.json"
    if summary.is_file():
        artifact = _run_artifact(run_dir, "run summary")
        info = artifact.read_json(summary)
        artifact.require(isinstance(info, dict), summary, "expected a JSON object (the run summary `simulate` writes)")
    dialogues_artifact = _run_artifact(run_dir, "run's dialogues")
    with dialogues_artifact.reading(path):
        dialogues = read_corpus(path)
    recorded = info.get("dialogues")
    if isinstance(recorded, int) and len(dialogues) < recorded:
        raise dialogues_artifact.error(path, f"holds {len(dialogues)} of the {recorded} dialogues run.json records: lines were lost (cut short or overwritten)")
    info["dir"] = str(run_dir)
    return dialogues, info


def _read_reference(reference: Path | None, taxonomy: Any) -> list[Any] | None:
    """The real dialogues to compare with: every line valid, every stage label a node of the
    taxonomy, at least one dialogue (an empty reference would silently drop every fidelity figure)."""
    if reference is None:
        return None
    from grouped_sim.corpus import read_corpus_lines
    from grouped_sim.sop_db.store import check_stages

    lines = read_corpus_lines(reference)
    if not lines:
        raise InputError(f"{reference}: --reference holds no dialogues; the fidelity figures need real calls to compare with")
    check_stages(lines, reference, taxonomy)
    return [d for _, d in lines]


def run_warnings(dialogues: list[Any], taxonomy_ids: list[str]) -> list[str]:
    """What the figures of a run quietly leave out, said out loud (printed, kept in report.json and
    shown first in report.html)."""
    if not dialogues:
        return ["the run holds no calls (dialogues.jsonl is empty): every figure is n/a"]
    unknown: dict[str, int] = {}
    for d in dialogues:
        for t in d.turns:
            if t.sop_stage and t.sop_stage not in taxonomy_ids:
                unknown[t.sop_stage] = unknown.get(t.sop_stage, 0) + 1
    warnings = []
    if unknown:
        listed = ", ".join(f"{k} ({n})" for k, n in sorted(unknown.items()))
        warnings.append(f"turns labelled with stages outside the taxonomy are left out of SNR and coverage: {listed}")
    return warnings


def _stage_tagger(sop_db: Path | None) -> Any:
    if sop_db is None:
        return None
    from grouped_sim.sop_db.store import SOPStore

    store = SOPStore(sop_db)
    return lambda texts: [vote.stage for vote in store.tag_stages(texts)]


def _scorer(discriminator: Path | None) -> tuple[Any, str | None]:
    """The realism scorer of `report --discriminator`: a folder (a fine-tuned discriminator or a
    realism head), "none", or by default the shipped realism judge (trained against the shipped
    customer's replies on other sample calls than the realism picker that best-of-N uses)."""
    if discriminator is not None and str(discriminator).strip().lower() == "none":
        return None, None
    from grouped_sim.data import REALISM_JUDGE, shipped_scorer_path
    from grouped_sim.discriminator.realism import load_realism_scorer

    if discriminator is not None:
        return load_realism_scorer(discriminator).score, str(discriminator)
    return load_realism_scorer(shipped_scorer_path(REALISM_JUDGE)).score, f"shipped:{REALISM_JUDGE}"


def _coherence(spec: str | None, info: dict[str, Any], reference: list[Any] | None = None) -> tuple[Any, str | None, frozenset[str]]:
    """The coherence instrument of `report --coherence`: a judge folder (`grouped-sim judge train`,
    or a sim folder's judge/), a MiniLM scorer folder (`grouped-sim coherence train`), "none", or by
    default the run's sim folder's judge (simulate --sim) and otherwise the shipped judge.

    A judge reads each reply against contexts of other calls of the same domain: with a reference
    corpus those come from its calls (docs/judge.md). The last item is the ids of the calls a judge
    was trained on: never graded as the real side."""
    if spec is not None and spec.strip().lower() == "none":
        return None, None, frozenset()
    from grouped_sim.discriminator.judge import CoherenceJudge, load_coherence_instrument, shipped_judge_path, trained_on
    from grouped_sim.graphs.fit import SimFolder

    if spec:
        instrument, name = load_coherence_instrument(Path(spec)), spec
    elif (sim := (info.get("models") or {}).get("sim")) and (domain := SimFolder(sim).coherence_scorer()) is not None:
        instrument, name = domain, f"sim:{domain.folder}"
    else:
        instrument, name = load_coherence_instrument(shipped_judge_path()), "shipped:coherence-llm-judge"
    if reference:
        instrument = instrument.anchored(reference)
    if isinstance(instrument, CoherenceJudge):
        instrument.on_reading = lambda todo, asked: console.print(f"coherence judge: reading {todo} of {asked} replies ({asked - todo} cached; a few seconds each on a CPU) ...")
    return instrument.score, name, trained_on(instrument)


def _cheap_report(run: tuple[list[Any], dict[str, Any]], reference: list[Any] | None, reference_name: str | None, taxonomy_ids: list[str], tagger: Any, context: Any = None) -> dict[str, Any]:
    """The figures of a run (its dialogues and run.json) that need no judge or scorer."""
    from grouped_sim.report import compute_report

    dialogues, info = run
    return compute_report(dialogues, taxonomy_ids=taxonomy_ids, run_info=info, reference=reference, reference_name=reference_name, stage_tagger=tagger, context=context)  # type: ignore[no-any-return]


def _print_table(title: str, table: dict[str, Any]) -> None:
    from rich.table import Table

    from grouped_sim.report.compare import HINTS, cell

    t = Table(title=title, caption="[95 % bootstrap interval over dialogues]; Δ: difference to the first run, * beyond noise")
    t.add_column("metric")
    for col in table["columns"]:
        t.add_column(col, justify="right")
    for row in table["rows"]:
        t.add_row(f"{row['label']} {HINTS[row['better']]}".strip(), *(cell(row, c) for c in table["columns"]))
    out.print(t)


def _fmt_fig(fig: dict[str, Any] | None, side: str = "sim") -> str:
    if not fig or fig.get(side) is None:
        return "n/a"
    ci = fig.get(f"{side}_ci")
    return f"{fig[side]:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


def _print_scorecard(report: dict[str, Any]) -> None:
    """The agent's headline figures and conversion by archetype, with intervals."""
    from rich.table import Table

    card = report["scorecard"]
    has_ref = report.get("reference") is not None
    t = Table(title=f"agent scorecard ({card['calls']} calls)", caption="[95 % bootstrap interval over calls]; docs/scorecard.md")
    t.add_column("figure")
    t.add_column("this agent", justify="right")
    if has_ref:
        t.add_column("real salesman", justify="right")
        t.add_column("gap", justify="right")
    rows = [(name.replace("_", " "), card[name]) for name in ("conversion", "conversion_with_callback", "walk_away", "cut_off", "exit_turn")]
    rows += [(f"conversion: {name} (n={g['n']})", g["conversion"]) for name, g in card["by_archetype"].items()]
    if card.get("pass_k"):
        rows += [(f"pass^{k}", fig) for k, fig in card["pass_k"]["conversion"].items()]
    for row, fig in rows:
        cells = [_fmt_fig(fig)]
        if has_ref:
            gap = "" if fig.get("gap") is None else f"{fig['gap']:+.3f}{'*' if fig.get('beyond_noise') else ''}"
            cells += [_fmt_fig(fig, "real"), gap]
        t.add_row(row, *cells)
    out.print(t)
    lost = card["funnel"]["lost"]
    if lost["calls"]:
        where = ", ".join(f"{stage} {g['calls']}" for stage, g in lost["by_stage"].items())
        out.print(f"calls lost (walk-away or refusal) by the stage of the agent's last move: {where}")


def report(
    run_dir: Annotated[Path, typer.Argument(help="Run folder written by `grouped-sim simulate` (dialogues.jsonl, run.json).")],
    reference: Annotated[Optional[Path], typer.Option("--reference", help="Corpus of REAL dialogues (JSONL) to measure fidelity against.")] = None,
    judge: Annotated[Optional[str], typer.Option("--judge", help="Chat-model spec of the LLM judge (e.g. openai:gpt-4o@URL, vllm:MODEL, hf:PATH). Scores are cached in RUN_DIR/judge.jsonl.")] = None,
    discriminator: Annotated[Optional[Path], typer.Option("--discriminator", help="Realism scorer folder (`discriminator train`, fine-tuned or --head): realism = mean P(real) of customer replies; default: the shipped realism judge; 'none' to skip.")] = None,
    likeness: Annotated[int, typer.Option("--likeness", min=0, help="Replay N real dialogues of --reference teacher-forced through the customer model (BLEU/ROUGE/cosine). Cached in RUN_DIR/likeness.jsonl.")] = 0,
    customer: Annotated[Optional[str], typer.Option("--customer", help="Customer model spec for --likeness (default: the run's own customer model).")] = None,
    sop_db: Annotated[Optional[Path], typer.Option("--sop-db", help="SOP store used to tag the stage of unlabelled turns (prompt-only runs, unlabelled corpora) so SNR can be compared.")] = None,
    taxonomy: Annotated[Optional[Path], typer.Option("--taxonomy", help="SOP taxonomy YAML (default: the built-in one); its size is |S| in SNR.")] = None,
    judge_retries: Annotated[int, typer.Option("--judge-retries", min=0, max=10, help="Re-asks after an unparseable judge answer before the score is recorded as missing.")] = 2,
    role_judge: Annotated[bool, typer.Option("--role-judge/--no-role-judge", help="With --judge, let the judge confirm replies the role-inversion pre-filter flags.")] = True,
    out_dir: Annotated[Optional[Path], typer.Option("--out", help="Where report.json and report.html go (default: RUN_DIR).")] = None,
    fail_under: Annotated[
        Optional[list[str]],
        typer.Option(
            "--fail-under",
            help=(
                "Gate: exit 1 when a scorecard figure is below a bar, e.g. conversion=0.25 or conversion:price-sensitive=0.2 (repeatable). "
                "It fails when the figure's whole 95 % interval is below the bar (its upper bound is), i.e. beyond sampling noise; "
                "--strict-gate fails unless the whole interval is above it. Figures: conversion, conversion_with_callback, walk_away, "
                "cut_off, exit_turn, pass_k, pass_k_with_callback."
            ),
        ),
    ] = None,
    fail_over: Annotated[
        Optional[list[str]],
        typer.Option(
            "--fail-over",
            help="Gate: exit 1 when a scorecard figure is above a bar, e.g. walk_away=0.5 (repeatable); fails when the interval's lower bound is above it (--strict-gate: its upper bound).",
        ),
    ] = None,
    strict_gate: Annotated[
        bool, typer.Option("--strict-gate", help="Gates fail unless the figure's whole 95 % interval clears the bar (demand evidence the agent is good enough).")
    ] = False,
    coherence: Annotated[Optional[str], typer.Option("--coherence", help="Coherence judge folder (`grouped-sim judge train`, or a sim folder's judge/) or MiniLM scorer folder (`grouped-sim coherence train`); default: the run's sim folder's judge (simulate --sim), else the shipped judge (docs/judge.md); 'none' to skip (the judge reads every reply with the 1.5B: a few seconds a reply on a CPU, cached).")] = None,
    coherence_calls: Annotated[int, typer.Option("--coherence-calls", min=3, help="Calls graded for coherence on each side at most (a seeded draw, the same on every rerun): the judge takes a few seconds a reply on a CPU. The judge's own training calls are never graded as real.")] = 20,
) -> None:
    """Measure a run: the agent's scorecard, diversity (TLV, IRS, SNR), fidelity to real dialogues,
    judge scores, each figure with its 95 % interval; write report.json + report.html.

    With --fail-under / --fail-over the command gates the agent: the report is written either way,
    then a missed bar exits 1 with a one-line reason.
    """
    from grouped_sim.config import GenerationParams
    from grouped_sim.io import write_json_atomic
    from grouped_sim.metrics.judge import aggregate, judge_run, role_inversion_judge
    from grouped_sim.metrics.likeness import likeness as likeness_scores
    from grouped_sim.models import build_chat_model, parse_spec
    from grouped_sim.report import compute_report, render_html
    from grouped_sim.report.compare import comparison
    from grouped_sim.sop_db.taxonomy import load_taxonomy
    from grouped_sim.app.scoring import scorecard_context
    from grouped_sim.report.gates import check, parse_gate
    from grouped_sim.report.scorecard import Scorecard

    gates = [parse_gate(g, under=True) for g in fail_under or []] + [parse_gate(g, under=False) for g in fail_over or []]
    dialogues, info = _read_run(run_dir)
    loaded_taxonomy = load_taxonomy(taxonomy)
    ref = _read_reference(reference, loaded_taxonomy)
    if likeness and ref is None:
        raise InputError("--likeness replays real dialogues: pass --reference F as well")
    if judge:
        parse_spec(judge)
    taxonomy_ids = loaded_taxonomy.ids
    tagger = _stage_tagger(sop_db)
    scorer, scorer_name = _scorer(discriminator)
    coherence_score, coherence_name, coherence_trained_on = _coherence(coherence, info, ref)
    target = out_dir or run_dir

    judge_summary, turn_judge, judge_scores = None, None, None
    if judge:
        console.print(f"loading judge {judge} ...")
        model = build_chat_model(judge, GenerationParams(temperature=0.1, top_p=0.2, repetition_penalty=1.0, max_new_tokens=256))
        with progress() as bar:
            task = bar.add_task("judging dialogues", total=len(dialogues))
            records = judge_run(model, dialogues, judge, run_dir / JUDGE_CACHE, retries=judge_retries, on_progress=lambda r: bar.advance(task))
        judge_summary = aggregate(records)
        judge_scores = _judge_scores(records, dialogues)
        if role_judge:
            turn_judge = role_inversion_judge(model, retries=judge_retries)

    likeness_summary = None
    if likeness and ref is not None:
        likeness_summary = _teacher_forced(ref[:likeness], customer or (info.get("models") or {}).get("customer") or DEFAULT_CUSTOMER_SPEC, info, run_dir)
        likeness_summary = {**likeness_scores(likeness_summary.pop("pairs")), **likeness_summary}

    console.print("computing metrics ...")
    result = compute_report(
        dialogues,
        taxonomy_ids=taxonomy_ids,
        run_info=info,
        reference=ref,
        reference_name=str(reference) if reference else None,
        stage_tagger=tagger,
        scorer=scorer,
        scorer_name=scorer_name,
        judge_summary=judge_summary,
        role_judge=turn_judge,
        likeness_summary=likeness_summary,
        context=scorecard_context(taxonomy),
        judge_scores=judge_scores,
        coherence=coherence_score,
        coherence_name=coherence_name,
        coherence_calls=coherence_calls,
        coherence_leave_out=coherence_trained_on,
    )
    result["warnings"] = run_warnings(dialogues, taxonomy_ids)
    warn(result["warnings"])
    write_json_atomic(target / "report.json", result)
    html_path = target / "report.html"
    write_text_atomic(html_path, render_html(result, dialogues))
    _print_scorecard(result)
    _print_table(f"report: {run_dir}", comparison({run_dir.name or str(run_dir): result}))
    out.print(f"wrote {target / 'report.json'} and {html_path}")
    failed = check(Scorecard(result["scorecard"]), gates, strict=strict_gate)
    if failed:  # one line, never wrapped, whatever the terminal width: CI logs grep for it
        label(console, "gate failed:", "red", "; ".join(failed))
        raise typer.Exit(code=1)
    if gates:
        out.print(f"gates passed: {', '.join(g.label for g in gates)}")


def _judge_scores(records: list[Any], dialogues: list[Any]) -> dict[str, list[Any]]:
    """Per-dialogue judge scores by dimension, in the run's dialogue order (for the intervals)."""
    from grouped_sim.metrics._common import mean
    from grouped_sim.metrics.judge import dimensions

    by_id = {r.dialogue_id: r for r in records}
    out: dict[str, list[Any]] = {name: [] for name in dimensions()}
    out["overall"] = []
    for d in dialogues:
        record = by_id.get(d.id)
        scores = {name: (record.dimensions.get(name).score if record and record.dimensions.get(name) else None) for name in dimensions()}
        for name, score in scores.items():
            out[name].append(score)
        out["overall"].append(mean(scores.values()))
    return out


def _teacher_forced(reference: list[Any], spec: str, info: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """Generate every customer turn of `reference` from its real history with the customer model."""
    from grouped_sim.config import SimulationConfig
    from grouped_sim.graphs.customer import CustomerPrompt, generate_reply
    from grouped_sim.graphs.plan import dialogue_seed
    from grouped_sim.models import build_chat_model
    from grouped_sim.report.teacher import replay_targets, teacher_forced_pairs
    from grouped_sim.schemas import CustomerAction, Profile

    config = SimulationConfig.model_validate(info["config"]) if info.get("config") else SimulationConfig()
    console.print(f"loading customer model {spec} for the teacher-forced replay ...")
    model = build_chat_model(spec, config.customer)
    fallback_profile = Profile(summary="A customer who has just picked up an unexpected sales call.")

    def generate(dialogue: Any, index: int) -> str:
        inputs = CustomerPrompt(profile=dialogue.profile or fallback_profile, domain=dialogue.domain, history=dialogue.turns[:index])
        return generate_reply(model, inputs, CustomerAction.speak, dialogue_seed(config.seed, index), config.role_guard_retries).text

    with progress() as bar:
        task = bar.add_task("teacher-forced turns", total=len(replay_targets(reference)))
        pairs = teacher_forced_pairs(reference, generate, spec, run_dir / LIKENESS_CACHE, on_progress=lambda: bar.advance(task))
    return {"pairs": pairs, "customer": spec, "dialogues": len(reference)}


def compare(
    runs: Annotated[list[Path], typer.Argument(help="Two or more run folders (e.g. a full run and a prompt-only run; or agent A and agent B, the first being the baseline). Runs of the same customers (simulate --plan-from) are also paired call by call.")],
    reference: Annotated[Optional[Path], typer.Option("--reference", help="Corpus of REAL dialogues: adds the fidelity rows and a 'real' column.")] = None,
    names: Annotated[Optional[str], typer.Option("--names", help="Comma-separated column names (default: the folder names).")] = None,
    sop_db: Annotated[Optional[Path], typer.Option("--sop-db", help="SOP store to tag stages of unlabelled turns, so SNR is comparable across modes.")] = None,
    taxonomy: Annotated[Optional[Path], typer.Option("--taxonomy", help="SOP taxonomy YAML (default: the built-in one).")] = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the table (and the paired comparisons) as JSON here.")] = None,
    markdown_out: Annotated[Optional[Path], typer.Option("--markdown", help="Write the table (and the paired comparisons) as markdown here.")] = None,
    html_out: Annotated[Optional[Path], typer.Option("--html", help="Write a self-contained HTML page with the table and charts of the paired differences here.")] = None,
    refresh: Annotated[bool, typer.Option("--refresh", help="Recompute every run's metrics instead of reusing its report.json.")] = False,
) -> None:
    """Put the metrics of several runs side by side, each with its 95 % interval, and mark which
    differences to the first run are beyond noise.

    A run's report.json (from `grouped-sim report`, with judge/realism/likeness figures) is reused
    when it was made against the same --reference; otherwise the cheap metrics are computed here.
    Runs of the same customers (`simulate --plan-from`) are also compared pair by pair: paired
    differences of conversion (McNemar), exit turn and the funnel, and the customers won and lost.
    """
    from grouped_sim.app.scoring import scorecard_context
    from grouped_sim.io import write_json_atomic
    from grouped_sim.report.compare import comparison, to_markdown
    from grouped_sim.report.html import render_compare_html
    from grouped_sim.report.paired import paired_comparison, pairing_warnings
    from grouped_sim.sop_db.taxonomy import load_taxonomy

    if len(runs) < 2:
        raise InputError(f"compare needs two or more run folders (got {len(runs)}); the first is the baseline. To measure one run: grouped-sim report {runs[0] if runs else 'RUN'}")
    labels = [n.strip() for n in names.split(",")] if names else [r.name or str(r) for r in runs]
    if len(labels) != len(runs):
        raise InputError(f"--names gives {len(labels)} names for {len(runs)} runs")
    if len(set(labels)) != len(labels):
        raise InputError(f"column names must differ: {labels}; pass --names")
    loaded_taxonomy = load_taxonomy(taxonomy)
    ref = _read_reference(reference, loaded_taxonomy)
    ref_name = str(reference) if reference is not None else None
    # Every run is read and checked before any figure is computed: a missing or damaged second run
    # is found in a second, not after the first run's metrics.
    runs_read = {name: _read_run(run_dir) for name, run_dir in zip(labels, runs)}
    cached = {name: None if refresh else _reusable_report(run_dir, ref_name) for name, run_dir in zip(labels, runs)}
    taxonomy_ids = loaded_taxonomy.ids
    context = scorecard_context(taxonomy)
    tagger = _stage_tagger(sop_db)
    reports: dict[str, dict[str, Any]] = {}
    dialogues: dict[str, list[Any]] = {name: runs_read[name][0] for name in labels}
    with progress() as bar:
        task = bar.add_task("runs", total=len(runs))
        for name in labels:
            reports[name] = cached[name] or _cheap_report(runs_read[name], ref, ref_name, taxonomy_ids, tagger, context)
            bar.advance(task)
    if tagger is not None:  # the pairs read stages the same way the figures did
        from grouped_sim.report import fill_stages

        dialogues = {k: fill_stages(v, tagger)[0] for k, v in dialogues.items()}
    table = comparison(reports)
    paired = []
    warnings: list[str] = []
    for name in labels[1:]:
        block = paired_comparison(dialogues[labels[0]], dialogues[name], context, names=(labels[0], name))
        warnings += pairing_warnings(block, (labels[0], name), runs[0])
        if block is not None:
            paired.append(block)
    table["warnings"] = warnings
    _print_table("compare", table)
    for block in paired:
        _print_paired(block)
    warn(warnings)
    if json_out:
        write_json_atomic(json_out, {**table, "paired": paired})
        out.print(f"wrote {json_out}")
    if markdown_out:
        write_text_atomic(markdown_out, to_markdown(table, paired))
        out.print(f"wrote {markdown_out}")
    if html_out:
        write_text_atomic(html_out, render_compare_html(table, paired))
        out.print(f"wrote {html_out}")


def _reusable_report(run_dir: Path, ref_name: str | None) -> dict[str, Any] | None:
    """A run's report.json when compare may reuse it (made against the same --reference, with the
    per-call units of report version 2), checked as an artifact; None: compute the cheap figures."""
    from grouped_sim.artifacts import Artifact
    from grouped_sim.report.compute import ReportFile

    path = run_dir / "report.json"
    if not path.is_file():
        return None
    again = f"grouped-sim report {run_dir}" + (f" --reference {ref_name}" if ref_name else "") + " (or pass --refresh to compare without it)"
    artifact = Artifact("report", again)
    raw = artifact.read_json(path)
    artifact.require(isinstance(raw, dict) and isinstance(raw.get("reference") or {}, dict), path, "not a report written by `grouped-sim report`")
    if (raw.get("reference") or {}).get("name") != ref_name or "units" not in raw:
        return None
    with artifact.reading(path):
        ReportFile.model_validate(raw)
    return raw  # type: ignore[no-any-return]


def _print_paired(block: dict[str, Any]) -> None:
    from rich.table import Table

    from grouped_sim.report.paired import paired_rows

    a, b = block["a"], block["b"]
    seeds = "same customers and seeds" if block["same_seeds"] else "same customers, different seeds"
    t = Table(title=f"{b} vs {a}, paired: {block['pairs']} pairs, {block['customers']} customers ({seeds})",
              caption="B − A over matched calls; interval: bootstrap over customers; * beyond noise (interval excludes 0 and |Δ| > noise floor)")
    for col in ("figure", a, b, f"{b} − {a} [95 % CI]", "noise floor", "McNemar p"):
        t.add_column(col, justify="left" if col == "figure" else "right")
    for row, fig in paired_rows(block):
        if fig["diff"] is None:
            continue
        ci = fig["ci"]
        diff = f"{fig['diff']:+.3f}" + (f" [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else "") + ("*" if fig["beyond_noise"] else "")
        mc = fig.get("mcnemar")
        t.add_row(row, f"{fig['a']:.3f}", f"{fig['b']:.3f}", diff, "n/a" if fig["noise_floor"] is None else f"{fig['noise_floor']:.3f}", str(mc["p"]) if mc else "")
    out.print(t)
    for title, rows in (("won", block["won"]), ("lost", block["lost"])):
        listed = "; ".join(f"{r['archetype']}/{r['domain']} {r['a_converted']}→{r['b_converted']} of {r['trials']}" for r in rows) or "none"
        out.print(f"customers {b} {title} ({len(rows)}): {listed}")
