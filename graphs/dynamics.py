"""The light manager's decision dynamics as data: starting states and what each stage does.

The numbers live in `graphs/data/dynamics.yaml` (set by hand for the sample corpus); the rules that
read them are in graphs/manager.py.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field

from grouped_sim.resources import load_resource


class StartState(BaseModel):
    """S_0 for one archetype, and how fast it loses patience."""

    model_config = ConfigDict(extra="forbid")

    interest: float = Field(ge=0.0, le=1.0)
    trust: float = Field(ge=0.0, le=1.0)
    patience: float = Field(ge=0.0, le=1.0)
    impatience: float = Field(1.0, ge=0.0, le=5.0, description="multiplier on the patience lost every turn")


class StageEffect(BaseModel):
    """What one salesman move of a stage does to the state, before the per-turn decay."""

    model_config = ConfigDict(extra="forbid")

    interest: float = Field(0.0, ge=-1.0, le=1.0)
    trust: float = Field(0.0, ge=-1.0, le=1.0)
    patience: float = Field(0.0, ge=-1.0, le=1.0)


class Dynamics(BaseModel):
    model_config = ConfigDict(extra="forbid")

    default_start: StartState
    archetype_start: dict[str, StartState] = Field(default_factory=dict)
    stage_effects: dict[str, StageEffect] = Field(default_factory=dict)

    def start_for(self, archetype: str | None) -> StartState:
        return self.archetype_start.get(archetype or "", self.default_start)

    def effect_of(self, stage: str) -> StageEffect:
        return self.stage_effects.get(stage, StageEffect())


@lru_cache(maxsize=1)
def prior_dynamics() -> Dynamics:
    """The hand-set dynamics shipped with grouped-sim."""
    return Dynamics.model_validate(load_resource("grouped_sim.graphs", "data/dynamics.yaml"))
