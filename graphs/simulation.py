"""Running one dialogue: a function of its participants and its plan item, with no file I/O.

tau2-bench keeps its turn loop free of side effects and puts threads, retries and checkpoints in
a batch layer around it; so do we (graphs/batch.py). What persistence there is comes in through
the compiled graph's checkpointer, which the batch layer chooses.
"""

from __future__ import annotations

from typing import Any

from grouped_sim.graphs.graph import ACTION_ENDINGS, SimDeps, failure
from grouped_sim.graphs.plan import SimProfile
from grouped_sim.graphs.state import SimState
from grouped_sim.schemas import TERMINATION_TO_OUTCOME, Dialogue, TerminationReason, Turn


def start_state(item: SimProfile, seed: int, dialogue_id: str, index: int) -> SimState:
    """What the graph starts from: who the customer is and the call's seed (Phase 1 does the rest)."""
    return SimState(
        dialogue_id=dialogue_id,
        domain=item.domain,
        seed=seed,
        case_id=item.source,
        case_index=item.customer if item.customer is not None else index,
        profile=item.profile.model_dump(mode="json"),
        history=[],
    )


def graph_config(thread_id: str, max_turns: int) -> dict[str, Any]:
    """LangGraph's run config: the checkpoint thread, and a step budget the call can never exceed."""
    return {"recursion_limit": 6 * max_turns + 10, "configurable": {"thread_id": thread_id}}


def error_state(dialogue_id: str, seed: int, update: dict[str, Any]) -> dict[str, Any]:
    """The final state of a call that broke outside any node (blamed in `update`)."""
    return {"dialogue_id": dialogue_id, "seed": seed, "history": [], "chains": [], **update}


def to_dialogue(state: dict[str, Any], item: SimProfile, meta: dict[str, Any]) -> Dialogue:
    """The dialogue a final graph state describes, in the corpus shape plus simulation fields."""
    reason = TerminationReason(state.get("termination") or TerminationReason.max_turns.value)
    turns = [Turn.model_validate(t) for t in state.get("history", [])]
    error = state.get("error")
    if reason is not TerminationReason.error and not any(t.role == "customer" for t in turns):
        # A call the graph left without a single customer turn is a failure of the machinery,
        # recorded as such rather than crashing the run on the Dialogue contract.
        reason = TerminationReason.error
        error = {"who": "infrastructure", "type": "IncompleteDialogue", "message": "the call ended before the customer spoke"}
    return Dialogue(
        id=state["dialogue_id"],
        domain=item.domain,
        turns=turns or [Turn(role="salesman", text="")],
        outcome=TERMINATION_TO_OUTCOME[reason],
        profile=item.profile,
        termination_reason=reason,
        error=error,
        meta={
            "seed": state["seed"], "profile_source": item.source, "trial": item.trial, **meta,
            "retrieved": [c["id"] for c in state.get("chains", [])],
            **({"decision": decided} if (decided := decision_of(turns, reason)) else {}),
        },
    )


def decision_of(turns: list[Turn], reason: TerminationReason) -> dict[str, Any] | None:
    """Where a call's decision came from (the deciding customer turn's record), when it ended in one."""
    if reason not in ACTION_ENDINGS.values() or not turns or turns[-1].role != "customer":
        return None
    return turns[-1].meta.get("decision")


async def run_dialogue(graph: Any, deps: SimDeps, item: SimProfile, seed: int, dialogue_id: str, index: int, meta: dict[str, Any], thread_id: str | None = None) -> Dialogue:
    """Simulate one customer from the start of the call to its end."""
    config = graph_config(thread_id or dialogue_id, deps.config.max_turns)
    try:
        final = await graph.ainvoke(start_state(item, seed, dialogue_id, index), config=config, context=deps)
    except Exception as exc:  # outside any node: the graph machinery itself
        final = error_state(dialogue_id, seed, failure("infrastructure", exc))
    return to_dialogue(final, item, meta)
