"""The graph's state: plain JSON-able values, so any LangGraph checkpointer can persist it."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict


class SimState(TypedDict, total=False):
    """One simulated call. `history` grows through its reducer; every other key is replaced.

    Set before the graph runs: dialogue_id, domain, seed, case_id, case_index, profile.
    Phase 1 (the `init` node) adds chains (K_p) and customer_state (S_0); each turn the salesman
    node writes `move`, and the respond node moves it into `history` with its stage tag.
    """

    dialogue_id: str
    domain: str
    seed: int
    case_id: str  # the plan item's source (a replayed salesman picks its script by it)
    case_index: int  # the plan item's position in the run
    profile: dict[str, Any]  # grouped_sim.schemas.Profile
    chains: list[dict[str, Any]]  # grouped_sim.sop_db.store.BehaviourChain: K_p
    customer_state: dict[str, Any]  # grouped_sim.schemas.CustomerState: S_t
    history: Annotated[list[dict[str, Any]], operator.add]  # grouped_sim.schemas.Turn
    move: list[dict[str, Any]]  # the salesman's latest move, until the manager has tagged it
    turn_index: int  # salesman moves so far
    termination: str | None  # grouped_sim.schemas.TerminationReason
    error: dict[str, str] | None
