"""Helpers shared by the CLI command modules: consoles, progress bars, default paths."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

# Paths, ids, model answers and error messages are user text: printed as they are, never read as
# Rich markup ("[bold]x.jsonl" keeps its brackets, "[/x]" cannot crash a print) or emoji codes.
# The few styled labels go through `label()`, which escapes the text after them.
console = Console(stderr=True, markup=False, emoji=False)
out = Console(markup=False, emoji=False)


def label(target: Console, tag: str, style: str, text: str) -> None:
    """Print "TAG text" with TAG styled and `text` exactly as given (e.g. label(console, "error:", "red", msg))."""
    from rich.text import Text

    target.print(Text.assemble((tag, style), " ", text), soft_wrap=True)


def warn(warnings: Iterable[str]) -> None:
    """Print each warning of a result (the same strings its JSON keeps in `warnings`)."""
    for warning in warnings:
        label(console, "warning:", "yellow", warning)


def fmt(value: float | None, ci: list[float] | None = None) -> str:
    """A figure and its interval for the terminal; "n/a" when it could not be computed."""
    if value is None:
        return "n/a"
    return f"{value:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


def default_corpus() -> Path:
    """The shipped sample corpus: the default input of every command that reads a corpus."""
    from grouped_sim.data import sample_corpus_path

    return sample_corpus_path()


def run_config(config_file: Path | None, mode: str, **overrides: Any) -> Any:
    """The run's SimulationConfig: the --config file, then --mode, then the flags the user gave.

    `overrides` name SimulationConfig fields (None: not given); `concurrency` goes to `runtime`.
    """
    from grouped_sim.config import SimulatorMode, load_config
    from grouped_sim.errors import InputError

    config = load_config(config_file)
    try:
        updates: dict[str, Any] = {"mode": SimulatorMode(mode)}
    except ValueError as exc:
        raise InputError(f"--mode {mode!r}: expected one of full, no-sop, prompt-only") from exc
    concurrency = overrides.pop("concurrency", None)
    if concurrency is not None:
        updates["runtime"] = config.runtime.model_copy(update={"concurrency": concurrency})
    updates.update({k: v for k, v in overrides.items() if v is not None})
    return config.model_copy(update=updates)


def progress() -> Progress:
    """One look for every long-running command: bar, done/total, elapsed, remaining."""
    return Progress(
        TextColumn("{task.description}", style="bold", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )


def print_decision_check(check: dict[str, Any]) -> None:
    """Rates against the real ones, agreement against the majority guess, P(agree) against the base rate."""
    scores = check["scores"]
    out.print(f"  decisions of {check['n']} customers, P from {check['probability']}:")
    for r in check["rates"]:
        inside = {True: "inside", False: "OUTSIDE", None: "n/a"}[r["within"]]
        out.print(f"    {r['outcome']} rate: sim {fmt(r['predicted'])} real {fmt(r['real'], r['real_ci'])} ({inside} the real interval)")
    out.print(f"    same decision as the real person: {fmt(check['same_decision']['value'], check['same_decision']['ci'])}; majority guess {fmt(check['majority_same'])}")
    verdict = {True: "beats", False: "does not beat", None: "n/a against"}[scores["beats_base_rate"]]
    out.print(
        f"    P(agree): Brier {fmt(scores['brier']['value'], scores['brier']['ci'])} vs base rate {fmt(scores['brier_base_rate']['value'])}, majority {fmt(scores['brier_majority']['value'])}; "
        f"log loss {fmt(scores['log_loss']['value'])} vs {fmt(scores['log_loss_base_rate']['value'])}, {fmt(scores['log_loss_majority']['value'])} ({verdict} the base rate)"
    )
    if check.get("note"):
        out.print(f"    note: {check['note']}")
