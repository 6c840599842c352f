"""Retries, backoff, timeouts and per-backend limits for the calls a simulation makes.

A run makes thousands of model calls; hosted APIs rate-limit and time out, local servers restart.
Every call site in the graph goes through `retry_call` (or its async twin), and every chat model
through `LimitedChatModel`, which caps the calls in flight per backend and enforces the timeout.
A retried call reuses its seed, so a retry that succeeds gives the same text a first try would have.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatResult
from pydantic import ConfigDict, Field

from grouped_sim.config import RuntimeParams

T = TypeVar("T")


class CallTimeout(TimeoutError):
    """A model or agent call ran past `runtime.timeout_seconds`."""


class GiveUp(Exception):
    """Raised by a callee for failures a retry cannot fix (bad input, not a flaky backend)."""


def backoff_delay(attempt: int, runtime: RuntimeParams) -> float:
    """Exponential backoff with full jitter: spreads retries of many dialogues hitting one API."""
    cap = min(runtime.backoff_max_seconds, runtime.backoff_seconds * (2**attempt))
    return random.uniform(cap / 2, cap) if cap > 0 else 0.0


def retry_call(fn: Callable[[], T], runtime: RuntimeParams | None) -> T:
    """Call `fn`, retrying on any exception up to `runtime.retries` times; re-raise the last one."""
    retries = runtime.retries if runtime else 0
    for attempt in range(retries + 1):
        try:
            return fn()
        except GiveUp:
            raise
        except Exception:
            if attempt >= retries:
                raise
            time.sleep(backoff_delay(attempt, runtime))  # type: ignore[arg-type]
    raise AssertionError("unreachable")  # pragma: no cover


async def aretry_call(fn: Callable[[], Awaitable[T]], runtime: RuntimeParams | None) -> T:
    """Async `retry_call`, each try bounded by the timeout."""
    retries = runtime.retries if runtime else 0
    timeout = runtime.timeout_seconds if runtime else None
    for attempt in range(retries + 1):
        try:
            try:
                return await asyncio.wait_for(fn(), timeout)
            except asyncio.TimeoutError as exc:
                raise CallTimeout(f"no answer within {timeout:g} s") from exc
        except GiveUp:
            raise
        except Exception:
            if attempt >= retries:
                raise
            await asyncio.sleep(backoff_delay(attempt, runtime))  # type: ignore[arg-type]
    raise AssertionError("unreachable")  # pragma: no cover


_POOLS: dict[str, ThreadPoolExecutor] = {}
_POOLS_LOCK = threading.Lock()


def backend_pool(key: str, size: int) -> ThreadPoolExecutor:
    """One bounded pool per backend: its size is the cap on calls in flight to that backend."""
    with _POOLS_LOCK:
        pool = _POOLS.get(key)
        if pool is None or pool._max_workers != size:  # noqa: SLF001 - resized between runs
            pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix=f"gs-{key[:20]}")
            _POOLS[key] = pool
        return pool


class LimitedChatModel(BaseChatModel):
    """Wraps a chat model: at most `max_in_flight` calls at once per backend key, each under a timeout.

    The wrapper is transparent to the graph: `supports_raw_prompt` and call kwargs (seed,
    raw_prompt, stop) pass through to the wrapped model.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    inner: Any = Field(exclude=True)
    backend_key: str
    max_in_flight: int = 8
    timeout_seconds: float = 300.0
    supports_raw_prompt: bool = False

    @property
    def _llm_type(self) -> str:
        return "grouped-sim-limited"

    @property
    def loaded(self) -> Any:
        """The local weights under the wrapper, if any (batching hooks onto them)."""
        return getattr(self.inner, "loaded", None)

    def render_prompt(self, *args: Any, **kwargs: Any) -> str:
        """Pass-through for code that inspects the wrapped local model's prompt."""
        return self.inner.render_prompt(*args, **kwargs)

    def generate_texts(self, *args: Any, **kwargs: Any) -> list[str]:
        """Pass-through to a local model's batch generation (not limited: callers batch themselves)."""
        return self.inner.generate_texts(*args, **kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        pool = backend_pool(self.backend_key, self.max_in_flight)
        future = pool.submit(self.inner._generate, messages, stop, None, **kwargs)  # noqa: SLF001
        try:
            return future.result(timeout=self.timeout_seconds)
        except FutureTimeout as exc:
            future.cancel()
            raise CallTimeout(f"{self.backend_key}: no answer within {self.timeout_seconds:g} s") from exc


def limit_model(model: BaseChatModel, backend_key: str, runtime: RuntimeParams) -> BaseChatModel:
    """Wrap `model` unless it already is wrapped."""
    if isinstance(model, LimitedChatModel):
        return model
    return LimitedChatModel(
        inner=model,
        backend_key=backend_key,
        max_in_flight=runtime.max_in_flight,
        timeout_seconds=runtime.timeout_seconds,
        supports_raw_prompt=bool(getattr(model, "supports_raw_prompt", False)),
    )
