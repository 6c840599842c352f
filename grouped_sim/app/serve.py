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

Bounded (`ServeLimits`): a request body over `max_request_bytes` is refused with 413 before it is
parsed, a call over `max_messages` or `max_prompt_tokens` with 400; at most `max_concurrent`
generations run (parallel slots of a llama.cpp model, batched there) and `max_queue` more wait,
beyond that a 503 with Retry-After. A client that disconnects cancels its generation at the next
token, and so does shutdown (the first SIGTERM: in-flight requests get `shutdown_grace_seconds`).
Errors use OpenAI's body, `{"error": {"message", "type", "param", "code"}}`, so OpenAI clients
raise the right exception; /docs and /openapi.json sit behind the API key like the API itself.
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
from starlette.requests import Request  # resolved by FastAPI from this module's globals
from starlette.responses import Response

from grouped_sim.errors import InputError
from grouped_sim.io import read_text
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


class ServeLimits(BaseModel):
    """What one server accepts and how much it does at once (the `serve` flags of the same names)."""

    max_request_bytes: int = Field(64 * 1024, ge=1024, description="largest request body; larger is refused with 413")
    max_prompt_tokens: int = Field(1024, ge=16, description="largest call (all message text) in the customer model's tokens; larger is a 400")
    max_messages: int = Field(200, ge=1, description="most messages in one request")
    max_concurrent: int = Field(4, ge=1, le=256, description="generations at once (parallel slots of a llama.cpp model, which batches them)")
    max_queue: int = Field(64, ge=0, description="requests waiting for a generation slot; beyond that a 503")
    shutdown_grace_seconds: float = Field(3.0, ge=0.0, description="on SIGTERM, how long in-flight requests may finish before they are cancelled")


SEED_RANGE = (-(2**63), 2**63 - 1)


class ApiError(Exception):
    """An error answered in OpenAI's shape: {"error": {"message", "type", "param", "code"}}."""

    def __init__(self, status: int, message: str, type: str = "invalid_request_error", param: str | None = None, code: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": {"message": message, "type": type, "param": param, "code": code}}
        self.headers = headers


class ChatRequest(BaseModel):
    """The subset of the chat-completions request the customer reads; other fields are accepted and ignored."""

    model_config = {"extra": "allow"}

    model: str = "customer-0"
    messages: list[ChatMessage] = Field(min_length=1, description="the call so far: user = the salesman's lines, assistant = the customer's replies")
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

    def __init__(self, items: list[SimProfile], deps: SimDeps, limits: ServeLimits | None = None) -> None:
        self.items = items
        self.deps = deps
        self.limits = limits or ServeLimits()
        self.chains: dict[int, list[BehaviourChain]] = {}
        self._lock = threading.Lock()

    def model_ids(self) -> list[str]:
        return [f"customer-{i}" for i in range(len(self.items))]

    def index_of(self, model: str) -> int | None:
        ids = self.model_ids()
        return ids.index(model) if model in ids else None

    def prompt_tokens(self, text: str) -> int:
        """The size of a call in the customer model's tokens (about 4 characters a token where the
        model is not on transformers)."""
        from grouped_sim.models.local import local_tokenizer

        tokenizer = local_tokenizer(self.deps.customer)
        if tokenizer is None:
            return len(text) // 4 + 1
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    def check_request(self, request: ChatRequest) -> None:
        """Everything about a request that can be refused before any work: an ApiError, or nothing."""
        limits = self.limits
        if request.stream:
            raise ApiError(400, "streaming is not supported; send stream=false", param="stream")
        if self.index_of(request.model) is None:
            raise ApiError(404, f"unknown model {request.model!r}; GET /v1/models lists the profiles ({', '.join(self.model_ids()[:5])}{', ...' if len(self.items) > 5 else ''})", param="model", code="model_not_found")
        if request.seed is not None and not SEED_RANGE[0] <= request.seed <= SEED_RANGE[1]:
            raise ApiError(400, f"seed {request.seed} is out of range: a seed is a 64-bit integer ({SEED_RANGE[0]} to {SEED_RANGE[1]})", param="seed")
        if len(request.messages) > limits.max_messages:
            raise ApiError(400, f"{len(request.messages)} messages; this server takes at most {limits.max_messages} per request", param="messages", code="context_length_exceeded")
        text = "\n".join(m.text() for m in request.messages)
        # Characters first: a call far over the budget is refused without tokenizing it.
        tokens = limits.max_prompt_tokens + 1 if len(text) > 16 * limits.max_prompt_tokens else self.prompt_tokens(text)
        if tokens > limits.max_prompt_tokens:
            raise ApiError(
                400, f"the call is {'over ' if len(text) > 16 * limits.max_prompt_tokens else ''}{tokens} tokens; this server takes at most {limits.max_prompt_tokens} (serve --max-prompt-tokens)",
                param="messages", code="context_length_exceeded",
            )

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
            raise ApiError(404, f"unknown model {model!r}; GET /v1/models lists the profiles", param="model", code="model_not_found")
        history = to_turns(messages)
        if not history or history[-1].role != "salesman":
            raise ApiError(400, "the last message must be the salesman's (role 'user')", param="messages")
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


class BodyLimit:
    """ASGI middleware: a request body over `max_bytes` is answered 413 before the app parses it.

    A declared Content-Length over the limit is refused without reading the body (after draining
    a modest amount, so the client reads the answer instead of a reset connection); a chunked body
    is counted as it arrives.
    """

    DRAIN = 8 * 1024 * 1024

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            if int(declared) <= self.DRAIN:
                await self._drain(receive)
            await self._reject(send, int(declared))
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._reject(send, size)
                return
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        body, replayed = b"".join(chunks), False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # then the real channel: a disconnect is still seen

        await self.app(scope, replay, send)

    @staticmethod
    async def _drain(receive: Any) -> None:
        while True:
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body"):
                return

    async def _reject(self, send: Any, size: int) -> None:
        body = json.dumps(
            {"error": {"message": f"request body of {size} bytes is over this server's limit of {self.max_bytes} (serve --max-request-bytes)", "type": "invalid_request_error", "param": None, "code": "request_too_large"}}
        ).encode()
        await send({"type": "http.response.start", "status": 413, "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


class Admission:
    """At most `max_concurrent` generations run and `max_queue` requests wait; the rest get a 503."""

    def __init__(self, limits: ServeLimits) -> None:
        import asyncio
        from concurrent.futures import ThreadPoolExecutor

        self.limits = limits
        self.waiting_or_running = 0
        self.slots = asyncio.Semaphore(limits.max_concurrent)
        self.executor = ThreadPoolExecutor(max_workers=limits.max_concurrent, thread_name_prefix="gs-serve")

    def admit(self) -> None:
        if self.waiting_or_running >= self.limits.max_concurrent + self.limits.max_queue:
            raise ApiError(
                503, f"the server is busy ({self.waiting_or_running} requests running or queued); retry shortly",
                type="server_error", code="overloaded", headers={"Retry-After": "1"},
            )
        self.waiting_or_running += 1

    async def run(self, request: Any, fn: Any, *args: Any) -> Any:
        """Run `fn(*args)` in a worker thread under a cancel event: set when the client disconnects
        or this task is cancelled (shutdown), which stops its generation at the next token."""
        import asyncio

        from grouped_sim.models.cancel import GenerationCancelled, cancel_scope

        event = threading.Event()

        def work() -> Any:
            with cancel_scope(event):
                return fn(*args)

        try:
            async with self.slots:
                if await request.is_disconnected():
                    raise ClientGone
                future = asyncio.get_running_loop().run_in_executor(self.executor, work)
                while True:
                    done, _ = await asyncio.wait({future}, timeout=0.1)
                    if done:
                        try:
                            return future.result()
                        except GenerationCancelled:
                            raise ClientGone from None
                    if await request.is_disconnected():
                        event.set()
                        raise ClientGone
        except asyncio.CancelledError:
            event.set()
            raise
        finally:
            self.waiting_or_running -= 1


class ClientGone(Exception):
    """The client disconnected before its answer was ready (nobody to answer)."""


def create_app(service: CustomerService, api_key: str | None = None) -> Any:
    """The FastAPI app: /v1/models, /v1/chat/completions, /health, and /docs behind the key."""
    from fastapi import FastAPI, Header
    from fastapi.exceptions import RequestValidationError
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    limits = service.limits
    app = FastAPI(
        title="grouped-sim customer",
        description="A simulated sales-call customer behind the chat-completions API.",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.add_middleware(BodyLimit, max_bytes=limits.max_request_bytes)
    admission: list[Admission] = []  # made in the server's event loop, on first use

    def gate() -> Admission:
        if not admission:
            admission.append(Admission(limits))
        return admission[0]

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        return JSONResponse(exc.body, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        body = {"error": {"message": str(exc.detail), "type": kind, "param": None, "code": None}}
        return JSONResponse(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        param = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or None
        message = f"{param}: {first['msg']}" if param else str(first["msg"])
        return JSONResponse({"error": {"message": message, "type": "invalid_request_error", "param": param, "code": None}}, status_code=400)

    def check_key(authorization: str | None) -> None:
        if api_key is None:
            return
        scheme, _, given = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(given.strip().encode(), api_key.encode()):  # a bare key is not a Bearer token
            raise ApiError(401, "invalid or missing API key (send 'Authorization: Bearer KEY')", code="invalid_api_key")

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "profiles": len(service.items)}

    @app.get("/openapi.json", include_in_schema=False)
    def openapi(authorization: str | None = Header(default=None)) -> dict[str, Any]:
        check_key(authorization)
        return app.openapi()

    @app.get("/docs", include_in_schema=False)
    def docs(authorization: str | None = Header(default=None)) -> Response:
        check_key(authorization)
        return get_swagger_ui_html(openapi_url="/openapi.json", title=app.title)

    @app.get("/v1/models")
    def models(authorization: str | None = Header(default=None)) -> dict[str, Any]:
        check_key(authorization)
        data = [{"id": mid, "object": "model", "created": 0, "owned_by": "grouped-sim", "summary": item.profile.summary} for mid, item in zip(service.model_ids(), service.items)]
        return {"object": "list", "data": data}

    @app.post("/v1/chat/completions", response_model=None)
    async def chat(body: ChatRequest, request: Request, authorization: str | None = Header(default=None)) -> Any:
        check_key(authorization)
        service.check_request(body)
        admitted = gate()
        admitted.admit()
        try:
            answer = await admitted.run(request, service.reply, body.model, body.messages, body.seed)
        except ClientGone:
            return Response(status_code=499)  # nobody reads it: the client left
        message = {"role": "assistant", "content": answer["text"]}
        choice = {"index": 0, "message": message, "finish_reason": "end_call" if answer["ends_call"] else "stop"}
        return {
            "id": "chatcmpl-" + secrets.token_hex(8),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.model,
            "choices": [choice],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            "grouped_sim": {k: answer[k] for k in ("action", "stage", "state", "ends_call")},
        }

    return app


def is_loopback(host: str) -> bool:
    """Whether binding `host` keeps the server on this machine."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> Any:
    """A listening socket on host:port, or an InputError saying why not (port in use, no such address)."""
    import socket

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        raise InputError(f"--host {host} --port {port}: cannot listen there: {exc.strerror or exc}") from exc
    return sock


def run_server(app: Any, sock: Any, limits: ServeLimits, on_ready: Any = None) -> None:
    """Serve `app` on a socket from `bind` until SIGINT/SIGTERM. The port is already ours, so
    `on_ready` (which prints "serving at ...") never announces a server that cannot start; the first
    SIGTERM stops the server, giving in-flight requests `limits.shutdown_grace_seconds` before they
    are cancelled (their generations stop at the next token)."""
    import uvicorn

    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=limits.shutdown_grace_seconds)  # type: ignore[arg-type]
    server = uvicorn.Server(config)
    if on_ready is not None:
        on_ready()
    server.run(sockets=[sock])


def load_served_profiles(path: Path | str, domain: str | None = None) -> list[SimProfile]:
    """A JSON file with one profile (pretty-printed is fine) or a JSONL file of profiles."""
    path = Path(path)
    text = read_text(path, "profile file")
    try:
        raw = json.loads(text)
    except json.JSONDecodeError:
        items = load_profiles_file(path, default_domain=domain or "food-delivery")
    else:
        if not isinstance(raw, dict):
            raise InputError(f"{path}: expected a JSON object (one profile) or JSONL (one profile per line)")
        items = [profile_item(raw, str(path), domain or "food-delivery", source=path.name)]
    if domain:
        items = [i.model_copy(update={"domain": domain}) for i in items]
    return items
