"""One thread for the process's torch work: sentence embeddings (every run retrieves and votes with
them), scorers, hf: model loading and transformers generation.

Why. torch's CPU build parallelises each operation with GNU OpenMP, which gives every thread that
starts parallel work a team of helper threads of its own. While the teams of a process hold no
more threads than the machine has cores, idle helpers spin and pick up the next operation at
once; as soon as they hold more, OpenMP throttles spinning for all of them, and each of the
thousands of small operations a generation runs waits for its helpers to wake. A simulation runs
its graph nodes in a thread pool, so embedding a move in one thread and generating a reply in
another made every later operation of the run slower. Measured on 2 cores: 4 candidate replies of
20 tokens took 0.65 s when one thread did all the tensor work and 1.1 s once a second thread had
embedded one sentence (docs/scale.md).

So grouped-sim's own torch work goes through `on_compute_thread`: one long-lived thread, one
OpenMP team. Work is serialised there, which costs nothing on a CPU whose cores every operation
already uses. (llama.cpp, which runs the embedded chat models, keeps threads of its own outside
torch.) Callers keep their context (a cancel event travels in a context variable).
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

THREAD_NAME = "grouped-sim-compute"
_EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix=THREAD_NAME)


def on_compute_thread(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Run `fn` on the compute thread and return what it returns (or raise what it raised).

    Called from the compute thread itself (work that needs more work), it runs inline.
    """
    if threading.current_thread().name.startswith(THREAD_NAME):
        return fn(*args, **kwargs)
    context = contextvars.copy_context()
    return _EXECUTOR.submit(context.run, fn, *args, **kwargs).result()
