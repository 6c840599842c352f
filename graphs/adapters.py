"""Salesman adapters: plug any agent under test into the simulation.

`--salesman` takes one spec string; the forms are

    hf:smollm2 | openai:MODEL@URL | vllm:MODEL   the demo salesman: a chat model reading a product script
    endpoint:MODEL@URL                           YOUR agent behind an OpenAI-compatible chat-completions
                                                 endpoint; it gets the call history only, its own system
                                                 prompt stays on its side
    webhook:URL                                  POST {"history", "domain", "seed", "dialogue_id"} and read
                                                 {"reply": "..."} or {"messages": [...]} (or a plain-text body)
    python:MODULE:FUNCTION                       a Python callable, sync or async, called as
                                                 fn(history, domain=..., seed=...) with history a list of
                                                 {"role", "text"}; it may return a string, a message dict,
                                                 or a list of either (several messages in one move)
    replay:CORPUS.jsonl                          replays the salesman turns of a corpus dialogue (the profile's
                                                 source dialogue when it came from that corpus), for
                                                 teacher-forced probes; the call ends when the script does

Every adapter has a sync `respond` (the SalesmanAgent protocol in graphs/salesman.py) and, where the
transport is naturally async, an `arespond` the async graph awaits directly.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from grouped_sim.config import RuntimeParams, SimulationConfig
from grouped_sim.errors import InputError
from grouped_sim.schemas import Turn
from grouped_sim.graphs.resilience import GiveUp

ADAPTER_PREFIXES = ("endpoint:", "webhook:", "python:", "replay:")
SALESMAN_SPEC_HELP = (
    "a model spec (hf:smollm2, openai:MODEL@URL, vllm:MODEL) or an adapter "
    "(endpoint:MODEL@URL, webhook:URL, python:MODULE:FUNCTION, replay:CORPUS.jsonl)"
)


class SalesmanDone(GiveUp):
    """The agent has nothing more to say: the call ends as `salesman_ended` (replay scripts run out)."""


class AgentReplyError(GiveUp):
    """The agent answered, but with something that is not a message (no retry can fix it)."""


def history_payload(history: list[Turn]) -> list[dict[str, str]]:
    return [{"role": t.role, "text": t.text} for t in history]


def chat_messages(history: list[Turn]) -> list[dict[str, str]]:
    """The call as OpenAI chat messages from the agent's side: its own lines are `assistant`."""
    messages = [{"role": "assistant" if t.role == "salesman" else "user", "content": t.text} for t in history]
    if not messages:
        # The customer picks up: chat endpoints need a user message to answer.
        messages.append({"role": "user", "content": "Hello?"})
    return messages


def normalise_reply(reply: Any) -> list[str]:
    """A string, a message dict ({"text"} / {"content"}), an object with `.content`, or a list of those."""
    items = reply if isinstance(reply, (list, tuple)) else [reply]
    texts: list[str] = []
    for item in items:
        if isinstance(item, str):
            texts.append(item)
        elif isinstance(item, dict) and isinstance(item.get("text", item.get("content")), str):
            texts.append(item.get("text", item.get("content")))
        elif isinstance(getattr(item, "content", None), str):
            texts.append(item.content)
        else:
            raise AgentReplyError(f"the agent returned {type(item).__name__}; expected a string, a message dict, or a list of them")
    return texts


class EndpointSalesman:
    """An agent behind an OpenAI-compatible chat-completions endpoint (history in, one message out)."""

    def __init__(self, model: str, base_url: str, api_key: str | None = None, timeout: float = 120.0, temperature: float | None = None) -> None:
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.temperature = temperature
        self.name = f"endpoint:{model}@{base_url}"

    def _request(self, history: list[Turn], seed: int) -> tuple[str, dict[str, Any], dict[str, str]]:
        body: dict[str, Any] = {"model": self.model, "messages": chat_messages(history), "seed": seed}
        if self.temperature is not None:
            body["temperature"] = self.temperature
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        return f"{self.base_url}/chat/completions", body, headers

    @staticmethod
    def _read(data: Any) -> list[str]:
        try:
            return [str(data["choices"][0]["message"]["content"] or "")]
        except (KeyError, IndexError, TypeError) as exc:
            raise AgentReplyError(f"not a chat-completions answer: {str(data)[:200]}") from exc

    def respond(self, history: list[Turn], *, domain: str, seed: int) -> list[str]:
        import httpx

        url, body, headers = self._request(history, seed)
        response = httpx.post(url, json=body, headers=headers, timeout=self.timeout)
        response.raise_for_status()
        return self._read(response.json())

    async def arespond(self, history: list[Turn], *, domain: str, seed: int) -> list[str]:
        import httpx

        url, body, headers = self._request(history, seed)
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            response = await client.post(url, json=body, headers=headers)
        response.raise_for_status()
        return self._read(response.json())


class WebhookSalesman:
    """POSTs the call so far to a URL and reads the agent's next message(s) from the answer.

    The body carries the dialogue id, so a stateful agent can keep its own memory per call.
    """

    def __init__(self, url: str, timeout: float = 120.0) -> None:
        self.url = url
        self.timeout = timeout
        self.name = f"webhook:{url}"

    @staticmethod
    def _body(history: list[Turn], domain: str, seed: int, dialogue_id: str) -> dict[str, Any]:
        return {"dialogue_id": dialogue_id, "history": history_payload(history), "domain": domain, "seed": seed}

    @staticmethod
    def _read(response: Any) -> list[str]:
        if "json" in response.headers.get("content-type", ""):
            data = response.json()
            if isinstance(data, dict):
                for key in ("messages", "reply", "text", "content"):
                    if key in data:
                        return normalise_reply(data[key])
            return normalise_reply(data)
        return [response.text]

    def respond(self, history: list[Turn], *, domain: str, seed: int) -> list[str]:
        return self.respond_in(history, dialogue_id="", domain=domain, seed=seed)

    def respond_in(self, history: list[Turn], *, dialogue_id: str, domain: str, seed: int) -> list[str]:
        import httpx

        response = httpx.post(self.url, json=self._body(history, domain, seed, dialogue_id), timeout=self.timeout)
        response.raise_for_status()
        return self._read(response)

    async def arespond_in(self, history: list[Turn], *, dialogue_id: str, domain: str, seed: int) -> list[str]:
        import httpx

        async with httpx.AsyncClient(timeout=self.timeout) as client:
            response = await client.post(self.url, json=self._body(history, domain, seed, dialogue_id))
        response.raise_for_status()
        return self._read(response)


def load_callable(target: str) -> Callable[..., Any]:
    """`module:function` (module importable, or a path to a .py file) → the function."""
    module_name, sep, attr = target.rpartition(":")
    if not sep or not module_name or not attr:
        raise InputError(f"python:{target}: expected python:MODULE:FUNCTION, e.g. python:my_agent:respond")
    try:
        if module_name.endswith(".py"):
            path = Path(module_name)
            if not path.is_file():
                raise InputError(f"python:{target}: file {path} not found")
            spec = importlib.util.spec_from_file_location(path.stem, path)
            module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
            sys.modules[path.stem] = module
            spec.loader.exec_module(module)  # type: ignore[union-attr]
        else:
            module = importlib.import_module(module_name)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"python:{target}: cannot import {module_name!r}: {type(exc).__name__}: {exc}") from exc
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise InputError(f"python:{target}: {module_name!r} has no callable {attr!r}")
    return fn


class CallableSalesman:
    """A Python function (sync or async) as the agent under test."""

    def __init__(self, fn: Callable[..., Any], name: str) -> None:
        self.fn = fn
        self.name = name
        self.is_async = inspect.iscoroutinefunction(fn)

    def respond(self, history: list[Turn], *, domain: str, seed: int) -> list[str]:
        result = self.fn(history_payload(history), domain=domain, seed=seed)
        if inspect.isawaitable(result):
            result = asyncio.run(_await(result))
        return normalise_reply(result)

    async def arespond(self, history: list[Turn], *, domain: str, seed: int) -> list[str]:
        if self.is_async:
            return normalise_reply(await self.fn(history_payload(history), domain=domain, seed=seed))
        return await asyncio.to_thread(self.respond, history, domain=domain, seed=seed)


async def _await(awaitable: Any) -> Any:
    return await awaitable


class ReplaySalesman:
    """Replays a corpus's salesman moves: the k-th move of the script at the k-th salesman turn.

    Each simulated dialogue is bound (by the runner) to a script: the corpus dialogue its profile
    came from when that id is in the corpus, else the corpus dialogues in turn. Consecutive
    salesman turns in the corpus form one move of several messages.
    """

    def __init__(self, corpus_path: Path | str) -> None:
        from grouped_sim.corpus import read_corpus

        self.path = str(corpus_path)
        self.name = f"replay:{corpus_path}"
        corpus = read_corpus(corpus_path)
        self.scripts: dict[str, list[list[str]]] = {}
        for dialogue in corpus:
            moves: list[list[str]] = []
            previous = None
            for turn in dialogue.turns:
                if turn.role == "salesman":
                    if previous == "salesman":
                        moves[-1].append(turn.text)
                    else:
                        moves.append([turn.text])
                previous = turn.role
            if moves:
                self.scripts[dialogue.id] = moves
        if not self.scripts:
            raise InputError(f"{corpus_path}: no salesman turns to replay")
        self.order = sorted(self.scripts)
        self.bound: dict[str, str] = {}

    def script_for(self, source: str, index: int) -> str:
        return source if source in self.scripts else self.order[index % len(self.order)]

    def bind(self, dialogue_id: str, script_id: str) -> None:
        """The runner names each dialogue's script before it starts."""
        self.bound[dialogue_id] = script_id

    def respond(self, history: list[Turn], *, domain: str, seed: int) -> list[str]:
        return self.respond_in(history, dialogue_id="", domain=domain, seed=seed)

    def respond_in(self, history: list[Turn], *, dialogue_id: str, domain: str, seed: int) -> list[str]:
        moves = self.scripts[self.bound.get(dialogue_id, self.order[0])]
        # The move to play is the number of salesman moves so far (a move may be several turns).
        done = 0
        previous = None
        for turn in history:
            if turn.role == "salesman" and previous != "salesman":
                done += 1
            previous = turn.role
        if done >= len(moves):
            raise SalesmanDone(f"the replay script {self.bound.get(dialogue_id, self.order[0])} has no more salesman moves")
        return list(moves[done])


def is_model_spec(spec: str) -> bool:
    return not spec.startswith(ADAPTER_PREFIXES)


def check_salesman_spec(spec: str) -> None:
    """Validate a salesman spec without loading anything (bad specs fail before any output)."""
    from grouped_sim.models import parse_spec

    if is_model_spec(spec):
        parse_spec(spec)
        return
    kind, _, rest = spec.partition(":")
    if not rest:
        raise InputError(f"--salesman {spec!r}: nothing after '{kind}:'; expected {SALESMAN_SPEC_HELP}")
    if kind == "endpoint":
        model, sep, url = rest.partition("@")
        if not sep or not model or not url.startswith(("http://", "https://")):
            raise InputError(f"--salesman {spec!r}: expected endpoint:MODEL@http(s)://HOST/v1")
    elif kind == "webhook":
        if not rest.startswith(("http://", "https://")):
            raise InputError(f"--salesman {spec!r}: expected webhook:http(s)://HOST/PATH")
    elif kind == "python":
        load_callable(rest)
    elif kind == "replay":
        if not Path(rest).is_file():
            raise InputError(f"--salesman {spec!r}: corpus {rest} not found")


def build_salesman(spec: str, config: SimulationConfig, runtime: RuntimeParams | None = None) -> Any:
    """The SalesmanAgent a spec names (see the module docstring for the forms)."""
    from grouped_sim.models import api_key_from_env, build_chat_model
    from grouped_sim.graphs.salesman import ChatModelSalesman

    runtime = runtime or config.runtime
    check_salesman_spec(spec)
    kind, _, rest = spec.partition(":")
    if is_model_spec(spec):
        return ChatModelSalesman(build_chat_model(spec, config.salesman), name=spec)
    if kind == "endpoint":
        model, _, url = rest.partition("@")
        key = api_key_from_env()
        return EndpointSalesman(model, url, api_key=None if key == "not-needed" else key, timeout=runtime.timeout_seconds)
    if kind == "webhook":
        return WebhookSalesman(rest, timeout=runtime.timeout_seconds)
    if kind == "python":
        return CallableSalesman(load_callable(rest), name=spec)
    return ReplaySalesman(rest)
