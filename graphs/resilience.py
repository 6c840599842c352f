"""Retries, backoff and timeouts for the calls a simulation makes.

Every call site in the graph goes through `retry_call` (or its async twin); per-backend limits on
the chat models themselves are grouped_sim.models.limits. A retried call reuses its seed, so a
retry that succeeds gives the same text a first try would have.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from grouped_sim.config import RuntimeParams
from grouped_sim.models.cancel import GenerationCancelled
from grouped_sim.models.limits import CallTimeout

T = TypeVar("T")


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
        except (GiveUp, GenerationCancelled):
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
        except (GiveUp, GenerationCancelled):
            raise
        except Exception:
            if attempt >= retries:
                raise
            await asyncio.sleep(backoff_delay(attempt, runtime))  # type: ignore[arg-type]
    raise AssertionError("unreachable")  # pragma: no cover
