"""The lean decoder (grouped_sim/models/lean.py): what users rely on when it is the default engine.

- In fp32 it says exactly what transformers' `generate` says (the same model, the same sampling).
- A row's text depends on its prompt and seed only: alone, merged with other prompts (short and
  long generations), or as one of several best-of-N candidates, it is the same text. Checked on the machine's default arithmetic
  (bf16 prompt + int8 weights where the CPU has native bf16) and on the portable fp32 one.
- Budgets, stop strings and seeds hold; models it cannot run fall back to transformers under
  `auto` and are refused by name under `lean`.
"""

from __future__ import annotations

import pytest
import torch

from grouped_sim.config import GenerationParams
from grouped_sim.errors import ModelSpecError
from grouped_sim.models.batching import RowRequest, apply_repetition_penalty, generate_with_transformers
from grouped_sim.models.lean import LeanLlama, generate_rows, unsupported_reason


@pytest.fixture(scope="module")
def prompts(corpus) -> list[str]:
    """Call openings of different lengths, in the transcript form the customer model continues."""
    out = []
    for dialogue, n_turns in zip(corpus[:3], (1, 3, 5)):
        lines = [f"{'Salesman' if t.role == 'salesman' else 'Customer'}: {t.text}" for t in dialogue.turns[:n_turns]]
        out.append("\n".join([f"Transcripts of real sales calls ({dialogue.domain}).", "", *lines, "Customer:"]))
    return out


@pytest.fixture(scope="module")
def fp32_lean(embedded_chat) -> LeanLlama:
    return LeanLlama(embedded_chat.loaded.model, bf16=False)


def rows_for(prompts: list[str], temperature: float, seed: int, budget: int = 12) -> list[RowRequest]:
    return [RowRequest(prompt=p, seed=seed + i, temperature=temperature, top_p=0.95, max_new_tokens=budget) for i, p in enumerate(prompts)]


def lean_texts(lean: LeanLlama, loaded, rows: list[RowRequest], stop: list[str] | None = None) -> list[str]:
    return generate_rows(lean, loaded.tokenizer, loaded.eos_ids, rows, stop, 1.05)


@pytest.mark.parametrize("temperature", [0.0, 0.95])
def test_in_fp32_the_lean_decoder_says_what_transformers_says(embedded_chat, fp32_lean, prompts, temperature) -> None:
    loaded = embedded_chat.loaded
    for row in rows_for(prompts, temperature, seed=3):
        reference = generate_with_transformers(loaded, [row], ["\n"], 1.05)
        assert lean_texts(fp32_lean, loaded, [row], ["\n"]) == reference


@pytest.mark.parametrize("arithmetic", ["default", "fp32"])
def test_a_rows_text_depends_on_its_prompt_and_seed_only(embedded_chat, fp32_lean, prompts, arithmetic) -> None:
    loaded = embedded_chat.loaded
    lean = loaded.lean() if arithmetic == "default" else fp32_lean
    rows = rows_for(prompts[1:], 0.95, seed=11, budget=10)
    alone = [lean_texts(lean, loaded, [row])[0] for row in rows]
    assert len(set(alone)) > 1
    assert lean_texts(lean, loaded, rows[::-1]) == alone[::-1]  # merged with a prompt of another length
    candidates = [RowRequest(prompt=prompts[2], seed=11 + 1 + i, temperature=0.95, top_p=0.95, max_new_tokens=10) for i in range(3)]
    assert lean_texts(lean, loaded, candidates)[0] == alone[1]  # candidate 0 of best-of-3 is the plain call


def test_long_answers_to_different_prompts_do_not_depend_on_their_batch(embedded_chat, corpus) -> None:
    """`sop mine --batch-size 8` batches profile extractions of different calls. Rows whose prompts
    have the same length sit at the same position all the way; attending to them together once
    made two of these rows round differently from their calls alone, 79 tokens in."""
    from grouped_sim.sop_db.mine import ProfileExtractor, extraction_source

    extractor = ProfileExtractor(embedded_chat, retries=0)
    conversations = [extractor.messages(extraction_source(d)) for d in corpus[:5]]
    batched = embedded_chat.generate_chats(conversations, seed=0, max_new_tokens=100)
    alone = [embedded_chat.generate_chats([c], seed=i, max_new_tokens=100)[0] for i, c in enumerate(conversations)]
    assert batched == alone


def test_budget_stop_strings_and_end_of_text_hold(embedded_chat, prompts) -> None:
    loaded = embedded_chat.loaded
    lean = loaded.lean()
    counting = RowRequest(prompt="Count from one to fifty, one number per line:\n1\n2\n3\n", seed=0, temperature=0.0, top_p=1.0, max_new_tokens=7)
    text = lean_texts(lean, loaded, [counting])[0]
    assert 0 < len(loaded.tokenizer(text, add_special_tokens=False).input_ids) <= 7
    assert "\n" in text
    assert lean_texts(lean, loaded, [counting], stop=["\n"])[0] == text.split("\n")[0].strip()


def test_the_repetition_penalty_is_transformers_own() -> None:
    from transformers import RepetitionPenaltyLogitsProcessor

    scores = torch.randn(1, 50)
    seen = [3, 7, 7, 12, 49]
    expected = RepetitionPenaltyLogitsProcessor(1.3)(torch.tensor([seen]), scores.clone())[0]
    assert torch.equal(apply_repetition_penalty(scores[0].clone(), seen, 1.3), expected)


def test_auto_leaves_other_architectures_to_transformers_and_lean_refuses_them(tmp_path, embedded_chat) -> None:
    from transformers import AutoModelForCausalLM, GPT2Config

    from grouped_sim.models import build_chat_model

    folder = tmp_path / "tiny-gpt2"
    config = GPT2Config(vocab_size=len(embedded_chat.loaded.tokenizer), n_positions=64, n_embd=16, n_layer=1, n_head=2)
    AutoModelForCausalLM.from_config(config).save_pretrained(folder)
    embedded_chat.loaded.tokenizer.save_pretrained(folder)
    assert unsupported_reason(AutoModelForCausalLM.from_config(config)) == "model type 'gpt2' is not llama"
    assert build_chat_model(f"hf:{folder}", GenerationParams(engine="auto")).resolved_engine == "transformers"
    with pytest.raises(ModelSpecError, match="engine 'lean' cannot run this model"):
        build_chat_model(f"hf:{folder}", GenerationParams(engine="lean"))
    assert build_chat_model("hf:smollm2", GenerationParams(engine="auto")).resolved_engine == "lean"


def test_an_adapter_is_part_of_what_the_lean_decoder_runs(fp32_lean) -> None:
    from grouped_sim.models import build_chat_model

    tuned = build_chat_model("hf:smollm2+customer-sft", GenerationParams(engine="lean")).loaded
    assert not torch.equal(LeanLlama(tuned.model, bf16=False).layers[-1].qkv, fp32_lean.layers[-1].qkv)


def test_a_plan_from_before_engines_resumes_on_transformers_with_its_ids(tmp_path) -> None:
    import json

    from grouped_sim.config import SimulationConfig
    from grouped_sim.graphs.batch import load_plan
    from grouped_sim.graphs.plan import RunPlan, RunSettings

    config = SimulationConfig.model_validate({"best_of": {"n": 1}, "max_turns": 3})
    raw = json.loads(RunPlan(settings=RunSettings(), config=config, items=[]).model_dump_json())
    for role in ("salesman", "customer"):
        del raw["config"][role]["engine"]  # as plan.json files were written before engines existed
    (tmp_path / "plan.json").write_text(json.dumps(raw), encoding="utf-8")
    resumed = load_plan(tmp_path).config
    assert resumed.customer.engine == resumed.salesman.engine == "transformers"
    assert resumed.digest() == "4d7a3f1bc31f"  # what this config's digest was before engines existed
    assert config.digest() != resumed.digest()  # a new run (engine auto) gets new dialogue ids


def test_weights_that_are_4_bit_stay_4_bit_under_an_adapter_too(embedded_chat) -> None:
    from grouped_sim.models import build_chat_model
    from grouped_sim.models.lean import Int4Linear, Int8Linear, WithUpdate

    weight = embedded_chat.loaded.model.model.layers[0].mlp.down_proj.weight.detach()  # de-quantised Q4_1
    assert Int4Linear.exact(weight) is not None
    assert Int4Linear.exact(weight + 1e-3 * torch.randn_like(weight)) is None
    x = torch.randn(3, weight.shape[1])
    exact = x @ weight.t()
    for linear in (Int4Linear.exact(weight), Int8Linear(weight)):
        assert float((linear(x).float() - exact).norm() / exact.norm()) < 0.02
    tuned = LeanLlama(build_chat_model("hf:smollm2+customer-sft").loaded.model, bf16=True)
    assert isinstance(tuned.layers[0].qkv_step, Int4Linear)  # below the adapter: the model's own 4-bit weights
    adapted = tuned.layers[-1].qkv_step  # under it: the same 4-bit base plus the LoRA update from its factors
    assert isinstance(adapted, WithUpdate) and isinstance(adapted.base, Int4Linear)
    x = torch.randn(3, tuned.hidden).bfloat16()
    merged = x.float() @ tuned.layers[-1].qkv.float().t()
    assert float((adapted(x).float() - merged).norm() / merged.norm()) < 0.02
