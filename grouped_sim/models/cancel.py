"""Cooperative cancellation of generation: a caller that no longer wants an answer says so.

`serve` answers each request in a worker thread. When the client disconnects, or the server is
shutting down, the request's `threading.Event` is set; every generation running for it stops at
its next token (a stopping criterion in models/hf_generate.py checks the event; llama.cpp checks before and after each call), and the next model
call of the request raises `GenerationCancelled` before it starts. The event travels as a context
variable, so no call signature between the request and the model changes: `cancel_scope` sets it
for the code it wraps, and the per-backend limiter (models/limits.py) carries it into its pool.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_CANCEL: ContextVar[threading.Event | None] = ContextVar("grouped_sim_cancel", default=None)


class GenerationCancelled(Exception):
    """The caller cancelled this generation (client gone, server shutting down); never retried."""


def current_cancel() -> threading.Event | None:
    """The cancel event of the code running now, if a caller set one."""
    return _CANCEL.get()


def check_cancelled() -> None:
    """Raise GenerationCancelled when the running code's caller has cancelled it."""
    event = _CANCEL.get()
    if event is not None and event.is_set():
        raise GenerationCancelled("the caller cancelled the generation")


@contextmanager
def cancel_scope(event: threading.Event) -> Iterator[threading.Event]:
    """Run the enclosed code under `event`: setting it stops the generations the code starts."""
    token = _CANCEL.set(event)
    try:
        yield event
    finally:
        _CANCEL.reset(token)
