"""The simulated customer as an OpenAI-compatible chat-completions endpoint.

Any agent framework that can call a chat model can then talk to a simulated customer: the agent
sends the call so far and gets the customer's next line. From the endpoint's side the customer is
the assistant:

- `user` messages are the salesman's lines (one or several in a row form one move),
- `assistant` messages are the customer's earlier replies, as this endpoint returned them,
- `system` messages are ignored: who the customer is comes from the served profile.

The endpoint is stateless: the manager's latent state is rebuilt from the history on every request
by replaying the manager over the earlier moves, with the seeds the simulation graph uses (the
request's `seed` plays the dialogue seed), and the last move is answered by the same per-turn
function the graph calls (grouped_sim.graphs.graph.respond). So a restarted server answers the
same way, and a served customer says what a simulated one would. Each profile is one model id
(`customer-0`, `customer-1`, ...); `/v1/models` lists them. The reply carries the customer's action
(hang up, agree, ...) and state in an extra `grouped_sim` field, and `finish_reason` is `"stop"`
or, when the customer ends the call, `"end_call"`.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from grouped_sim.errors import InputError
from grouped_sim.graphs.adapters import salesman_moves
from grouped_sim.graphs.graph import SimDeps, TurnResult, manager_step, respond, retrieve_chains, turn_seed
from grouped_sim.graphs.plan import SimProfile, load_profiles_file, profile_item
from grouped_sim.schemas import CustomerAction, CustomerState, Profile, Turn
from grouped_sim.sop_db.store import BehaviourChain

ENDING_ACTIONS = {CustomerAction.hang_up, CustomerAction.agree, CustomerAction.refuse, CustomerAction.callback}


class ChatMessage(BaseModel):
    role: str
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):  # content parts: keep the text ones
            return " ".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")
        return self.content or ""


class ChatRequest(BaseModel):
    """The subset of the chat-completions request the customer reads; other fields are accepted and ignored."""

    model_config = {"extra": "allow"}

    model: str = "customer-0"
    messages: list[ChatMessage] = Field(default_factory=list)
    seed: int | None = None
    stream: bool = False


def to_turns(messages: list[ChatMessage]) -> list[Turn]:
    """Request messages → call history (user = salesman, assistant = customer, system dropped)."""
    turns: list[Turn] = []
    for message in messages:
        if message.role in ("user", "assistant") and message.text().strip():
            turns.append(Turn(role="salesman" if message.role == "user" else "customer", text=message.text()))
    return turns


def split_last_move(history: list[Turn]) -> tuple[list[Turn], list[Turn]]:
    """(the call before the salesman's last move, that move)."""
    start = len(history)
    while start > 0 and history[start - 1].role == "salesman":
        start -= 1
    return history[:start], history[start:]


def replay_manager(deps: SimDeps, profile: Profile, earlier: list[Turn], chains: list[BehaviourChain], seed: int) -> tuple[list[Turn], CustomerState]:
    """The earlier moves tagged and S_t after them, as the graph would have left them."""
    state = deps.manager.initial_state(profile) if deps.use_manager else CustomerState()  # type: ignore[union-attr]
    tagged: list[Turn] = []
    pending: list[Turn] = []
    for turn in earlier + [Turn(role="customer", text="")]:
        if turn.role == "salesman":
            pending.append(turn)
            continue
        if pending:
            update = manager_step(deps, profile, tagged + pending, state, chains, turn_seed(seed, len(salesman_moves(tagged)) + 1, "manager"))
            pending = [t.model_copy(update={"sop_stage": update.stage}) for t in pending] if deps.use_manager else pending
            tagged, state, pending = tagged + pending, update.state, []
        if turn.text:
            tagged.append(turn)
    return tagged, state


class CustomerService:
    """One set of participants, many profiles; `reply` answers one request."""

    def __init__(self, items: list[SimProfile], deps: SimDeps) -> None:
        self.items = items
        self.deps = deps
        self.chains: dict[int, list[BehaviourChain]] = {}
        self._lock = threading.Lock()

    def model_ids(self) -> list[str]:
        return [f"customer-{i}" for i in range(len(self.items))]

    def index_of(self, model: str) -> int | None:
        ids = self.model_ids()
        if model in ids:
            return ids.index(model)
        return 0 if len(self.items) == 1 else None

    def _chains(self, index: int) -> list[BehaviourChain]:
        with self._lock:
            if index not in self.chains:
                item = self.items[index]
                self.chains[index] = retrieve_chains(self.deps, item.profile, item.domain, item.source)
            return self.chains[index]

    def answer(self, index: int, history: list[Turn], seed: int) -> TurnResult:
        """The customer's reply to the last salesman move of `history` (the graph's per-turn function)."""
        item = self.items[index]
        chains = self._chains(index)
        earlier, move = split_last_move(history)
        tagged, state = replay_manager(self.deps, item.profile, earlier, chains, seed)
        turn_index = len(salesman_moves(history))
        return respond(self.deps, profile=item.profile, domain=item.domain, history=tagged, move=move, state=state, chains=chains, seed=seed, turn_index=turn_index)

    def reply(self, model: str, messages: list[ChatMessage], seed: int | None) -> dict[str, Any]:
        index = self.index_of(model)
        if index is None:
            raise KeyError(model)
        history = to_turns(messages)
        if not history or history[-1].role != "salesman":
            raise ValueError("the last message must be the salesman's (role 'user')")
        if seed is None:
            blob = json.dumps([model] + [t.text for t in history])
            seed = int(hashlib.sha256(blob.encode()).hexdigest()[:8], 16)
        result = self.answer(index, history, seed)
        return {
            "text": result.customer.text,
            "action": (result.customer.action or CustomerAction.speak).value,
            "stage": result.update.stage or None,
            "state": result.state.model_dump(mode="json") if self.deps.use_manager else None,
            "ends_call": result.customer.action in ENDING_ACTIONS,
        }


def create_app(service: CustomerService, api_key: str | None = None) -> Any:
    """The FastAPI app: /v1/models, /v1/chat/completions, /health."""
    from fastapi import FastAPI, Header, HTTPException
    from fastapi.concurrency import run_in_threadpool

    app = FastAPI(title="grouped-sim customer", description="A simulated sales-call customer behind the chat-completions API.")

    def check_key(authorization: str | None) -> None:
        if api_key is None:
            return
        given = (authorization or "").removeprefix("Bearer ").strip()
        if not secrets.compare_digest(given, api_key):
            raise HTTPException(status_code=401, detail={"error": {"message": "invalid or missing API key", "type": "invalid_request_error"}})

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "profiles": len(service.items)}

    @app.get("/v1/models")
    def models(authorization: str | None = Header(default=None)) -> dict[str, Any]:
        check_key(authorization)
        data = [{"id": mid, "object": "model", "created": 0, "owned_by": "grouped-sim", "summary": item.profile.summary} for mid, item in zip(service.model_ids(), service.items)]
        return {"object": "list", "data": data}

    @app.post("/v1/chat/completions")
    async def chat(request: ChatRequest, authorization: str | None = Header(default=None)) -> dict[str, Any]:
        check_key(authorization)
        if request.stream:
            raise HTTPException(status_code=400, detail={"error": {"message": "streaming is not supported; send stream=false", "type": "invalid_request_error"}})
        try:
            answer = await run_in_threadpool(service.reply, request.model, request.messages, request.seed)
        except KeyError:
            raise HTTPException(status_code=404, detail={"error": {"message": f"unknown model {request.model!r}; GET /v1/models lists the profiles", "type": "invalid_request_error"}}) from None
        except ValueError as exc:
            raise HTTPException(status_code=400, detail={"error": {"message": str(exc), "type": "invalid_request_error"}}) from None
        message = {"role": "assistant", "content": answer["text"]}
        choice = {"index": 0, "message": message, "finish_reason": "end_call" if answer["ends_call"] else "stop"}
        return {
            "id": "chatcmpl-" + secrets.token_hex(8),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.model,
            "choices": [choice],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            "grouped_sim": {k: answer[k] for k in ("action", "stage", "state", "ends_call")},
        }

    return app


def load_served_profiles(path: Path | str, domain: str | None = None) -> list[SimProfile]:
    """A JSON file with one profile (pretty-printed is fine) or a JSONL file of profiles."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: profile file not found")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte offset {exc.start})") from exc
    except json.JSONDecodeError:
        items = load_profiles_file(path, default_domain=domain or "food-delivery")
    else:
        if not isinstance(raw, dict):
            raise InputError(f"{path}: expected a JSON object (one profile) or JSONL (one profile per line)")
        items = [profile_item(raw, str(path), domain or "food-delivery", source=path.name)]
    if domain:
        items = [i.model_copy(update={"domain": domain}) for i in items]
    return items
