"""The simulation graph: salesman → manager → customer → route, as in Algorithm 1.

Nodes are small functions from state to a partial update; the dependencies (models, manager,
store, config) are bound when the graph is built. A failing node does not raise out of the graph:
it records whose failure it was and the route ends the call with TerminationReason.error.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from typing import Any

from langchain_core.runnables import RunnableLambda
from langgraph.graph import END, START, StateGraph

from grouped_sim.config import RuntimeParams, SimulationConfig, SimulatorMode
from grouped_sim.schemas import CustomerAction, CustomerState, Profile, TerminationReason, Turn
from grouped_sim.graphs.customer import generate_reply
from grouped_sim.graphs.manager import Manager, ManagerUpdate, compose_guidance, intent_of
from grouped_sim.graphs.resilience import aretry_call, retry_call
from grouped_sim.graphs.salesman import SalesmanAgent, is_goodbye
from grouped_sim.graphs.state import SimState
from grouped_sim.sop_db.store import BehaviourChain

ACTION_ENDINGS: dict[CustomerAction, TerminationReason] = {
    CustomerAction.hang_up: TerminationReason.customer_hung_up,
    CustomerAction.agree: TerminationReason.customer_agreed,
    CustomerAction.callback: TerminationReason.callback_arranged,
    CustomerAction.refuse: TerminationReason.customer_refused,
}


@dataclass
class GraphDeps:
    """What the nodes need; built once per run and shared by all dialogues."""

    salesman: SalesmanAgent
    customer_model: Any  # a langchain-core BaseChatModel
    manager: Manager | None
    config: SimulationConfig
    runtime: RuntimeParams | None = None  # retries/backoff/timeouts; None: one try, no limits

    def __post_init__(self) -> None:
        if self.runtime is None:
            self.runtime = self.config.runtime


def _seed(state: SimState, salt: str) -> int:
    """A per-call, per-turn seed: the dialogue seed reaches every sampling call."""
    blob = f"{state.get('seed', 0)}:{state.get('turn_index', 0)}:{salt}".encode()
    return int(hashlib.sha256(blob).hexdigest()[:8], 16)


def is_store_error(exc: BaseException) -> bool:
    """Failures of the SOP store (Chroma on disk or a Chroma server), wherever they surface."""
    from grouped_sim.sop_db.store import StoreError

    for cause in (exc, exc.__cause__, exc.__context__):
        if cause is None:
            continue
        if isinstance(cause, StoreError) or type(cause).__module__.split(".")[0] == "chromadb":
            return True
    return False


def failure(who: str, exc: BaseException) -> dict[str, Any]:
    """The state update that ends a call with TerminationReason.error, saying whose failure it was.

    `who` is one of salesman, customer, manager, store, infrastructure; a store error raised
    inside the manager is blamed on the store.
    """
    if who == "manager" and is_store_error(exc):
        who = "store"
    return {"termination": TerminationReason.error.value, "error": {"who": who, "type": type(exc).__name__, "message": str(exc)[:500]}}


_failure = failure


def _said_update(state: SimState, said: Any) -> dict[str, Any]:
    texts = [said] if isinstance(said, str) else list(said)
    texts = [t.strip() for t in texts if t and t.strip()]
    if not texts:
        return _failure("salesman", ValueError("the salesman returned an empty message"))
    turns = [Turn(role="salesman", text=t).model_dump(mode="json") for t in texts]
    # The move joins the history in the manager node, once it carries its stage tag.
    return {"pending": turns, "turn_index": state.get("turn_index", 0) + 1}


def _salesman_done(exc: BaseException) -> bool:
    from grouped_sim.graphs.adapters import SalesmanDone

    return isinstance(exc, SalesmanDone)


def _history(state: SimState) -> list[Turn]:
    return [Turn.model_validate(t) for t in state.get("history", [])]


def build_graph(deps: GraphDeps, checkpointer: Any = None) -> Any:
    """Compile the StateGraph; pass a LangGraph checkpointer to persist every step."""
    config = deps.config
    use_manager = config.mode is not SimulatorMode.prompt_only and deps.manager is not None
    use_sop = config.mode is SimulatorMode.full

    runtime = deps.runtime
    agent = deps.salesman

    def _call_agent(state: SimState, history: list[Turn]) -> Any:
        seed = _seed(state, "salesman")
        if hasattr(agent, "respond_in"):  # adapters that want the dialogue id (webhooks, replay)
            return agent.respond_in(history, dialogue_id=state["dialogue_id"], domain=state["domain"], seed=seed)
        return agent.respond(history, domain=state["domain"], seed=seed)

    async def _acall_agent(state: SimState, history: list[Turn]) -> Any:
        seed = _seed(state, "salesman")
        if hasattr(agent, "arespond_in"):
            return await agent.arespond_in(history, dialogue_id=state["dialogue_id"], domain=state["domain"], seed=seed)
        return await agent.arespond(history, domain=state["domain"], seed=seed)

    def salesman(state: SimState) -> dict[str, Any]:
        history = _history(state)
        try:
            said = retry_call(lambda: _call_agent(state, history), runtime)
        except Exception as exc:  # the agent under test failed: blame it, keep the run going
            if _salesman_done(exc):
                return {"termination": TerminationReason.salesman_ended.value}
            return _failure("salesman", exc)
        return _said_update(state, said)

    async def asalesman(state: SimState) -> dict[str, Any]:
        """Async agents (HTTP adapters, async callables) are awaited on the loop; others run in a thread."""
        if not (hasattr(agent, "arespond_in") or hasattr(agent, "arespond")):
            return await asyncio.to_thread(salesman, state)
        history = _history(state)
        try:
            said = await aretry_call(lambda: _acall_agent(state, history), runtime)
        except Exception as exc:
            if _salesman_done(exc):
                return {"termination": TerminationReason.salesman_ended.value}
            return _failure("salesman", exc)
        return _said_update(state, said)

    def manager(state: SimState) -> dict[str, Any]:
        pending = [dict(t) for t in state.get("pending", [])]
        history = _history(state) + [Turn.model_validate(t) for t in pending]
        current = CustomerState.model_validate(state["customer_state"])
        if not use_manager:
            update = ManagerUpdate(stage="", state=current, guidance="", source="none")
            return {
                "history": pending,
                "pending": [],
                "update": update.model_dump(mode="json"),
                "guidance": "",
                "planned_action": CustomerAction.speak.value,
            }
        try:
            update = retry_call(
                lambda: deps.manager.step(  # type: ignore[union-attr]
                    profile=Profile.model_validate(state["profile"]),
                    history=history,
                    state=current,
                    chains=[BehaviourChain.model_validate(c) for c in state.get("chains", [])] if use_sop else [],
                    seed=_seed(state, "manager"),
                    use_sop=use_sop,
                ),
                runtime,
            )
        except Exception as exc:
            return {**_failure("manager", exc), "history": pending, "pending": []}
        for turn in pending:
            turn["sop_stage"] = update.stage
        return {
            "history": pending,
            "pending": [],
            "update": update.model_dump(mode="json"),
            "customer_state": update.state.model_dump(mode="json"),
            "stage": update.stage,
            "guidance": update.guidance,
            "planned_action": update.action.value,
        }

    def customer(state: SimState) -> dict[str, Any]:
        history = _history(state)
        update = ManagerUpdate.model_validate(state["update"])
        profile = Profile.model_validate(state["profile"])
        chains = [BehaviourChain.model_validate(c) for c in state.get("chains", [])] if use_sop else []
        try:
            reply = retry_call(
                lambda: generate_reply(
                    deps.customer_model,
                    profile=profile,
                    domain=state["domain"],
                    history=history,
                    guidance=update.guidance if use_manager else "",
                    planned=update.action,
                    chains=chains,
                    examples=update.examples,
                    seed=_seed(state, "customer"),
                    retries=config.role_guard_retries,
                ),
                runtime,
            )
        except Exception as exc:
            return _failure("customer", exc)
        final_state = update.state
        if reply.action is not update.action:
            final_state = final_state.model_copy(update={"intent": intent_of(final_state, reply.action)})
        turn = Turn(
            role="customer",
            text=reply.text,
            sop_stage=update.stage or None,
            state=final_state if use_manager else None,
            retrieved=update.retrieved,
            action=reply.action,
            meta={
                "guidance": update.guidance,
                "manager": update.source,
                "stage_confidence": round(update.stage_confidence, 3),
                "attempts": reply.attempts,
                "fallback": reply.fallback,
                **({"rejected": reply.rejected} if reply.rejected else {}),
            },
        )
        return {"history": [turn.model_dump(mode="json")], "customer_state": final_state.model_dump(mode="json")}

    def route(state: SimState) -> str:
        return "end" if state.get("termination") else "salesman"

    def decide(state: SimState) -> dict[str, Any]:
        """Set the termination reason, if the call is over; kept as a node so it is checkpointed."""
        if state.get("termination"):
            return {}
        history = state.get("history", [])
        last = history[-1] if history else {}
        action = CustomerAction(last.get("action") or CustomerAction.speak.value) if last.get("role") == "customer" else None
        if action in ACTION_ENDINGS:
            return {"termination": ACTION_ENDINGS[action].value}
        salesman_turns = [t for t in history if t["role"] == "salesman"]
        if len(salesman_turns) > 1 and is_goodbye(salesman_turns[-1]["text"]):
            return {"termination": TerminationReason.salesman_ended.value}
        if state.get("turn_index", 0) >= config.max_turns:
            return {"termination": TerminationReason.max_turns.value}
        return {}

    def after_step(state: SimState) -> str:
        return "end" if state.get("termination") else "next"

    graph = StateGraph(SimState)
    # Both forms: `invoke` runs the sync node, `ainvoke` awaits the async one.
    graph.add_node("salesman", RunnableLambda(salesman, afunc=asalesman, name="salesman"))
    graph.add_node("manager", manager)
    graph.add_node("customer", customer)
    graph.add_node("decide", decide)
    graph.add_edge(START, "salesman")
    graph.add_conditional_edges("salesman", after_step, {"next": "manager", "end": END})
    graph.add_conditional_edges("manager", after_step, {"next": "customer", "end": END})
    graph.add_edge("customer", "decide")
    graph.add_conditional_edges("decide", route, {"salesman": "salesman", "end": END})
    return graph.compile(checkpointer=checkpointer)


def initial_state(dialogue_id: str, profile: Profile, domain: str, chains: list[BehaviourChain], seed: int, manager: Manager | None) -> SimState:
    """Phase 1 of Algorithm 1: profile, K_p and S_0."""
    start = manager.initial_state(profile) if manager is not None else CustomerState()
    return SimState(
        dialogue_id=dialogue_id,
        domain=domain,
        seed=seed,
        profile=profile.model_dump(mode="json"),
        chains=[c.model_dump(mode="json") for c in chains],
        history=[],
        pending=[],
        customer_state=start.model_dump(mode="json"),
        stage=None,
        guidance=compose_guidance(start, CustomerAction.speak, "opening") if manager is not None else "",
        planned_action=CustomerAction.speak.value,
        turn_index=0,
        termination=None,
        error=None,
    )
