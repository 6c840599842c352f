"""The one tensor thread (grouped_sim/compute.py): work runs there with its caller's context,
failures come back to the caller, and work started from the thread itself never deadlocks."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar

import pytest

from grouped_sim.compute import THREAD_NAME, on_compute_thread

WHO: ContextVar[str] = ContextVar("who", default="nobody")


def test_work_from_any_thread_runs_on_the_one_compute_thread_with_its_callers_context() -> None:
    def where() -> tuple[str, str]:
        return threading.current_thread().name, WHO.get()

    def caller(name: str) -> tuple[str, str]:
        WHO.set(name)
        return on_compute_thread(where)

    with ThreadPoolExecutor(3) as pool:
        seen = list(pool.map(caller, ["a", "b", "c"]))
    assert {thread for thread, _ in seen} == {on_compute_thread(lambda: threading.current_thread().name)}
    assert all(thread.startswith(THREAD_NAME) for thread, _ in seen)
    assert [who for _, who in seen] == ["a", "b", "c"]


def test_failures_reach_the_caller_and_nested_work_runs_inline() -> None:
    def nested() -> str:
        return on_compute_thread(lambda: threading.current_thread().name)

    assert nested().startswith(THREAD_NAME)
    assert on_compute_thread(nested).startswith(THREAD_NAME)
    with pytest.raises(ZeroDivisionError):
        on_compute_thread(lambda: 1 / 0)


def test_generation_and_embeddings_run_on_the_compute_thread(embedded_chat, monkeypatch) -> None:
    import grouped_sim.embeddings as embeddings
    import grouped_sim.models.hf_generate as hf_generate

    threads: list[str] = []
    for module, name in ((hf_generate, "generate_with_transformers"), (embeddings, "_encode_here")):
        original = getattr(module, name)

        def spy(*args, _original=original, **kwargs):
            threads.append(threading.current_thread().name)
            return _original(*args, **kwargs)

        monkeypatch.setattr(module, name, spy)
    row = hf_generate.RowRequest(prompt="Customer:", seed=0, temperature=0.0, top_p=1.0, max_new_tokens=2)
    with ThreadPoolExecutor(2) as pool:
        pool.submit(hf_generate.generate_batch, embedded_chat.loaded, [row], None, 1.0).result()
        pool.submit(embeddings.embed, ["one sentence", "and another"]).result()
    assert len(threads) == 2 and all(t.startswith(THREAD_NAME) for t in threads)
