"""The simulation graph: Algorithm 1 of the Grouped Simulator paper as a LangGraph StateGraph.

    START → init      Phase 1: K_p ← Retrieve(φ(p), M_SOP), S_0 ← InitState(p)
          → salesman  lines 8-9: u_sales ← AI-Salesman(H)
          → respond   lines 10-13: S_t, g_sop ← Manager(H, p, K_p); u_customer ← CustomerModel(p, g_sop, H)
          → decide    the loop's condition: a customer decision, the salesman's goodbye, max turns
          → salesman | END

Nodes are module-level functions of the state and a `Runtime[SimDeps]` (LangGraph's run-scoped
context), so one compiled graph serves every run and each node is testable alone. `respond` is
the per-turn function `serve` calls too. A failing node does not raise out of the graph: it
records whose failure it was, and the call ends with TerminationReason.error.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from langchain_core.language_models import BaseChatModel
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from pydantic import BaseModel

from grouped_sim.config import SimulationConfig, SimulatorMode
from grouped_sim.graphs.customer import CustomerPrompt, Picker, generate_reply
from grouped_sim.graphs.manager import Manager, ManagerUpdate, intent_of
from grouped_sim.graphs.resilience import aretry_call, retry_call
from grouped_sim.graphs.salesman import CallContext, Salesman, SalesmanDone, is_goodbye
from grouped_sim.graphs.state import SimState
from grouped_sim.schemas import CustomerAction, CustomerState, Profile, TerminationReason, Turn
from grouped_sim.sop_db.store import BehaviourChain, SOPStore, StoreError

ACTION_ENDINGS: dict[CustomerAction, TerminationReason] = {
    CustomerAction.hang_up: TerminationReason.customer_hung_up,
    CustomerAction.agree: TerminationReason.customer_agreed,
    CustomerAction.callback: TerminationReason.callback_arranged,
    CustomerAction.refuse: TerminationReason.customer_refused,
}


@dataclass(frozen=True)
class ManagerDeps:
    """The manager's side of a run: the manager, the SOP store it retrieves from, the config.

    What reads a run's decisions outside its dialogues (the probe's final decision and script odds)
    needs only this, so a driver whose dialogues run on Ray workers builds it without loading a
    customer model or a salesman (grouped_sim.app.build.build_manager_deps)."""

    manager: Manager | None
    store: SOPStore | None
    config: SimulationConfig

    @property
    def use_manager(self) -> bool:
        return self.config.mode is not SimulatorMode.prompt_only and self.manager is not None

    @property
    def use_sop(self) -> bool:
        return self.config.mode is SimulatorMode.full and self.store is not None


@dataclass(frozen=True)
class SimDeps(ManagerDeps):
    """The participants and store of a run, built once (grouped_sim.app.build) and shared by every call."""

    salesman: Salesman
    customer: BaseChatModel
    pick: Picker | None = None  # best-of-N: scores the customer's candidate replies (config.best_of)


def turn_seed(seed: int, turn_index: int, salt: str) -> int:
    """A per-call, per-turn, per-role seed: the dialogue seed reaches every sampling call."""
    blob = f"{seed}:{turn_index}:{salt}".encode()
    return int(hashlib.sha256(blob).hexdigest()[:8], 16)


def is_store_error(exc: BaseException) -> bool:
    """Failures of the SOP store (Chroma on disk or a Chroma server), wherever they surface."""
    for cause in (exc, exc.__cause__, exc.__context__):
        if cause is not None and (isinstance(cause, StoreError) or type(cause).__module__.split(".")[0] == "chromadb"):
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


def retrieve_chains(deps: ManagerDeps, profile: Profile, domain: str, own_source: str) -> list[BehaviourChain]:
    """Retrieval: K_p, the behaviour chains of the K real customers most like this one (eq. 8).

    One extra is asked for, so the profile's own source call can be left out: a simulated customer
    never reads the transcript it was taken from.
    """
    if not deps.use_sop:
        return []
    k = deps.config.manager.top_k
    chains = deps.store.retrieve(profile.as_text(), k=k + 1, domain=domain)  # type: ignore[union-attr]
    return [c for c in chains if c.id != own_source][:k]


class TurnFailed(Exception):
    """The manager or the customer model failed this turn (after retries); `who` is blamed.

    `move` is the salesman's move as far as it got (tagged when the manager had tagged it).
    """

    def __init__(self, who: str, cause: BaseException, move: list[Turn]) -> None:
        super().__init__(f"{who}: {cause}")
        self.who = who
        self.cause = cause
        self.move = move


class TurnResult(BaseModel):
    """One answered salesman move: the move with its stage tag, the customer's turn, and S_t."""

    move: list[Turn]
    customer: Turn
    state: CustomerState
    update: ManagerUpdate


def manager_step(deps: SimDeps, profile: Profile, history: list[Turn], state: CustomerState, chains: list[BehaviourChain], seed: int) -> ManagerUpdate:
    """Algorithm 1, line 10: stage tag, S_t and the guidance (no manager: S_t stays, no guidance)."""
    if not deps.use_manager:
        return ManagerUpdate(stage="", state=state, source="none")
    use_sop = deps.use_sop
    return retry_call(
        lambda: deps.manager.step(profile=profile, history=history, state=state, chains=chains if use_sop else [], seed=seed, use_sop=use_sop),  # type: ignore[union-attr]
        deps.config.runtime,
    )


def customer_turn(deps: SimDeps, inputs: CustomerPrompt, update: ManagerUpdate, seed: int) -> Turn:
    """Algorithm 1, line 12: the customer model answers, conditioned on p, g_sop and H."""
    config = deps.config
    reply = retry_call(lambda: generate_reply(deps.customer, inputs, update.action, seed, config.role_guard_retries, config.best_of.n, deps.pick), config.runtime)
    state, decision = update.state, update.decision
    if reply.action is not update.action:  # the model ended the call itself: its intent follows, and the decision is its own
        state = state.model_copy(update={"intent": intent_of(state, reply.action)})
        decision = decision.model_copy(update={"by": "customer-model-tag"})
    meta: dict[str, Any] = {"guidance": update.guidance, "manager": update.source, "stage_confidence": round(update.stage_confidence, 3)}
    meta["decision"] = decision.model_dump(exclude_none=True)
    meta.update({"attempts": reply.attempts, "fallback": reply.fallback, **({"rejected": reply.rejected} if reply.rejected else {}), **({"pick_scores": reply.scores} if reply.scores else {})})
    return Turn(
        role="customer",
        text=reply.text,
        sop_stage=update.stage or None,
        state=state if deps.use_manager else None,
        retrieved=[r.id for r in update.references],
        action=reply.action,
        meta=meta,
    )


def respond(
    deps: SimDeps, *, profile: Profile, domain: str, history: list[Turn], move: list[Turn], state: CustomerState, chains: list[BehaviourChain], seed: int, turn_index: int
) -> TurnResult:
    """The per-turn function: manager step, then customer step. The graph and `serve` both call it."""
    heard = history + move
    try:
        update = manager_step(deps, profile, heard, state, chains, turn_seed(seed, turn_index, "manager"))
    except Exception as exc:
        raise TurnFailed("manager", exc, move) from exc
    tagged = [t.model_copy(update={"sop_stage": update.stage}) for t in move] if deps.use_manager else move
    guidance = update.guidance if deps.use_manager else ""
    inputs = CustomerPrompt(profile=profile, domain=domain, history=history + tagged, guidance=guidance, references=update.references)
    try:
        turn = customer_turn(deps, inputs, update, turn_seed(seed, turn_index, "customer"))
    except Exception as exc:
        raise TurnFailed("customer", exc, tagged) from exc
    return TurnResult(move=tagged, customer=turn, state=turn.state or update.state, update=update)


# ---- nodes -------------------------------------------------------------------------------------


def _history(state: SimState) -> list[Turn]:
    return [Turn.model_validate(t) for t in state.get("history", [])]


def _dump(turns: list[Turn]) -> list[dict[str, Any]]:
    return [t.model_dump(mode="json") for t in turns]


def init(state: SimState, runtime: Runtime[SimDeps]) -> dict[str, Any]:
    """Phase 1: K_p and S_0 (a store failure ends the call, blamed on the store)."""
    deps = runtime.context
    profile = Profile.model_validate(state["profile"])
    try:
        chains = retry_call(lambda: retrieve_chains(deps, profile, state["domain"], state.get("case_id", "")), deps.config.runtime)
    except Exception as exc:
        return failure("store", exc)
    start = deps.manager.initial_state(profile) if deps.use_manager else CustomerState()  # type: ignore[union-attr]
    return {"chains": [c.model_dump(mode="json") for c in chains], "customer_state": start.model_dump(mode="json"), "turn_index": 0}


async def salesman(state: SimState, runtime: Runtime[SimDeps]) -> dict[str, Any]:
    """The agent under test speaks (its failures are its own: blamed on the salesman)."""
    deps = runtime.context
    turn_index = state.get("turn_index", 0)
    call = CallContext(
        dialogue_id=state["dialogue_id"], domain=state["domain"], seed=turn_seed(state["seed"], turn_index, "salesman"),
        history=_history(state), case_id=state.get("case_id", ""), case_index=state.get("case_index", 0),
    )
    try:
        said = await aretry_call(lambda: deps.salesman.respond(call), deps.config.runtime)
    except SalesmanDone:
        return {"termination": TerminationReason.salesman_ended.value}
    except Exception as exc:
        return failure("salesman", exc)
    texts = [t.strip() for t in said if t and t.strip()]
    if not texts:
        return failure("salesman", ValueError("the salesman returned an empty message"))
    return {"move": _dump([Turn(role="salesman", text=t) for t in texts]), "turn_index": turn_index + 1}


def respond_node(state: SimState, runtime: Runtime[SimDeps]) -> dict[str, Any]:
    """The manager and the customer answer the move; the move joins the history with its stage tag."""
    move = [Turn.model_validate(t) for t in state.get("move", [])]
    try:
        result = respond(
            runtime.context, profile=Profile.model_validate(state["profile"]), domain=state["domain"], history=_history(state), move=move,
            state=CustomerState.model_validate(state["customer_state"]), chains=[BehaviourChain.model_validate(c) for c in state.get("chains", [])],
            seed=state["seed"], turn_index=state["turn_index"],
        )
    except TurnFailed as failed:
        return {**failure(failed.who, failed.cause), "history": _dump(failed.move), "move": []}
    return {"history": _dump([*result.move, result.customer]), "move": [], "customer_state": result.state.model_dump(mode="json")}


def decide(state: SimState, runtime: Runtime[SimDeps]) -> dict[str, Any]:
    """The loop's condition: set the termination reason when the call is over (checkpointed as a node)."""
    if state.get("termination"):
        return {}
    history = state.get("history", [])
    last = history[-1] if history else {}
    if last.get("role") == "customer" and CustomerAction(last.get("action") or "speak") in ACTION_ENDINGS:
        return {"termination": ACTION_ENDINGS[CustomerAction(last["action"])].value}
    salesman_turns = [t for t in history if t["role"] == "salesman"]
    if len(salesman_turns) > 1 and is_goodbye(salesman_turns[-1]["text"]):
        return {"termination": TerminationReason.salesman_ended.value}
    if state.get("turn_index", 0) >= runtime.context.config.max_turns:
        return {"termination": TerminationReason.max_turns.value}
    return {}


def route(state: SimState) -> str:
    """Go on, or end: every way out of the loop has set `termination`."""
    return END if state.get("termination") else "next"


def build_graph(checkpointer: Any = None) -> Any:
    """Compile the StateGraph; pass a LangGraph checkpointer to persist every step.

    The participants are not baked in: pass them as `context=SimDeps(...)` to invoke/ainvoke.
    """
    graph = StateGraph(SimState, context_schema=SimDeps)
    graph.add_node("init", init)
    graph.add_node("salesman", salesman)
    graph.add_node("respond", respond_node)
    graph.add_node("decide", decide)
    graph.add_edge(START, "init")
    graph.add_conditional_edges("init", route, {"next": "salesman", END: END})
    graph.add_conditional_edges("salesman", route, {"next": "respond", END: END})
    graph.add_edge("respond", "decide")
    graph.add_conditional_edges("decide", route, {"next": "salesman", END: END})
    return graph.compile(checkpointer=checkpointer)
