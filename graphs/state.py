"""The graph's state: plain JSON-able values, so any LangGraph checkpointer can persist it."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict


class SimState(TypedDict, total=False):
    """One simulated call. `history` grows through its reducer; every other key is replaced."""

    dialogue_id: str
    domain: str
    seed: int
    profile: dict[str, Any]  # grouped_sim.schemas.Profile
    chains: list[dict[str, Any]]  # grouped_sim.sop_db.store.BehaviourChain, K_p
    history: Annotated[list[dict[str, Any]], operator.add]  # grouped_sim.schemas.Turn
    pending: list[dict[str, Any]]  # the salesman's move, until the manager has tagged it
    customer_state: dict[str, Any]  # grouped_sim.schemas.CustomerState
    stage: str | None
    guidance: str
    planned_action: str
    update: dict[str, Any]  # the manager's last ManagerUpdate
    turn_index: int  # salesman moves so far
    termination: str | None  # grouped_sim.schemas.TerminationReason
    error: dict[str, str] | None
