"""`grouped-sim simulate`: the main job."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from grouped_sim.cli.common import console, default_corpus, label, out, progress, run_config
from grouped_sim.cli.executor import ExecutorOption, RayAddressOption, RayCpusOption, RayGpusOption, RayWorkersOption, dialogue_executor, ray_settings
from grouped_sim.config import DEFAULT_CHAT_SPEC, DEFAULT_CUSTOMER_SPEC
from grouped_sim.errors import DialoguesFailed, InputError


def simulate(
    out_dir: Annotated[Optional[Path], typer.Option("--out", help="Run folder: plan.json, dialogues.jsonl (appended as dialogues finish) and run.json.")] = None,
    profiles: Annotated[int, typer.Option("--profiles", min=1, help="Simulate N customers sampled from the corpus's real profiles.")] = 4,
    profiles_file: Annotated[Optional[Path], typer.Option("--profiles-file", help="JSONL of profiles to simulate (overrides --profiles).")] = None,
    salesman: Annotated[
        str,
        typer.Option(
            "--salesman",
            help=(
                "The agent under test. A model spec reading the demo product brief of the call's domain (default: the embedded 1.5B, llamacpp:default; openai:MODEL@URL, vllm:MODEL), "
                "or an adapter: endpoint:MODEL@URL (your agent behind an OpenAI-compatible endpoint), webhook:URL (POST history, "
                "get reply), python:MODULE:FUNCTION (sync or async callable), replay:CORPUS.jsonl (replay a corpus's salesman turns), knn:CORPUS.jsonl (a coherent stand-in: the real salesman move that followed the most similar exchange)."
            ),
        ),
    ] = DEFAULT_CHAT_SPEC,
    customer: Annotated[
        str,
        typer.Option(
            "--customer",
            help="Model spec of the customer model. Default: the embedded 1.5B on llama.cpp (llamacpp:default); the old default is hf:smollm2+customer-sft (SmolLM2-135M with the shipped adapter), llamacpp:/path/model.gguf any GGUF, hf:BASE+ADAPTER_DIR your own adapter.",
        ),
    ] = DEFAULT_CUSTOMER_SPEC,
    manager: Annotated[
        str,
        typer.Option(
            "--manager",
            help="'light' (embedding tagger + decision dynamics: fitted ones with --sim, else the hand-set rules), 'prior' (the hand-set rules even with --sim), or a model spec for an LLM manager.",
        ),
    ] = "light",
    sim: Annotated[
        Optional[Path],
        typer.Option("--sim", help="A sim folder from `grouped-sim fit`: its SOP store, taxonomy and fitted dynamics, and its customers' profiles (unless --profiles-file)."),
    ] = None,
    sop_db: Annotated[
        Optional[str], typer.Option("--sop-db", help="SOP store: a folder from `sop build`, or a Chroma server http://HOST:PORT (needed unless --mode prompt-only).")
    ] = None,
    corpus: Annotated[Optional[Path], typer.Option("--corpus", help="Corpus to sample profiles from. Default: the shipped sample corpus.")] = None,
    mode: Annotated[str, typer.Option("--mode", help="full | no-sop (manager, no retrieval) | prompt-only (customer model alone).")] = "full",
    max_turns: Annotated[Optional[int], typer.Option("--max-turns", min=1, help="Salesman turns before a call is cut off.")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Run seed; every sampling call derives its seed from it.")] = None,
    config_file: Annotated[Optional[Path], typer.Option("--config", help="YAML with SimulationConfig fields (sampling, manager rules, runtime: ...).")] = None,
    concurrency: Annotated[
        Optional[int],
        typer.Option("--concurrency", min=1, help="Dialogues in flight at once (local models batch their requests; servers batch on their side)."),
    ] = None,
    resume: Annotated[
        Optional[Path],
        typer.Option("--resume", help="Finish an interrupted run in this folder: written dialogues are kept, the rest run (from their checkpoints). A python: salesman in plan.json is run again: it must be the same file."),
    ] = None,
    retry_failed: Annotated[
        bool,
        typer.Option("--retry-failed", help="Also run again the dialogues that ended in an error (agent, customer model, store or infrastructure down)."),
    ] = False,
    salesman_key_env: Annotated[
        Optional[str],
        typer.Option("--salesman-key-env", help="Name of the environment variable holding the Bearer key of an endpoint: salesman (no key is sent without it)."),
    ] = None,
    trials: Annotated[
        int, typer.Option("--trials", min=1, help="Simulate each customer N times with different seeds (pass^k in `report`; trial 0 is the single-trial run).")
    ] = 1,
    plan_from: Annotated[
        Optional[Path],
        typer.Option(
            "--plan-from",
            help=(
                "Repeat an earlier run's customers, trials, seeds, customer model, manager, store and config with this --salesman, "
                "so `compare` pairs the two runs dialogue by dialogue. --config then only sets the salesman's sampling and the runtime."
            ),
        ),
    ] = None,
    executor: ExecutorOption = "local",
    ray_address: RayAddressOption = None,
    ray_workers: RayWorkersOption = None,
    ray_cpus_per_worker: RayCpusOption = None,
    ray_gpus_per_worker: RayGpusOption = None,
) -> None:
    """Drive the salesman against simulated customers and write every dialogue as it finishes.

    Rerunning the same command into the same --out finishes the run instead of repeating it;
    --resume DIR does the same from the folder alone (plan.json holds the profiles, models and config).
    One process writes a run folder at a time. Exit code 3 when the run finished but some dialogues
    ended in errors (counted by whose); --retry-failed runs those again. --executor ray runs the
    dialogues on Ray workers (a local Ray instance, or a cluster: --ray-address); see docs/scale.md.
    """
    ray = ray_settings(executor, ray_address, ray_workers, ray_cpus_per_worker, ray_gpus_per_worker)
    from grouped_sim.app.build import absolute_salesman_spec, build_deps, check_run_specs, check_salesman_code, salesman_code
    from grouped_sim.config import load_config
    from grouped_sim.corpus import read_corpus
    from grouped_sim.graphs.batch import load_plan, run_simulation
    from grouped_sim.graphs.fit import SimFolder, sim_profiles
    from grouped_sim.graphs.plan import RunSettings, load_profiles_file, sample_profiles, with_trials

    if resume is not None:
        if out_dir is not None and out_dir.resolve() != resume.resolve():
            raise InputError(f"--resume {resume} and --out {out_dir} name different folders; pass only --resume")
        plan = load_plan(resume)
        runtime_updates: dict[str, object] = {}
        if config_file is not None:
            runtime_updates = load_config(config_file).runtime.model_dump()
        if concurrency is not None:
            runtime_updates["concurrency"] = concurrency
        config = plan.config.model_copy(update={"runtime": plan.config.runtime.model_copy(update=runtime_updates)})
        items, settings, out_dir = plan.items, plan.settings, resume
        if salesman_key_env is not None:
            settings = settings.model_copy(update={"salesman_key_env": salesman_key_env})
        check_salesman_code(settings.salesman, plan.salesman_code)
        code = plan.salesman_code
    elif plan_from is not None:
        items, settings, config = _planned_from(
            plan_from, salesman, config_file, concurrency, out_dir, trials=trials, profiles_file=profiles_file, sop_db=sop_db, corpus=corpus,
            mode=mode, max_turns=max_turns, seed=seed, customer=customer, manager=manager, sim=sim,
        )
        settings = settings.model_copy(update={"salesman_key_env": salesman_key_env})
        code = salesman_code(settings.salesman)
    else:
        if out_dir is None:
            raise InputError("--out DIR is required (or --resume DIR to finish an earlier run)")
        config = run_config(config_file, mode, max_turns=max_turns, seed=seed, concurrency=concurrency)
        folder = SimFolder(sim.resolve()) if sim is not None else None
        if folder is not None:
            folder.check()
        if profiles_file is not None:
            items = load_profiles_file(profiles_file)
        elif folder is not None and corpus is None:
            items = sim_profiles(folder, profiles, config.seed)
        else:
            items = sample_profiles(read_corpus(corpus or default_corpus()), profiles, config.seed)
        items = with_trials(items, trials)
        if sop_db is not None and not sop_db.startswith(("http://", "https://")):
            sop_db = str(Path(sop_db).resolve())  # plan.json must still find it when resumed from elsewhere
        # Paths in plan.json are absolute: a resume from another working directory finds the same files.
        salesman = absolute_salesman_spec(salesman)
        settings = RunSettings(
            salesman=salesman, customer=customer, manager=manager, sop_db=sop_db,
            sim=str(folder.root) if folder else None, sim_digest=folder.digest() if folder else None,
            salesman_key_env=salesman_key_env,
        )
        code = salesman_code(salesman)
    check_run_specs(settings)

    def load() -> object:  # called only when something is left to simulate
        console.print(f"loading models (salesman {settings.salesman}, customer {settings.customer}, manager {settings.manager}) ...")
        return build_deps(settings, config, items=items)

    if ray is not None:
        console.print(f"starting {ray.workers} Ray workers; each loads salesman {settings.salesman}, customer {settings.customer}, manager {settings.manager} ...")
    deps = dialogue_executor(ray, build_deps, settings, config, items, local=load)
    with progress() as bar:
        task = bar.add_task("dialogues", total=len(items))
        summary = run_simulation(
            items,
            settings,
            config,
            out_dir,
            deps=deps,
            on_progress=lambda d: bar.advance(task),
            resume=resume is not None,
            retry_failed=retry_failed,
            salesman_code=code,
        )
    kept = (summary.get("resumed") or {}).get("kept", 0)
    note = f" ({kept} kept from before)" if kept else ""
    out.print(f"{summary['dialogues']} dialogues in {out_dir / 'dialogues.jsonl'}{note}; outcomes: {summary['outcomes']}")
    for warning in summary.get("warnings") or []:
        label(console, "warning:", "yellow", warning)
    out.print(f"run summary: {out_dir / 'run.json'}")
    if summary["errors"]:
        failed = sum(summary["errors"].values())
        whose = ", ".join(f"{who} {n}" for who, n in sorted(summary["errors"].items()))
        raise DialoguesFailed(
            f"{failed} of {summary['dialogues']} dialogues ended in an error (by whose: {whose}); they are in dialogues.jsonl with "
            f"termination_reason 'error'. Fix the cause, then run: grouped-sim simulate --resume {out_dir} --retry-failed"
        )


def _planned_from(
    run_dir: Path, salesman: str, config_file: Optional[Path], concurrency: Optional[int], out_dir: Optional[Path], **fixed: object
) -> tuple[list, object, object]:
    """The plan of an earlier run with a new agent: same customers, trials and seeds (the config's
    seed and the items' positions), same customer model, manager, store and simulation config."""
    from grouped_sim.app.build import absolute_salesman_spec
    from grouped_sim.config import load_config
    from grouped_sim.graphs.batch import load_plan

    if out_dir is None:
        raise InputError("--plan-from RUN needs --out DIR for the new run")
    if out_dir.resolve() == run_dir.resolve():
        raise InputError(f"--plan-from {run_dir} and --out {out_dir} are the same folder; the new agent's run needs its own")
    defaults = {
        "trials": 1, "profiles_file": None, "sop_db": None, "corpus": None, "mode": "full", "max_turns": None, "seed": None,
        "customer": DEFAULT_CUSTOMER_SPEC, "manager": "light", "sim": None,
    }
    clashing = [name for name, value in fixed.items() if value != defaults[name]]
    if clashing:
        flags = ", ".join("--" + name.replace("_", "-") for name in clashing)
        raise InputError(f"--plan-from takes the customers, seeds and config of {run_dir}; drop {flags}")
    plan = load_plan(run_dir, "--plan-from")
    config = plan.config
    if config_file is not None:
        own = load_config(config_file)
        config = config.model_copy(update={"salesman": own.salesman, "runtime": own.runtime})
    if concurrency is not None:
        config = config.model_copy(update={"runtime": config.runtime.model_copy(update={"concurrency": concurrency})})
    settings = plan.settings.model_copy(update={"salesman": absolute_salesman_spec(salesman), "plan_from": str(run_dir.resolve())})
    return plan.items, settings, config
