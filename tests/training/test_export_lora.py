"""`grouped-sim train export-lora`: the shipped PEFT adapter as a GGUF adapter, run on llama.cpp.

The proof that matters is `test_the_exported_adapter_moves_llama_cpp_as_peft_moves_transformers`:
on held-out transcripts, the exported adapter moves llama.cpp's next-token distribution the way
PEFT moves transformers'. Both engines run the same Q4_1 SmolLM2 (transformers its de-quantised
fp32 copy, llama.cpp the quantised file with its own arithmetic), so their base distributions
already differ a little; the adapter must add no more than that while moving both far more.
"""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from grouped_sim.cli.app import app
from grouped_sim.data import shipped_adapter_path
from tests.cli_main import run_main

ADAPTER_DIR = shipped_adapter_path("customer-smollm2-sft")
MODULES = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")
# Calls the shipped adapter never saw (its training.json lists them as held out), one per domain.
HELD_OUT = (("bb-002", 2), ("in-008", 2), ("fd-014", 2))
# Measured on all 8 held-out prompts of this adapter (benchmarks/lora_export.py, results/lora_export.json;
# xllamacpp 2026.10.11549, transformers 5.20, CPU) as the mean |logprob difference| over the top-20 tokens:
#   base on llama.cpp vs base on transformers          0.038 - 0.080  (the engines' own gap: Q4_1 arithmetic)
#   adapted on llama.cpp vs adapted on transformers    0.040 - 0.074  (0.040 - 0.050 on the 3 prompts here)
#   adapted vs base on llama.cpp (the adapter's effect) 0.39 - 0.98
#   an export without the q/k rope row order           0.065 - 0.128 adapted gap (0.095 - 0.128 here)
# Per prompt the two exports overlap; their mean adapted gap over the mean base gap does not:
# 1.02 right vs 1.72 unordered on all 8, 0.67 vs 1.67 on the 3 prompts here.
GAP_TOLERANCE = 0.10  # per prompt: above every adapted and base gap measured, a tenth of the largest effect
RATIO_TOLERANCE = 1.3  # mean adapted gap / mean base gap: the adapter adds (almost) nothing to the engines' gap
MIN_EFFECT = 0.3  # the adapter's effect on llama.cpp, per prompt: it is applied at all


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    """The shipped adapter exported by the real command, its base taken from its training.json."""
    out = tmp_path_factory.mktemp("lora") / "customer.gguf"
    result = CliRunner().invoke(app, ["train", "export-lora", "--adapter", "customer-sft", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "use it with: llamacpp:smollm2+" in result.output
    return out


def test_the_file_carries_what_llama_cpp_checks(exported) -> None:
    """Metadata and one lora_a / lora_b pair per adapted tensor, in ggml's shapes against the base."""
    from gguf import GGUFReader

    from grouped_sim.models.lora_gguf import base_gguf

    reader = GGUFReader(exported)
    fields = {k: reader.fields[k].contents() for k in ("general.architecture", "general.type", "adapter.type", "adapter.lora.alpha")}
    assert fields == {"general.architecture": "llama", "general.type": "adapter", "adapter.type": "lora", "adapter.lora.alpha": 16.0}
    shapes = {t.name: tuple(int(d) for d in t.shape) for t in reader.tensors}
    base = {t.name: tuple(int(d) for d in t.shape) for t in GGUFReader(base_gguf("llamacpp:smollm2", ADAPTER_DIR)).tensors}
    expected = {f"blk.{n}.{m}.weight" for n in range(22, 30) for m in MODULES}  # the adapter's 8 top layers, 7 modules
    assert {name.rpartition(".")[0] for name in shapes} == expected
    for target in expected:
        (a_in, a_rank), (b_rank, b_out) = shapes[f"{target}.lora_a"], shapes[f"{target}.lora_b"]
        assert (a_in, b_out) == base[target] and a_rank == b_rank == 8, target
    assert not list(exported.parent.glob(".*partial*"))


def test_q_and_k_rows_follow_the_order_the_base_gguf_keeps_them_in() -> None:
    """rope_rows turns transformers' q/k row order into the base GGUF's: checked on the base itself
    (its de-quantised q/k weights against the plain transformers copy made from the same file)."""
    from gguf import GGUFReader
    from gguf.quants import dequantize
    from safetensors.numpy import load_file

    from grouped_sim.models.lora_gguf import base_gguf, rope_rows
    from grouped_sim.models.materialize import materialize_plain

    tensors = {t.name: t for t in GGUFReader(base_gguf("llamacpp:smollm2", ADAPTER_DIR)).tensors}
    plain = load_file(str(next(materialize_plain("smollm2", log=False).glob("*.safetensors"))))
    for proj, target, heads in (("q_proj", "attn_q", 9), ("k_proj", "attn_k", 3)):
        stored = tensors[f"blk.5.{target}.weight"]
        in_gguf = dequantize(stored.data, stored.tensor_type).reshape(-1, int(stored.shape[0]))
        in_transformers = plain[f"model.layers.5.self_attn.{proj}.weight"]
        assert np.array_equal(rope_rows(in_transformers, heads), in_gguf), proj
        assert not np.array_equal(in_transformers, in_gguf), proj  # the order differs: the check can fail


def _held_out_prompts(corpus) -> list[str]:
    from grouped_sim.sop_db.datasets import d_sim_records

    by_id = {d.id: d for d in corpus}
    held = json.loads((ADAPTER_DIR / "training.json").read_text())["heldout_dialogues"]
    assert all(dialogue in held for dialogue, _ in HELD_OUT)
    return [list(d_sim_records(by_id[dialogue]))[turn]["prompt"] for dialogue, turn in HELD_OUT]


def _llama_logprobs(spec: str, prompts: list[str]) -> tuple[list[dict[int, float]], list[int]]:
    """llama.cpp's top next-token log-probabilities (by token id) of each raw transcript, and its prompt lengths."""
    from grouped_sim.config import LlamaServerParams, RuntimeParams
    from grouped_sim.models import build_chat_model

    # One thread: on a busy 2-core box two llama.cpp threads wait on each other (twice as slow); the numbers are the same.
    model = build_chat_model(spec, runtime=RuntimeParams(llama=LlamaServerParams(slots=1, context=1024, threads=1)))
    body = {"max_tokens": 1, "temperature": 0.0, "logprobs": 100, "cache_prompt": False}
    results = [model.server.complete({"prompt": p, **body}) for p in prompts]
    tops = [{t["id"]: float(t["logprob"]) for t in r["choices"][0]["logprobs"]["content"][0]["top_logprobs"]} for r in results]
    return tops, [int(r["usage"]["prompt_tokens"]) for r in results]


def _transformers_logprobs(prompts: list[str]) -> tuple[list[np.ndarray], list[np.ndarray], list[int]]:
    """transformers' whole next-token log-distributions of each raw transcript, without and with the
    PEFT adapter (hf:smollm2+customer-sft; with the adapter disabled it is hf:smollm2, loaded once),
    and the prompts' lengths in tokens."""
    import torch

    from grouped_sim.compute import on_compute_thread
    from grouped_sim.models import build_chat_model

    loaded = build_chat_model("hf:smollm2+customer-sft").loaded
    encoded = [loaded.tokenizer(p, return_tensors="pt").input_ids for p in prompts]

    def next_token(ids: torch.Tensor) -> np.ndarray:
        return torch.log_softmax(loaded.model(ids).logits[0, -1].float(), dim=-1).numpy()

    def both() -> tuple[list[np.ndarray], list[np.ndarray]]:
        with loaded.lock, torch.no_grad():
            adapted = [next_token(ids) for ids in encoded]
            with loaded.model.disable_adapter():
                return [next_token(ids) for ids in encoded], adapted

    # On the compute thread, as every model call of ours: one OpenMP team per process (compute.py).
    base, adapted = on_compute_thread(both)
    return base, adapted, [ids.shape[1] for ids in encoded]


def _gap(reference: dict[int, float], other: dict[int, float] | np.ndarray, top: int = 20) -> float:
    """Mean |logprob difference| over the reference's `top` most likely tokens. A token missing from
    `other`'s top 100 counts at the least likely of them: a lower bound of its difference."""
    ids = sorted(reference, key=reference.get, reverse=True)[:top]
    if isinstance(other, dict):
        floor = min(other.values())
        return float(np.mean([abs(reference[i] - other.get(i, floor)) for i in ids]))
    return float(np.mean([abs(reference[i] - other[i]) for i in ids]))


@pytest.mark.slow
def test_the_exported_adapter_moves_llama_cpp_as_peft_moves_transformers(exported, corpus) -> None:
    prompts = _held_out_prompts(corpus)
    llama_base, llama_tokens = _llama_logprobs("llamacpp:smollm2", prompts)
    llama_adapted, _ = _llama_logprobs(f"llamacpp:smollm2+{exported}", prompts)
    hf_base, hf_adapted, hf_tokens = _transformers_logprobs(prompts)
    assert llama_tokens == hf_tokens  # both engines read the same tokens

    base_gaps = [_gap(lb, hb) for lb, hb in zip(llama_base, hf_base)]
    adapted_gaps = [_gap(la, ha) for la, ha in zip(llama_adapted, hf_adapted)]
    effects = [_gap(la, lb) for la, lb in zip(llama_adapted, llama_base)]
    report = f"base gaps {np.round(base_gaps, 3)}, adapted gaps {np.round(adapted_gaps, 3)}, adapter effect on llama.cpp {np.round(effects, 3)}"
    assert min(effects) > MIN_EFFECT, report  # the adapter is applied
    assert max(adapted_gaps) < GAP_TOLERANCE, report  # and computes what PEFT computes
    assert max(g / e for g, e in zip(adapted_gaps, effects)) < 0.25, report  # measured at most 0.18
    assert np.mean(adapted_gaps) < RATIO_TOLERANCE * np.mean(base_gaps), report


def test_a_peft_folder_as_a_llamacpp_adapter_names_the_export_command() -> None:
    from grouped_sim.errors import ModelSpecError
    from grouped_sim.models import build_chat_model

    with pytest.raises(ModelSpecError, match=r"a PEFT LoRA folder: convert it with grouped-sim train export-lora --adapter customer-sft --out adapter.gguf"):
        build_chat_model("llamacpp:smollm2+customer-sft")
    with pytest.raises(ModelSpecError, match=r"convert it with grouped-sim train export-lora --adapter"):
        build_chat_model(f"llamacpp:smollm2+{ADAPTER_DIR}")


def _export(args: list[str], monkeypatch, capsys) -> tuple[int, str]:
    return run_main(["train", "export-lora", *args], monkeypatch, capsys)


def test_a_folder_without_adapter_config_is_refused(tmp_path, monkeypatch, capsys) -> None:
    (tmp_path / "adapter_model.safetensors").write_bytes(b"")
    code, text = _export(["--adapter", str(tmp_path), "--out", str(tmp_path / "a.gguf")], monkeypatch, capsys)
    assert code == 2 and "not a PEFT LoRA adapter folder (no adapter_config.json)" in text, text
    assert not (tmp_path / "a.gguf").exists()


def _fake_adapter(folder: Path, tensors: dict[str, tuple[int, int]], **config) -> Path:
    """A PEFT folder: the shipped adapter's config (with `config` changes) and zero tensors of these shapes."""
    import torch
    from safetensors.torch import save_file

    folder.mkdir()
    shutil.copy(ADAPTER_DIR / "training.json", folder / "training.json")
    settings = {**json.loads((ADAPTER_DIR / "adapter_config.json").read_text()), **config}
    (folder / "adapter_config.json").write_text(json.dumps(settings))
    save_file({name: torch.zeros(shape) for name, shape in tensors.items()}, str(folder / "adapter_model.safetensors"))
    return folder


def test_an_unsupported_target_module_is_refused(tmp_path, monkeypatch, capsys) -> None:
    head = {"base_model.model.lm_head.lora_A.weight": (8, 576), "base_model.model.lm_head.lora_B.weight": (49152, 8)}
    adapter = _fake_adapter(tmp_path / "head", head, target_modules=["lm_head"])
    code, text = _export(["--adapter", str(adapter), "--out", str(tmp_path / "a.gguf")], monkeypatch, capsys)
    assert code == 2 and "target module 'lm_head'" in text and "supported: q_proj, k_proj" in text, text
    assert not (tmp_path / "a.gguf").exists()


def test_settings_llama_cpp_cannot_honour_are_refused(tmp_path, monkeypatch, capsys) -> None:
    adapter = _fake_adapter(tmp_path / "dora", {}, use_dora=True, use_rslora=True)
    code, text = _export(["--adapter", str(adapter), "--out", str(tmp_path / "a.gguf")], monkeypatch, capsys)
    assert code == 2 and "use_dora" in text and "use_rslora" in text, text


def _tiny_gguf(path: Path, arch: str, tensors: dict[str, tuple[int, int]]) -> Path:
    """A GGUF model header with these float32 tensors (numpy shapes) and head / block counts."""
    import gguf

    writer = gguf.GGUFWriter(path, arch)
    writer.add_uint32(f"{arch}.attention.head_count", 9)
    writer.add_uint32(f"{arch}.block_count", 30)
    for name, shape in tensors.items():
        writer.add_tensor(name, np.zeros(shape, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_an_unsupported_base_architecture_is_refused(tmp_path, monkeypatch, capsys) -> None:
    base = _tiny_gguf(tmp_path / "gpt2.gguf", "gpt2", {"blk.22.attn_qkv.weight": (1728, 576)})
    code, text = _export(["--adapter", "customer-sft", "--out", str(tmp_path / "a.gguf"), "--base", f"llamacpp:{base}"], monkeypatch, capsys)
    assert code == 2 and "architecture 'gpt2' is not supported by export-lora (supported: llama, qwen2)" in text, text
    assert not (tmp_path / "a.gguf").exists()


def test_an_adapter_for_another_llama_is_refused_before_llama_cpp_sees_it(tmp_path, monkeypatch, capsys) -> None:
    base = _tiny_gguf(tmp_path / "other.gguf", "llama", {"blk.22.ffn_down.weight": (64, 128)})
    code, text = _export(["--adapter", "customer-sft", "--out", str(tmp_path / "a.gguf"), "--base", f"llamacpp:{base}"], monkeypatch, capsys)
    assert code == 2 and "does not fit blk.22.ffn_down.weight [128, 64]" in text, text


def test_a_failed_write_leaves_no_half_file_and_keeps_the_old_one(tmp_path, monkeypatch, capsys) -> None:
    """A disk that fills while the tensors are written: the previous adapter stays whole, no partial file stays."""
    import gguf

    out = tmp_path / "a.gguf"
    out.write_bytes(b"GGUF the previous export")

    def disk_full(self, *args, **kwargs):
        self.fout[0].write(b"\0" * 4096)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(gguf.GGUFWriter, "write_tensors_to_file", disk_full)
    code, text = _export(["--adapter", "customer-sft", "--out", str(out)], monkeypatch, capsys)
    assert code == 1 and "No space left on device" in text and "nothing half-written was kept" in text, text
    assert out.read_bytes() == b"GGUF the previous export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gguf"]


def test_a_qwen2_adapter_keeps_transformers_q_and_k_row_order() -> None:
    """A qwen2 GGUF (the embedded 1.5B) keeps q / k rows as transformers does (NEOX rope; on the
    1.5B itself: benchmarks/lora_export_qwen2.py), so only a llama base re-orders lora_B."""
    from grouped_sim.models.lora_gguf import BaseGGUF, gguf_pairs, rope_rows

    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 16)).astype(np.float32), rng.standard_normal((16, 2)).astype(np.float32)
    shapes = {"blk.0.attn_q.weight": (16, 16)}
    for arch, expected in (("qwen2", b), ("llama", rope_rows(b, 2))):
        base = BaseGGUF(path=Path(f"{arch}.gguf"), architecture=arch, head_count=2, head_count_kv=2, block_count=1, shapes=shapes)
        (pair,) = gguf_pairs({"model.layers.0.self_attn.q_proj": (a, b)}, base)
        assert pair.target == "blk.0.attn_q.weight" and np.array_equal(pair.b, expected), arch
    assert not np.array_equal(rope_rows(b, 2), b)
