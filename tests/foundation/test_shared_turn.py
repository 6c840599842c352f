"""`serve` and the simulation graph answer a salesman move with the same per-turn function: for the
same profile, history and seed, a served customer says exactly what a simulated one said."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from grouped_sim.app.build import build_deps
from grouped_sim.app.serve import CustomerService
from grouped_sim.config import SimulationConfig, SimulatorMode
from grouped_sim.graphs.graph import build_graph
from grouped_sim.graphs.plan import RunSettings, sample_profiles
from grouped_sim.graphs.salesman import CallContext, SyncSalesman
from grouped_sim.graphs.simulation import run_dialogue
from grouped_sim.schemas import Turn

LINES = ["Hi, is this the owner? It's Alex from QuickBite.", "We take a lower commission than the big apps.", "Could I send you the details by email?"]


def scripted(call: CallContext) -> str:
    return LINES[min(sum(t.role == "salesman" for t in call.history), len(LINES) - 1)]


@pytest.mark.slow
def test_served_reply_equals_the_graphs_reply_for_the_same_seed(store_dir: Path, corpus) -> None:
    config = SimulationConfig.model_validate({"mode": SimulatorMode.full.value, "max_turns": 3, "customer": {"max_new_tokens": 12}, "role_guard_retries": 1, "runtime": {"llama": {"cache_prompt": False}}})
    # llama.cpp's arithmetic differs a little between a fresh and a cached prompt, so exact repeats
    # need the prompt cache off (runtime.llama.cache_prompt); with it on, the same seed can differ.
    deps = build_deps(RunSettings(sop_db=str(store_dir)), config, salesman=SyncSalesman("scripted", scripted))
    item = sample_profiles(corpus, 1, seed=4)[0]
    dialogue = asyncio.run(run_dialogue(build_graph(), deps, item, seed=1234, dialogue_id="d-shared", index=0, meta={}))
    customer_turns = [i for i, t in enumerate(dialogue.turns) if t.role == "customer"]
    assert len(customer_turns) >= 2, dialogue.termination_reason

    service = CustomerService([item], deps)
    for position in customer_turns[:3]:
        heard = [Turn(role=t.role, text=t.text) for t in dialogue.turns[:position]]  # what a client sends: no tags, no state
        served = service.answer(0, heard, seed=1234)
        simulated = dialogue.turns[position]
        assert served.customer.text == simulated.text
        assert served.customer.action == simulated.action and served.update.stage == simulated.sop_stage
        assert served.state == simulated.state
        assert served.customer.retrieved == simulated.retrieved
