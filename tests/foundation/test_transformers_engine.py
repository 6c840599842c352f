"""The one engine of hf: models (transformers' `generate`, models/hf_generate.py) and the configs
written while there were two (a hand-written lean decoder was the default, and concurrent calls
were merged into batches; both were removed once llama.cpp ran the embedded models).

- Budgets, stop strings and seeds hold; row i of a batch samples with seed + i, so candidate 0 of
  best-of-N (one prompt read once, its cache copied to every row) is the plain call's reply.
- A config or plan that says `engine: transformers` or `auto` still loads; `lean` is refused by
  name; a run made on transformers keeps its dialogue ids. The retired batching knobs
  (`runtime.batch_local`, `max_batch`) are read and dropped.
"""

from __future__ import annotations

import json

import pytest

from grouped_sim.config import SimulationConfig, load_config
from grouped_sim.errors import InputError
from grouped_sim.models.hf_generate import RowRequest, generate_batch

COUNTING = "Count from one to fifty, one number per line:\n1\n2\n3\n"


def test_budget_stop_strings_and_seeds_hold(embedded_chat) -> None:
    loaded = embedded_chat.loaded
    counting = RowRequest(prompt=COUNTING, seed=0, temperature=0.0, top_p=1.0, max_new_tokens=7)
    text = generate_batch(loaded, [counting], None, 1.0)[0]
    assert 0 < len(loaded.tokenizer(text, add_special_tokens=False).input_ids) <= 7
    assert "\n" in text
    assert generate_batch(loaded, [counting], ["\n"], 1.0)[0] == text.split("\n")[0].strip()


def test_candidate_0_of_best_of_n_is_the_plain_call(embedded_chat) -> None:
    prompt = "Salesman: Hi, this is Dana from Brightline. Do you have a minute?\nCustomer:"
    plain = embedded_chat.generate_texts([prompt], stop=["\n"], seed=41, max_new_tokens=10)
    candidates = embedded_chat.generate_texts([prompt] * 3, stop=["\n"], seed=41, max_new_tokens=10)
    assert candidates[0] == plain[0]
    assert len(set(candidates)) > 1  # the other rows drew their own seeds
    assert embedded_chat.generate_texts([prompt] * 3, stop=["\n"], seed=41, max_new_tokens=10) == candidates


def test_configs_that_name_an_engine_load_and_lean_is_refused_by_name(tmp_path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("customer:\n  top_p: 0.9\nsalesman:\n  top_p: 0.8\n")
    plain = load_config(path)
    path.write_text("customer:\n  top_p: 0.9\n  engine: auto\nsalesman:\n  top_p: 0.8\n  engine: transformers\n")
    assert load_config(path) == plain
    path.write_text("customer:\n  engine: lean\n")
    with pytest.raises(InputError, match=r"c.yaml: field 'customer'.*engine: lean was removed"):
        load_config(path)
    path.write_text("customer:\n  engine: fast\n")
    with pytest.raises(InputError, match=r"c.yaml: field 'customer'.*engine: 'fast' is no setting"):
        load_config(path)


def test_a_plan_from_before_engines_or_on_transformers_resumes_with_its_ids(tmp_path) -> None:
    from grouped_sim.graphs.batch import load_plan
    from grouped_sim.graphs.plan import RunPlan, RunSettings

    config = SimulationConfig.model_validate({"best_of": {"n": 1}, "max_turns": 3})
    raw = json.loads(RunPlan(settings=RunSettings(), config=config, items=[]).model_dump_json())
    (tmp_path / "plan.json").write_text(json.dumps(raw), encoding="utf-8")  # as written before engines existed
    assert load_plan(tmp_path).config.digest() == "4d7a3f1bc31f"  # what this config's digest was then
    for role in ("salesman", "customer"):
        raw["config"][role]["engine"] = "transformers"  # as written by a run on the transformers engine,
    raw["config"]["runtime"].update(batch_local=True, max_batch=8)  # while concurrent calls were merged
    (tmp_path / "plan.json").write_text(json.dumps(raw), encoding="utf-8")
    assert load_plan(tmp_path).config.digest() == "4d7a3f1bc31f"


def test_run_json_names_the_engine_that_made_each_roles_text(embedded_chat, embedded_llama) -> None:
    """Engines give different text for one seed, so run.json says which one each role ran on:
    transformers for hf:, llama.cpp (file, slots, prompt cache) for llamacpp:, through the limiter."""
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    from grouped_sim.config import RuntimeParams
    from grouped_sim.graphs.batch import engines_used
    from grouped_sim.graphs.graph import SimDeps
    from grouped_sim.graphs.salesman import ChatModelSalesman
    from grouped_sim.models.limits import limit_model

    runtime = RuntimeParams()
    deps = SimDeps(salesman=ChatModelSalesman(limit_model(embedded_chat, "hf", runtime)), customer=limit_model(embedded_llama, "llamacpp", runtime), manager=None, store=None, config=SimulationConfig())
    assert engines_used(deps) == {"salesman": "transformers (fp32)", "customer": f"llama.cpp (SmolLM2-135M-Instruct.Q4_1.gguf, {runtime.llama.slots} slots, prompt cache)"}
    other = SimDeps(salesman=ChatModelSalesman(FakeListChatModel(responses=["hi"])), customer=FakeListChatModel(responses=["x"]), manager=None, store=None, config=SimulationConfig())
    assert engines_used(other) == {}
