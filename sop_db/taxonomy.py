"""The SOP taxonomy, loaded from `data/taxonomy.yaml` (data, not code, so teams can adapt it)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from grouped_sim.errors import InputError
from grouped_sim.resources import load_resource, load_user_yaml


class Stage(BaseModel):
    id: str = Field(..., pattern=r"^[a-z_]+$")
    name: str
    description: str
    examples: list[str] = Field(default_factory=list)


class Taxonomy(BaseModel):
    stages: list[Stage] = Field(..., min_length=1)

    @property
    def ids(self) -> list[str]:
        return [s.id for s in self.stages]

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
