"""The SOP taxonomy, loaded from `data/taxonomy.yaml` (data, not code, so teams can adapt it)."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from grouped_sim.errors import InputError
from grouped_sim.io import load_user_yaml
from grouped_sim.resources import load_resource


class StageKind(StrEnum):
    """What a stage means for the customer's decision, whatever a team calls it."""

    opening = "opening"
    permission = "permission"
    discovery = "discovery"
    pitch = "pitch"
    question = "question"
    objection = "objection"
    closing = "closing"  # the salesman asks for a commitment
    follow_up = "follow_up"  # a callback or information is arranged
    goodbye = "goodbye"  # the call is ending
    other = "other"


PUSH_KINDS = frozenset({StageKind.pitch, StageKind.closing})
DECISION_KINDS = frozenset({StageKind.closing, StageKind.follow_up})


class Stage(BaseModel):
    id: str = Field(..., pattern=r"^[a-z_]+$")
    name: str
    description: str
    kind: StageKind = StageKind.other
    objection: str | None = Field(None, description="for objection stages: the objection it opens (price, trust, ...)")
    examples: list[str] = Field(default_factory=list)


class Taxonomy(BaseModel):
    stages: list[Stage] = Field(..., min_length=1)

    @property
    def ids(self) -> list[str]:
        return [s.id for s in self.stages]

    def kind_of(self, stage_id: str | None) -> StageKind:
        """The kind of a stage id (`other` for an id the taxonomy does not know, or none)."""
        for stage in self.stages:
            if stage.id == stage_id:
                return stage.kind
        return StageKind.other

    def objection_of(self, stage_id: str) -> str | None:
        for stage in self.stages:
            if stage.id == stage_id:
                return stage.objection
        return None

    def first_of(self, kind: StageKind) -> str | None:
        """The first stage of a kind (the taxonomy's order), or None when it has none."""
        return next((s.id for s in self.stages if s.kind is kind), None)

    def __len__(self) -> int:
        return len(self.stages)

    def get(self, stage_id: str) -> Stage:
        for stage in self.stages:
            if stage.id == stage_id:
                return stage
        raise KeyError(stage_id)

    def check(self, stage_id: str | None, where: str) -> None:
        """Raise an InputError naming `where` when a label is not a node of the taxonomy."""
        if stage_id is not None and stage_id not in self.ids:
            raise InputError(f"{where}: sop_stage {stage_id!r} is not in the taxonomy ({', '.join(self.ids)})")


def load_taxonomy(path: Path | str | None = None) -> Taxonomy:
    """The built-in taxonomy, or a YAML file of the same shape."""
    if path is None:
        return _builtin()
    raw = load_user_yaml(path, "taxonomy file")
    try:
        return Taxonomy.model_validate(raw)
    except ValidationError as exc:
        raise InputError(f"{path}: not a valid taxonomy file: {exc}") from exc


@lru_cache(maxsize=1)
def _builtin() -> Taxonomy:
    return Taxonomy.model_validate(load_resource("grouped_sim.sop_db", "data/taxonomy.yaml"))
