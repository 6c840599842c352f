"""Per-backend limits on chat-model calls: calls in flight and a timeout on each.

A simulation makes thousands of model calls; a rate-limited API must see at most N at once, and a
hung call must not hang a dialogue. `limit_model` wraps any chat model in `LimitedChatModel`: one
bounded thread pool per backend key caps the calls in flight, and each call gets the timeout. The
wrapper is one of our own models (a LocalChatModel) that says what the wrapped model is: its
prompt form, its batch API and its local weights pass through. Retries are the caller's
(graphs/resilience.py).
"""

from __future__ import annotations

import contextvars
import threading
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatResult
from pydantic import ConfigDict, Field, model_validator

from grouped_sim.config import RuntimeParams
from grouped_sim.models.base import LocalChatModel, caches_prefix, engine_description_of, prompt_form_of


class CallTimeout(TimeoutError):
    """A model call ran past `runtime.timeout_seconds`."""


_POOLS: dict[str, ThreadPoolExecutor] = {}
_POOLS_LOCK = threading.Lock()

# Call options only grouped-sim's own models understand; an API client would send them on.
_OWN_OPTIONS = ("raw_prompt", "max_new_tokens", "n")


def backend_pool(key: str, size: int) -> ThreadPoolExecutor:
    """One bounded pool per backend: its size is the cap on calls in flight to that backend."""
    with _POOLS_LOCK:
        pool = _POOLS.get(key)
        if pool is None or pool._max_workers != size:  # noqa: SLF001 - resized between runs
            pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix=f"gs-{key[:20]}")
            _POOLS[key] = pool
        return pool


class LimitedChatModel(LocalChatModel):
    """Wraps a chat model: at most `max_in_flight` calls at once per backend key, each under a timeout.

    Its prompt form is the wrapped model's (`prompt_form_of(inner)`), and call options (seed,
    raw_prompt, stop, max_new_tokens) pass through to it; the batch API passes through to a
    wrapped model of ours without the limit (callers batch themselves).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    inner: Any = Field(exclude=True)
    backend_key: str
    max_in_flight: int = 8
    timeout_seconds: float = 300.0

    @model_validator(mode="before")
    @classmethod
    def _form_of_the_wrapped_model(cls, data: Any) -> Any:
        if isinstance(data, dict) and "prompt_form" not in data and isinstance(data.get("inner"), BaseChatModel):
            data = {**data, "prompt_form": prompt_form_of(data["inner"]), "caches_prefix": caches_prefix(data["inner"])}
        return data

    @property
    def _llm_type(self) -> str:
        return "grouped-sim-limited"

    def engine_description(self) -> str | None:
        return engine_description_of(self.inner)

    def _own(self) -> LocalChatModel:
        if not isinstance(self.inner, LocalChatModel):
            raise TypeError(f"{type(self.inner).__name__} has no batch API: only grouped-sim's own backends (hf:, vllm:) have one")
        return self.inner

    def generate_texts(self, prompts: list[str], stop: list[str] | None = None, seed: int | None = None, max_new_tokens: int | None = None) -> list[str]:
        return self._own().generate_texts(prompts, stop, seed, max_new_tokens)

    def generate_chats(self, conversations: list[list[BaseMessage]], stop: list[str] | None = None, seed: int | None = None, max_new_tokens: int | None = None) -> list[str]:
        return self._own().generate_chats(conversations, stop, seed, max_new_tokens)

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        if not isinstance(self.inner, LocalChatModel):
            kwargs = {k: v for k, v in kwargs.items() if k not in _OWN_OPTIONS}
        pool = backend_pool(self.backend_key, self.max_in_flight)
        # The call runs in the pool under the caller's context (its cancel event, models/cancel.py).
        future = pool.submit(contextvars.copy_context().run, self.inner._generate, messages, stop, None, **kwargs)  # noqa: SLF001
        try:
            return future.result(timeout=self.timeout_seconds)
        except FutureTimeout as exc:
            future.cancel()
            raise CallTimeout(f"{self.backend_key}: no answer within {self.timeout_seconds:g} s") from exc


def limit_model(model: BaseChatModel, backend_key: str, runtime: RuntimeParams) -> BaseChatModel:
    """Wrap `model` unless it already is wrapped."""
    if isinstance(model, LimitedChatModel):
        return model
    return LimitedChatModel(inner=model, backend_key=backend_key, max_in_flight=runtime.max_in_flight, timeout_seconds=runtime.timeout_seconds)
