"""The simulated customer as an OpenAI-compatible chat-completions endpoint.

Any agent framework that can call a chat model can then talk to a simulated customer: the agent
sends the call so far and gets the customer's next line. From the endpoint's side the customer is
the assistant:

- `user` messages are the salesman's lines (one or several in a row form one move),
- `assistant` messages are the customer's earlier replies, as this endpoint returned them,
- `system` messages are ignored: who the customer is comes from the served profile.

The endpoint is stateless: the manager's latent state is rebuilt from the history on every request
(deterministically, from the request's `seed` or a hash of the conversation), so any number of
calls can be in flight and a restarted server answers the same way. Each profile is one model id
(`customer-0`, `customer-1`, ...); `/v1/models` lists them. The reply carries the customer's action
(hang up, agree, ...) and state in an extra `grouped_sim` field, and `finish_reason` is
`"stop"` or, when the customer ends the call, `"end_call"`.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from typing import Any

from pydantic import BaseModel, Field

from grouped_sim.config import SimulationConfig, SimulatorMode
from grouped_sim.schemas import CustomerAction, CustomerState, Profile, Turn
from grouped_sim.graphs.customer import generate_reply
from grouped_sim.graphs.manager import ManagerUpdate, compose_guidance
from grouped_sim.graphs.runner import RunSettings, SimProfile, Simulator

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


class CustomerService:
    """One simulator, many profiles; `reply` answers one request."""

    def __init__(self, items: list[SimProfile], settings: RunSettings, config: SimulationConfig, simulator: Simulator | None = None) -> None:
        self.items = items
        self.config = config
        self.sim = simulator or Simulator(settings, config, salesman=_NoSalesman())
        self.chains = {}
        self._lock = threading.Lock()

    def model_ids(self) -> list[str]:
        return [f"customer-{i}" for i in range(len(self.items))]

    def item_for(self, model: str) -> SimProfile | None:
        ids = self.model_ids()
        if model in ids:
            return self.items[ids.index(model)]
        return self.items[0] if len(self.items) == 1 else None

    def _chains(self, index: int) -> list[Any]:
        with self._lock:
            if index not in self.chains:
                self.chains[index] = self.sim.retrieve(self.items[index])
            return self.chains[index]

    def reply(self, model: str, messages: list[ChatMessage], seed: int | None) -> dict[str, Any]:
        item = self.item_for(model)
        if item is None:
            raise KeyError(model)
        index = self.items.index(item)
        history = to_turns(messages)
        if not history or history[-1].role != "salesman":
            raise ValueError("the last message must be the salesman's (role 'user')")
        if seed is None:
            blob = json.dumps([model] + [t.text for t in history])
            seed = int(hashlib.sha256(blob.encode()).hexdigest()[:8], 16)
        chains = self._chains(index)
        use_manager = self.config.mode is not SimulatorMode.prompt_only and self.sim.manager is not None
        use_sop = self.config.mode is SimulatorMode.full
        profile = item.profile
        state = self.sim.manager.initial_state(profile) if use_manager else CustomerState()  # type: ignore[union-attr]
        update = ManagerUpdate(stage="", state=state, guidance=compose_guidance(state, CustomerAction.speak, "opening") if use_manager else "", source="none")
        # Replay the manager over every salesman move: its state after the last one is S_t.
        for position, turn in enumerate(history):
            ends_move = turn.role == "salesman" and (position + 1 == len(history) or history[position + 1].role != "salesman")
            if not ends_move or not use_manager:
                continue
            update = self.sim.manager.step(  # type: ignore[union-attr]
                profile=profile,
                history=history[: position + 1],
                state=state,
                chains=chains if use_sop else [],
                seed=seed + position,
                use_sop=use_sop,
            )
            state = update.state
        reply = generate_reply(
            self.sim.customer_model,
            profile=profile,
            domain=item.domain,
            history=history,
            guidance=update.guidance if use_manager else "",
            planned=update.action,
            chains=chains if use_sop else [],
            examples=update.examples,
            seed=seed + len(history),
            retries=self.config.role_guard_retries,
        )
        return {
            "text": reply.text,
            "action": reply.action.value,
            "stage": update.stage or None,
            "state": state.model_dump(mode="json") if use_manager else None,
            "ends_call": reply.action in ENDING_ACTIONS,
        }


class _NoSalesman:
    """The served customer has no salesman of its own: the caller is the salesman."""

    name = "caller"

    def respond(self, history: list[Turn], *, domain: str, seed: int) -> str:
        raise RuntimeError("the served customer never calls a salesman")


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
        return {
            "object": "list",
            "data": [{"id": mid, "object": "model", "created": 0, "owned_by": "grouped-sim", "summary": item.profile.summary} for mid, item in zip(service.model_ids(), service.items)],
        }

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
        return {
            "id": "chatcmpl-" + secrets.token_hex(8),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": answer["text"]},
                    "finish_reason": "end_call" if answer["ends_call"] else "stop",
                }
            ],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            "grouped_sim": {k: answer[k] for k in ("action", "stage", "state", "ends_call")},
        }

    return app


def load_served_profiles(path: Any, domain: str | None = None) -> list[SimProfile]:
    """A JSON file with one profile (pretty-printed is fine) or a JSONL file of profiles."""
    from pathlib import Path

    from grouped_sim.errors import InputError
    from grouped_sim.graphs.runner import load_profiles_file

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: profile file not found")
    text = path.read_text(encoding="utf-8")
    try:
        raw = json.loads(text)
    except json.JSONDecodeError:
        items = load_profiles_file(path, default_domain=domain or "food-delivery")
    else:
        if not isinstance(raw, dict):
            raise InputError(f"{path}: expected a JSON object (one profile) or JSONL (one profile per line)")
        from pydantic import ValidationError

        try:
            profile = Profile.model_validate(raw.get("profile", raw))
        except ValidationError as exc:
            first = exc.errors()[0]
            raise InputError(f"{path}: field '{'.'.join(str(p) for p in first['loc'])}': {first['msg']}") from exc
        items = [SimProfile(profile=profile, domain=raw.get("domain") or profile.domain or domain or "food-delivery", source=path.name)]
    if domain:
        items = [i.model_copy(update={"domain": domain}) for i in items]
    return items
