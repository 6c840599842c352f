"""`grouped-sim report` and `grouped-sim compare`: measure a run, and put runs side by side.

This is the composition root of evaluation: it builds the judge and customer models from specs,
loads the discriminator, the SOP store (to tag stages of unlabelled turns) and the taxonomy, then
hands plain callables to `grouped_sim.metrics` / `grouped_sim.report`, which import none of them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from grouped_sim.cli.common import console, out, progress
from grouped_sim.config import DEFAULT_CUSTOMER_SPEC
from grouped_sim.errors import InputError

JUDGE_CACHE = "judge.jsonl"
LIKENESS_CACHE = "likeness.jsonl"


def _read_run(run_dir: Path) -> tuple[list[Any], dict[str, Any]]:
    from grouped_sim.corpus import read_corpus

    if not run_dir.is_dir():
        raise InputError(f"{run_dir}: run folder not found (make one with `grouped-sim simulate --out DIR`)")
    path = run_dir / "dialogues.jsonl"
    if not path.is_file():
        raise InputError(f"{run_dir}: no dialogues.jsonl in this folder; is it a run folder from `grouped-sim simulate`?")
    info: dict[str, Any] = {}
    if (run_dir / "run.json").is_file():
        try:
            info = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise InputError(f"{run_dir / 'run.json'}: not valid JSON ({exc.msg})") from exc
    info["dir"] = str(run_dir)
    return read_corpus(path), info


def _stage_tagger(sop_db: Path | None) -> Any:
    if sop_db is None:
        return None
    from grouped_sim.sop_db.store import SOPStore

    store = SOPStore(sop_db)
    return lambda texts: [vote.stage for vote in store.tag_stages(texts)]


def _scorer(discriminator: Path | None) -> Any:
    if discriminator is None:
        return None
    try:
        from grouped_sim.discriminator.model import DiscriminatorScorer
    except ImportError as exc:  # pragma: no cover - the package ships with grouped-sim
        raise InputError(f"--discriminator needs the discriminator package: {exc}") from exc
    return DiscriminatorScorer(discriminator).score


def _coherence(spec: str | None) -> tuple[Any, str | None]:
    """The coherence scorer of `report --coherence`: a folder, "none", or (default) the shipped judge."""
    if spec is not None and spec.strip().lower() == "none":
        return None, None
    from grouped_sim.data import shipped_scorer_path
    from grouped_sim.discriminator.coherence import CoherenceScorer

    folder = Path(spec) if spec else shipped_scorer_path()
    return CoherenceScorer(folder).score, str(folder) if spec else "shipped:coherence-judge"


def _cheap_report(run_dir: Path, reference: list[Any] | None, reference_name: str | None, taxonomy_ids: list[str], tagger: Any) -> tuple[dict[str, Any], list[Any]]:
    from grouped_sim.report import compute_report

    dialogues, info = _read_run(run_dir)
    return compute_report(dialogues, taxonomy_ids=taxonomy_ids, run_info=info, reference=reference, reference_name=reference_name, stage_tagger=tagger), dialogues


def _print_table(title: str, table: dict[str, Any]) -> None:
    from rich.table import Table

    from grouped_sim.report.compare import HINTS

    t = Table(title=title)
    t.add_column("metric")
    for col in table["columns"]:
        t.add_column(col, justify="right")
    for row in table["rows"]:
        cells = ["n/a" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v)) for v in (row["values"].get(c) for c in table["columns"])]
        t.add_row(f"{row['label']} {HINTS[row['better']]}".strip(), *cells)
    out.print(t)


def report(
    run_dir: Annotated[Path, typer.Argument(help="Run folder written by `grouped-sim simulate` (dialogues.jsonl, run.json).")],
    reference: Annotated[Optional[Path], typer.Option("--reference", help="Corpus of REAL dialogues (JSONL) to measure fidelity against.")] = None,
    judge: Annotated[Optional[str], typer.Option("--judge", help="Chat-model spec of the LLM judge (e.g. openai:gpt-4o@URL, vllm:MODEL, hf:PATH). Scores are cached in RUN_DIR/judge.jsonl.")] = None,
    discriminator: Annotated[Optional[Path], typer.Option("--discriminator", help="Trained discriminator folder: adds realism = mean P(real) of customer replies.")] = None,
    likeness: Annotated[int, typer.Option("--likeness", min=0, help="Replay N real dialogues of --reference teacher-forced through the customer model (BLEU/ROUGE/cosine). Cached in RUN_DIR/likeness.jsonl.")] = 0,
    customer: Annotated[Optional[str], typer.Option("--customer", help="Customer model spec for --likeness (default: the run's own customer model).")] = None,
    sop_db: Annotated[Optional[Path], typer.Option("--sop-db", help="SOP store used to tag the stage of unlabelled turns (prompt-only runs, unlabelled corpora) so SNR can be compared.")] = None,
    taxonomy: Annotated[Optional[Path], typer.Option("--taxonomy", help="SOP taxonomy YAML (default: the built-in one); its size is |S| in SNR.")] = None,
    judge_retries: Annotated[int, typer.Option("--judge-retries", min=0, max=10, help="Re-asks after an unparseable judge answer before the score is recorded as missing.")] = 2,
    role_judge: Annotated[bool, typer.Option("--role-judge/--no-role-judge", help="With --judge, let the judge confirm replies the role-inversion pre-filter flags.")] = True,
    out_dir: Annotated[Optional[Path], typer.Option("--out", help="Where report.json and report.html go (default: RUN_DIR).")] = None,
    coherence: Annotated[Optional[str], typer.Option("--coherence", help="Coherence scorer folder (`grouped-sim coherence train`); default: the shipped judge scorer; 'none' to skip.")] = None,
) -> None:
    """Measure a run: diversity (TLV, IRS, SNR), fidelity to real dialogues, judge scores; write report.json + report.html."""
    from grouped_sim.config import GenerationParams
    from grouped_sim.corpus import read_corpus
    from grouped_sim.io import write_json_atomic
    from grouped_sim.metrics.judge import aggregate, judge_run, role_inversion_judge
    from grouped_sim.metrics.likeness import likeness as likeness_scores
    from grouped_sim.models import build_chat_model, parse_spec
    from grouped_sim.report import compute_report, render_html
    from grouped_sim.report.compare import comparison
    from grouped_sim.sop_db.taxonomy import load_taxonomy

    dialogues, info = _read_run(run_dir)
    ref = read_corpus(reference) if reference is not None else None
    if likeness and ref is None:
        raise InputError("--likeness replays real dialogues: pass --reference F as well")
    if judge:
        parse_spec(judge)
    taxonomy_ids = load_taxonomy(taxonomy).ids
    tagger = _stage_tagger(sop_db)
    scorer = _scorer(discriminator)
    coherence_score, coherence_name = _coherence(coherence)
    target = out_dir or run_dir

    judge_summary, turn_judge = None, None
    if judge:
        console.print(f"loading judge {judge} ...")
        model = build_chat_model(judge, GenerationParams(temperature=0.1, top_p=0.2, repetition_penalty=1.0, max_new_tokens=256))
        with progress() as bar:
            task = bar.add_task("judging dialogues", total=len(dialogues))
            records = judge_run(model, dialogues, judge, run_dir / JUDGE_CACHE, retries=judge_retries, on_progress=lambda r: bar.advance(task))
        judge_summary = aggregate(records)
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
        scorer_name=str(discriminator) if discriminator else None,
        judge_summary=judge_summary,
        role_judge=turn_judge,
        likeness_summary=likeness_summary,
        coherence=coherence_score,
        coherence_name=coherence_name,
    )
    write_json_atomic(target / "report.json", result)
    html_path = target / "report.html"
    tmp = html_path.with_suffix(".html.tmp")
    tmp.write_text(render_html(result, dialogues), encoding="utf-8")
    tmp.replace(html_path)
    _print_table(f"report: {run_dir}", comparison({run_dir.name or str(run_dir): result}))
    out.print(f"wrote {target / 'report.json'} and {html_path}")


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
    runs: Annotated[list[Path], typer.Argument(help="Two or more run folders (e.g. a full run and a prompt-only run).")],
    reference: Annotated[Optional[Path], typer.Option("--reference", help="Corpus of REAL dialogues: adds the fidelity rows and a 'real' column.")] = None,
    names: Annotated[Optional[str], typer.Option("--names", help="Comma-separated column names (default: the folder names).")] = None,
    sop_db: Annotated[Optional[Path], typer.Option("--sop-db", help="SOP store to tag stages of unlabelled turns, so SNR is comparable across modes.")] = None,
    taxonomy: Annotated[Optional[Path], typer.Option("--taxonomy", help="SOP taxonomy YAML (default: the built-in one).")] = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the table as JSON here.")] = None,
    markdown_out: Annotated[Optional[Path], typer.Option("--markdown", help="Write the table as a markdown table here.")] = None,
    refresh: Annotated[bool, typer.Option("--refresh", help="Recompute every run's metrics instead of reusing its report.json.")] = False,
) -> None:
    """Put the metrics of several runs side by side (like the paper's Table 2).

    A run's report.json (from `grouped-sim report`, with judge/realism/likeness figures) is reused
    when it was made against the same --reference; otherwise the cheap metrics are computed here.
    """
    from grouped_sim.corpus import read_corpus
    from grouped_sim.io import write_json_atomic
    from grouped_sim.report.compare import comparison, to_markdown
    from grouped_sim.sop_db.taxonomy import load_taxonomy

    if len(runs) < 1:
        raise InputError("compare needs at least one run folder")
    labels = [n.strip() for n in names.split(",")] if names else [r.name or str(r) for r in runs]
    if len(labels) != len(runs):
        raise InputError(f"--names gives {len(labels)} names for {len(runs)} runs")
    if len(set(labels)) != len(labels):
        raise InputError(f"column names must differ: {labels}; pass --names")
    ref = read_corpus(reference) if reference is not None else None
    ref_name = str(reference) if reference is not None else None
    taxonomy_ids = load_taxonomy(taxonomy).ids
    tagger = _stage_tagger(sop_db)
    reports: dict[str, dict[str, Any]] = {}
    with progress() as bar:
        task = bar.add_task("runs", total=len(runs))
        for label, run_dir in zip(labels, runs):
            cached = run_dir / "report.json"
            reuse = None
            if cached.is_file() and not refresh:
                reuse = json.loads(cached.read_text(encoding="utf-8"))
                if ((reuse.get("reference") or {}).get("name")) != ref_name:
                    reuse = None
            reports[label] = reuse or _cheap_report(run_dir, ref, ref_name, taxonomy_ids, tagger)[0]
            bar.advance(task)
    table = comparison(reports)
    _print_table("compare", table)
    if json_out:
        write_json_atomic(json_out, table)
        out.print(f"wrote {json_out}")
    if markdown_out:
        markdown_out.parent.mkdir(parents=True, exist_ok=True)
        markdown_out.write_text(to_markdown(table), encoding="utf-8")
        out.print(f"wrote {markdown_out}")
