"""Per-backend limits on model calls: calls in flight and a timeout, for every chat model of a run.

A run makes thousands of model calls; hosted APIs rate-limit and time out, local servers restart.
Every chat model is wrapped in `LimitedChatModel`, which caps the calls in flight per backend and
enforces the timeout, and passes the wrapped model's prompt form and call options through.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatResult
from pydantic import ConfigDict, Field

from grouped_sim.config import RuntimeParams


class CallTimeout(TimeoutError):
    """A model or agent call ran past `runtime.timeout_seconds`."""


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
