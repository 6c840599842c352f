"""`grouped-sim probe`: simulate each held-out real customer against the real salesman's moves and
compare decisions, exits, lengths and coherence with the real people (see grouped_sim/graphs/probe.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from grouped_sim.cli.common import console, fmt, label, out, print_decision_check, progress, warn
from grouped_sim.cli.executor import ExecutorOption, RayAddressOption, RayCpusOption, RayGpusOption, RayWorkersOption, dialogue_executor, executor_session, ray_settings
from grouped_sim.config import DEFAULT_CUSTOMER_SPEC


def probe(
    sim_dir: Annotated[Path, typer.Argument(help="A sim folder from `grouped-sim fit` (its held-out calls are probed).")],
    n: Annotated[Optional[int], typer.Option("--n", min=1, help="Probe only the first N held-out customers (default: all).")] = None,
    customer: Annotated[str, typer.Option("--customer", help="Customer model spec.")] = DEFAULT_CUSTOMER_SPEC,
    manager: Annotated[
        str,
        typer.Option(
            "--manager",
            help="Comma-separated variants, each probed on the same customers: fitted (the sim folder's dynamics), prior (the hand-set rules), prompt-only, or a model spec for an LLM manager.",
        ),
    ] = "fitted",
    seed: Annotated[int, typer.Option("--seed", help="Run seed of every variant.")] = 0,
    config_file: Annotated[Optional[Path], typer.Option("--config", help="YAML with SimulationConfig fields (sampling, runtime, ...).")] = None,
    out_dir: Annotated[Optional[Path], typer.Option("--out", help="Where probe.json, probe.html, the replayed scripts and each variant's run go (default: SIM_DIR/probe); a new folder for another --n or --seed.")] = None,
    coherence: Annotated[
        Optional[str],
        typer.Option("--coherence", help="What grades coherence: a judge folder (`grouped-sim judge train`), a MiniLM scorer folder, or 'none' to skip; default: the sim folder's judge/ (the validated judge reading replies against this domain's calls; a few seconds a reply on a CPU, cached)."),
    ] = None,
    executor: ExecutorOption = "local",
    ray_address: RayAddressOption = None,
    ray_workers: RayWorkersOption = None,
    ray_cpus_per_worker: RayCpusOption = None,
    ray_gpus_per_worker: RayGpusOption = None,
) -> None:
    """The matched-pair probe: how close is the simulator to YOUR held-out customers?

    Each held-out real customer is simulated from a profile that cannot carry their decision,
    against the real salesman's moves replayed up to the move where the real customer decided.
    probe.json gives, per variant, decision agreement, walk-away, agree and callback rates, exit-turn
    and reply-length distances and coherence, each with its 95 % interval and the human-vs-human
    noise floor (the same figure between two random halves of the real calls), plus the confusion
    matrix and one row per customer. Runs are resumable: rerun the same command to finish.
    --executor ray runs each variant's dialogues on Ray workers (see docs/scale.md); the rows are
    read here, by the manager alone (no customer model is loaded in this process).
    """
    ray = ray_settings(executor, ray_address, ray_workers, ray_cpus_per_worker, ray_gpus_per_worker)
    from grouped_sim.app.build import build_deps, build_manager_deps
    from grouped_sim.config import load_config
    from grouped_sim.errors import InputError
    from grouped_sim.graphs.fit import SimFolder
    from grouped_sim.graphs.probe import ProbeBuild, parse_variants, probe_cases, probe_dir, profile_similarity, run_probe
    from grouped_sim.io import write_json_atomic, write_text_atomic
    from grouped_sim.metrics.probe import OUTCOME_DECISION, probe_summary
    from grouped_sim.models import parse_spec
    from grouped_sim.discriminator.judge import trained_on
    from grouped_sim.report.probe_html import render_probe_html

    folder = SimFolder(sim_dir.resolve())
    folder.check()
    parse_spec(customer)
    variants = parse_variants(manager)
    if not variants:
        raise InputError("--manager names no variant; e.g. --manager fitted,prior")
    try:
        cases = probe_cases(folder, n)
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    config = load_config(config_file).model_copy(update={"seed": seed})
    target = (out_dir or probe_dir(folder)).resolve()
    scorer = _coherence(folder, coherence)
    ungraded = trained_on(scorer)
    console.print(f"probing {len(cases)} held-out customers with {', '.join(v.name for v in variants)} into {target} ...")
    build = ProbeBuild(
        dialogues=lambda plan: dialogue_executor(ray, build_deps, plan.settings, plan.config, plan.items, local=lambda: build_deps(plan.settings, plan.config, items=plan.items)),
        manager=lambda plan: build_manager_deps(plan.settings, plan.config, items=plan.items),
    )
    with executor_session(ray), progress() as bar:
        task = bar.add_task("simulated customers", total=len(cases) * len(variants))
        rows = run_probe(folder, variants, cases, customer, config, build, target, score=scorer.score if scorer else None, on_progress=lambda d: bar.advance(task), leave_out=ungraded)
    similarity = profile_similarity(cases)
    rates = {OUTCOME_DECISION[o]: share for o, share in folder.load_dynamics().base_rates.items()}
    off = "--coherence none" if coherence is not None and coherence.strip().lower() == "none" else None
    summaries = {name: probe_summary(r, similarity, seed, rates, off) for name, r in rows.items()}
    first = summaries[variants[0].name]
    warnings = list(dict.fromkeys(f"{name}: {w}" if len(summaries) > 1 else w for name, summary in summaries.items() for w in summary["warnings"]))
    if left := sorted(c.dialogue.id for c in cases if c.dialogue.id in ungraded):
        warnings.append(f"coherence: {len(left)} of {len(cases)} customers not graded ({', '.join(left)}): the judge was trained on their calls")
    result = {
        "n": first["n"], "sim_folder": str(folder.root), "customer": customer, "seed": seed, "variant": variants[0].name,
        **{k: first[k] for k in ("figures", "majority_baseline", "confusion", "rows")}, "warnings": warnings, "variants": summaries,
    }
    write_json_atomic(target / "probe.json", result)
    html = target / "probe.html"
    write_text_atomic(html, render_probe_html(result))
    for name, summary in summaries.items():
        _print_variant(name, summary)
    warn(warnings)
    out.print(f"wrote {target / 'probe.json'} and {html}")


def _print_variant(name: str, summary: dict[str, Any]) -> None:
    """One variant's figures; a figure that cannot stand is printed as n/a with why, never as a number."""
    label(out, name, "bold", f"({summary['n']} customers, majority baseline {fmt(summary['majority_baseline'])}):")
    for key, f in summary["figures"].items():
        if f.get("why"):
            out.print(f"  {key}: n/a ({f['why']})")
            continue
        flag = {True: " beyond noise", False: "", None: " (no noise floor: beyond noise unknown)"}[f.get("beyond_noise")] if f.get("ci") else ""
        out.print(f"  {key}: sim {fmt(f['sim'])} real {fmt(f['real'])} gap {fmt(f['gap'], f['ci'])} noise floor {fmt(f['noise_floor'])}{flag}")
    if summary.get("decisions"):
        print_decision_check(summary["decisions"])


def _coherence(folder: Any, spec: str | None) -> Any:
    """The coherence instrument of `probe --coherence` (see the option's help)."""
    if spec is None:
        return folder.coherence_scorer()
    if spec.strip().lower() == "none":
        return None
    from grouped_sim.discriminator.judge import load_coherence_instrument

    return load_coherence_instrument(Path(spec))
