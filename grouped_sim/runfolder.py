"""The files of a run folder, named in one place (simulate writes them; report, compare and
resume read them)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PLAN_FILE = "plan.json"
DIALOGUES_FILE = "dialogues.jsonl"
CHECKPOINT_FILE = "checkpoints.sqlite"
RUN_FILE = "run.json"
LOCK_FILE = "run.lock"
REPORT_JSON = "report.json"
REPORT_HTML = "report.html"
JUDGE_CACHE = "judge.jsonl"
LIKENESS_CACHE = "likeness.jsonl"


@dataclass(frozen=True)
class RunFolder:
    """Paths inside one run folder."""

    root: Path

    @property
    def plan(self) -> Path:
        return self.root / PLAN_FILE

    @property
    def dialogues(self) -> Path:
        return self.root / DIALOGUES_FILE

    @property
    def checkpoints(self) -> Path:
        return self.root / CHECKPOINT_FILE

    @property
    def summary(self) -> Path:
        return self.root / RUN_FILE

    @property
    def lock(self) -> Path:
        """Held (flock) by the one process writing the run; it is released when that process dies."""
        return self.root / LOCK_FILE
