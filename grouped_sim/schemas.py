"""Data contracts shared by every part of grouped-sim.

A corpus line and a simulated dialogue have the same shape, so anything that reads real
transcripts (the SOP store, the discriminator, the metrics) reads simulation output too.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Role = Literal["salesman", "customer"]


class Outcome(StrEnum):
    """How a call ended for the business: the label real corpora carry."""

    agreed = "agreed"
    refused = "refused"
    hung_up = "hung_up"
    callback = "callback"
    unknown = "unknown"


class TerminationReason(StrEnum):
    """Every way a simulated call can stop; no dialogue ends without one of these."""

    customer_hung_up = "customer_hung_up"
    customer_agreed = "customer_agreed"
    callback_arranged = "callback_arranged"
    customer_refused = "customer_refused"
    salesman_ended = "salesman_ended"
    max_turns = "max_turns"
    error = "error"


TERMINATION_TO_OUTCOME: dict[TerminationReason, Outcome] = {
    TerminationReason.customer_hung_up: Outcome.hung_up,
    TerminationReason.customer_agreed: Outcome.agreed,
    TerminationReason.callback_arranged: Outcome.callback,
    TerminationReason.customer_refused: Outcome.refused,
    TerminationReason.salesman_ended: Outcome.unknown,
    TerminationReason.max_turns: Outcome.unknown,
    TerminationReason.error: Outcome.unknown,
}


class CustomerAction(StrEnum):
    """What the customer does with a turn besides speaking."""

    speak = "speak"
    hang_up = "hang_up"
    agree = "agree"
    refuse = "refuse"
    callback = "callback"


class Intent(StrEnum):
    """The customer's current inclination, as the manager reads it."""

    reject = "reject"
    resist = "resist"
    neutral = "neutral"
    consider = "consider"
    accept = "accept"


class CustomerState(BaseModel):
    """The manager's latent customer state S_t. Scores live in [0, 1]."""

    model_config = ConfigDict(extra="forbid")

    interest: float = Field(0.3, ge=0.0, le=1.0)
    trust: float = Field(0.3, ge=0.0, le=1.0)
    patience: float = Field(0.7, ge=0.0, le=1.0)
    open_objections: list[str] = Field(default_factory=list)
    intent: Intent = Intent.neutral


class Profile(BaseModel):
    """A customer persona. Only `summary` is required so hand-written profiles stay cheap to write."""

    model_config = ConfigDict(extra="allow")

    summary: str = Field(..., min_length=1, description="One or two sentences a person would recognise.")
    archetype: str | None = None
    age: int | None = Field(None, ge=16, le=100)
    role: str | None = None
    domain: str | None = None
    business_context: str | None = None
    pain_points: list[str] = Field(default_factory=list)
    decision_factors: list[str] = Field(default_factory=list)
    communication_style: str | None = None
    buy_propensity: float | None = Field(None, ge=0.0, le=1.0)
    # Set by the profile generator (profiles/): the difficulty tier the profile was drawn for, and
    # must-have traits the user's constraints fixed. Real corpora usually leave them empty.
    difficulty: str | None = None
    traits: list[str] = Field(default_factory=list)

    def as_text(self) -> str:
        """The profile as the text that is embedded and shown to models: stable field order."""
        parts = [self.summary]
        if self.archetype:
            parts.append(f"Archetype: {self.archetype}.")
        if self.age is not None:
            parts.append(f"Age: {self.age}.")
        if self.role:
            parts.append(f"Role: {self.role}.")
        if self.business_context:
            parts.append(f"Business: {self.business_context}.")
        if self.pain_points:
            parts.append("Pain points: " + "; ".join(self.pain_points) + ".")
        if self.decision_factors:
            parts.append("Decides on: " + "; ".join(self.decision_factors) + ".")
        if self.communication_style:
            parts.append(f"Speaks: {self.communication_style}.")
        if self.traits:
            parts.append("Traits: " + "; ".join(self.traits) + ".")
        return " ".join(parts)


class Turn(BaseModel):
    """One utterance. Simulation adds stage, state, retrieval and action; real corpora may omit them."""

    model_config = ConfigDict(extra="forbid")

    role: Role
    text: str
    sop_stage: str | None = None
    state: CustomerState | None = None
    retrieved: list[str] = Field(default_factory=list)
    action: CustomerAction | None = None
    meta: dict[str, Any] = Field(default_factory=dict)

    @field_validator("text")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()


class Dialogue(BaseModel):
    """One call. `termination_reason` is set by the simulator; real corpora leave it empty."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(..., min_length=1)
    domain: str = Field(..., min_length=1)
    turns: list[Turn] = Field(..., min_length=1)
    outcome: Outcome = Outcome.unknown
    profile: Profile | None = None
    termination_reason: TerminationReason | None = None
    error: dict[str, str] | None = None
    meta: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _has_both_roles_or_error(self) -> Dialogue:
        roles = {t.role for t in self.turns}
        if "customer" not in roles and self.termination_reason is not TerminationReason.error:
            raise ValueError("a dialogue needs at least one customer turn")
        return self

    def customer_turns(self) -> list[Turn]:
        return [t for t in self.turns if t.role == "customer"]

    def salesman_turns(self) -> list[Turn]:
        return [t for t in self.turns if t.role == "salesman"]
