"""Cancelling a local generation: the stopping criterion stops a row at its next token, and the
caller gets GenerationCancelled instead of a cut-short answer (what `serve` relies on when a client
leaves or the server shuts down)."""

from __future__ import annotations

import threading
import time

import pytest

from grouped_sim.models.hf_generate import RowRequest, generate_batch
from grouped_sim.models.cancel import GenerationCancelled, cancel_scope

PROMPT = "Count slowly from one to two hundred, one number per line:\n1\n2\n3\n"


def test_a_cancelled_row_stops_at_its_next_token(embedded_chat) -> None:
    loaded = embedded_chat.loaded
    free = generate_batch(loaded, [RowRequest(prompt=PROMPT, seed=1, temperature=0.0, top_p=1.0, max_new_tokens=10)], None, 1.0)[0]
    event = threading.Event()
    event.set()
    stopped = generate_batch(loaded, [RowRequest(prompt=PROMPT, seed=1, temperature=0.0, top_p=1.0, max_new_tokens=10, cancel=event)], None, 1.0)[0]
    assert len(loaded.tokenizer(stopped)["input_ids"]) <= 1 < len(loaded.tokenizer(free)["input_ids"])


def test_the_caller_of_a_cancelled_generation_gets_an_error_not_half_an_answer(embedded_chat) -> None:
    from langchain_core.messages import HumanMessage

    model = embedded_chat.model_copy(update={"max_new_tokens": 400, "temperature": 0.0})
    event = threading.Event()
    threading.Timer(0.3, event.set).start()
    started = time.monotonic()
    with cancel_scope(event), pytest.raises(GenerationCancelled):
        model.invoke([HumanMessage(content=PROMPT)], raw_prompt=True, seed=1)
    assert time.monotonic() - started < 15
    with cancel_scope(event), pytest.raises(GenerationCancelled):  # a cancelled caller starts nothing new
        model.invoke([HumanMessage(content=PROMPT)], raw_prompt=True, seed=1)
