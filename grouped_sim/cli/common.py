"""Helpers shared by the CLI command modules: consoles, progress bars, default paths."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

console = Console(stderr=True)
out = Console()


def default_corpus() -> Path:
    """The shipped sample corpus: the default input of every command that reads a corpus."""
    from grouped_sim.data import sample_corpus_path

    return sample_corpus_path()


def progress() -> Progress:
    """One look for every long-running command: bar, done/total, elapsed, remaining."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )
