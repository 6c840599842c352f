"""Does an exported LoRA of the embedded 1.5B (a qwen2 GGUF) compute on llama.cpp what PEFT computes on transformers?

    .venv/bin/python benchmarks/lora_export_qwen2.py --adapter runs/lora/sft-1.5b [--threads 2]

The qwen2 counterpart of benchmarks/lora_export.py (which checks the llama 135M): on the
prefix-caching prompt of 4 held-out sample calls (turn 2), the next-token log-probabilities of the
1.5B with and without the adapter on both engines. `adapted gap` (llama.cpp adapted vs transformers
adapted) should stay near `base gap` (the engines' own difference: Q4_K_M arithmetic), while
`effect` (adapted vs base) is what the adapter does. The ablation exports the same adapter with the
llama q / k row order applied, which a qwen2 GGUF does not use: its adapted gap must grow.
Results: benchmarks/results/lora_export_qwen2.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from lora_export import gap, llama_logprobs, transformers_logprobs

RESULTS = Path(__file__).parent / "results"
HELD_OUT = ["fd-005", "fd-013", "bb-002", "in-006"]  # held out of the fit runs/cmp/sample-sim (seed 0), so of the adapter's training


def prompts(turn: int = 2) -> list[str]:
    from grouped_sim.corpus import read_corpus
    from grouped_sim.data import sample_corpus_path
    from grouped_sim.sop_db.datasets import d_sim_records

    by_id = {d.id: list(d_sim_records(d)) for d in read_corpus(sample_corpus_path())}
    return [by_id[d][turn]["script_prompt"] for d in HELD_OUT if d in by_id and len(by_id[d]) > turn]


def export(adapter: Path, out: Path, llama_order: bool) -> None:
    import grouped_sim.models.lora_gguf as lora_gguf

    keep = lora_gguf.ROPE_ORDERED
    lora_gguf.ROPE_ORDERED = ("llama", "qwen2") if llama_order else keep
    try:
        lora_gguf.export_lora(adapter, out, "llamacpp:default")
    finally:
        lora_gguf.ROPE_ORDERED = keep


def stored_row_order(layer: int = 27) -> dict[str, bool]:
    """On the file itself: are the 1.5B GGUF's q / k rows in transformers' order (the plain copy
    transformers de-quantises from the same file), and would the llama re-order break that?"""
    import numpy as np
    from gguf import GGUFReader
    from gguf.quants import dequantize
    from safetensors import safe_open

    from grouped_sim.models.lora_gguf import rope_rows
    from grouped_sim.models.llamacpp import resolve_gguf
    from grouped_sim.models.materialize import materialize_plain

    path = resolve_gguf("default")[0]
    tensors = {t.name: t for t in GGUFReader(path).tensors}
    plain = {}
    for file in materialize_plain(str(path), log=False).glob("*.safetensors"):
        with safe_open(str(file), "np") as handle:
            plain.update({k: handle.get_tensor(k) for k in handle.keys() if f"layers.{layer}.self_attn." in k})
    out = {}
    for proj, target, heads in (("q_proj", "attn_q", 12), ("k_proj", "attn_k", 2)):
        stored = tensors[f"blk.{layer}.{target}.weight"]
        in_gguf = dequantize(stored.data, stored.tensor_type).reshape(-1, int(stored.shape[0]))
        in_transformers = plain[f"model.layers.{layer}.self_attn.{proj}.weight"].astype(np.float32)
        out[proj] = {"same_order": bool(np.array_equal(in_gguf, in_transformers)), "llama_reorder_matches": bool(np.array_equal(rope_rows(in_transformers, heads), in_gguf))}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapter", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    from grouped_sim.models.llamacpp import resolve_gguf

    base = str(resolve_gguf("default")[0])
    texts = prompts()
    folder = Path(tempfile.mkdtemp())
    export(args.adapter, folder / "ordered-as-qwen2.gguf", False)
    export(args.adapter, folder / "ordered-as-llama.gguf", True)
    hf_base, hf_adapted = transformers_logprobs(f"hf:{base}", texts), transformers_logprobs(f"hf:{base}+{args.adapter.resolve()}", texts)
    llama_base = llama_logprobs("llamacpp:default", texts, args.threads)
    results: dict = {"adapter": str(args.adapter), "prompts": len(texts), "held_out": HELD_OUT, "stored_row_order": stored_row_order()}
    print(f"q / k rows of the GGUF: {results['stored_row_order']}")
    for name in ("ordered-as-qwen2", "ordered-as-llama"):
        adapted = llama_logprobs(f"llamacpp:default+{folder / name}.gguf", texts, args.threads)
        rows = [
            {"base_gap": gap(lb, hb), "adapted_gap": gap(la, ha), "effect_llama": gap(la, lb), "effect_transformers": gap(dict(enumerate(ha)), hb)}
            for lb, la, hb, ha in zip(llama_base, adapted, hf_base, hf_adapted)
        ]
        means = {k: round(statistics.fmean(r[k] for r in rows), 4) for k in rows[0]}
        results[name] = {"per_prompt": rows, "means": means}
        print(f"{name}: {means}")
    (RESULTS / "lora_export_qwen2.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
