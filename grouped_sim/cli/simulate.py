"""`grouped-sim simulate`: the main job."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from grouped_sim.cli.common import console, default_corpus, out, progress
from grouped_sim.errors import InputError


def simulate(
    out_dir: Annotated[Path, typer.Option("--out", help="Run folder: dialogues.jsonl and run.json are written here.")],
    profiles: Annotated[int, typer.Option("--profiles", min=1, help="Simulate N customers sampled from the corpus's real profiles.")] = 4,
    profiles_file: Annotated[Optional[Path], typer.Option("--profiles-file", help="JSONL of profiles to simulate (overrides --profiles).")] = None,
    salesman: Annotated[str, typer.Option("--salesman", help="Model spec of the agent under test, e.g. hf:smollm2, openai:MODEL@URL, vllm:MODEL.")] = "hf:smollm2",
    customer: Annotated[str, typer.Option("--customer", help="Model spec of the customer model (hf:BASE+ADAPTER for a trained adapter).")] = "hf:smollm2",
    manager: Annotated[str, typer.Option("--manager", help="'light' (rules + embedding tagger, no LLM) or a model spec for an LLM manager.")] = "light",
    sop_db: Annotated[Optional[Path], typer.Option("--sop-db", help="SOP store folder from `sop build` (needed unless --mode prompt-only).")] = None,
    corpus: Annotated[Optional[Path], typer.Option("--corpus", help="Corpus to sample profiles from. Default: the shipped sample corpus.")] = None,
    mode: Annotated[str, typer.Option("--mode", help="full | no-sop (manager, no retrieval) | prompt-only (customer model alone).")] = "full",
    max_turns: Annotated[Optional[int], typer.Option("--max-turns", min=1, help="Salesman turns before a call is cut off.")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Run seed; every sampling call derives its seed from it.")] = None,
    config_file: Annotated[Optional[Path], typer.Option("--config", help="YAML with SimulationConfig fields (sampling, manager rules, ...).")] = None,
) -> None:
    """Drive the salesman against simulated customers and write every dialogue as it finishes."""
    from grouped_sim.config import SimulatorMode, load_config
    from grouped_sim.corpus import read_corpus
    from graphs.runner import RunSettings, load_profiles_file, run_simulation, sample_profiles

    config = load_config(config_file)
    updates: dict[str, object] = {}
    try:
        updates["mode"] = SimulatorMode(mode)
    except ValueError as exc:
        raise InputError(f"--mode {mode!r}: expected one of full, no-sop, prompt-only") from exc
    if max_turns is not None:
        updates["max_turns"] = max_turns
    if seed is not None:
        updates["seed"] = seed
    config = config.model_copy(update=updates)
    if profiles_file is not None:
        items = load_profiles_file(profiles_file)
    else:
        items = sample_profiles(read_corpus(corpus or default_corpus()), profiles, config.seed)
    settings = RunSettings(salesman=salesman, customer=customer, manager=manager, sop_db=str(sop_db) if sop_db else None)
    console.print(f"loading models (salesman {salesman}, customer {customer}, manager {manager}) ...")
    with progress() as bar:
        task = bar.add_task("dialogues", total=len(items))
        summary = run_simulation(items, settings, config, out_dir, on_progress=lambda d: bar.advance(task))
    out.print(f"{summary['dialogues']} dialogues in {out_dir / 'dialogues.jsonl'}; outcomes: {summary['outcomes']}")
    out.print(f"run summary: {out_dir / 'run.json'}")
