"""Turn GGUF-loaded weights into a plain transformers model folder, once, cached.

Training (peft, TRL) needs an ordinary model: one loaded from GGUF carries a quantisation config
and de-quantised tensors that trainers and adapters trip over. We rebuild the architecture from
its config without the quantisation part, load the de-quantised state dict, and save safetensors.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

from grouped_sim.io import cache_root
from grouped_sim.models.local import quiet_gguf_loading, resolve_weights

def cache_dir() -> Path:
    """Where derived models live (`io.cache_root`), made if missing."""
    path = cache_root()
    path.mkdir(parents=True, exist_ok=True)
    return path


def materialize_plain(model: str, out_dir: Path | str | None = None, log: bool = True) -> Path:
    """A plain safetensors folder for `model` (hf spec's model part). Non-GGUF folders are returned as they are."""
    location = resolve_weights(model)
    if location.gguf_file is None:
        return location.folder
    gguf = location.folder / location.gguf_file
    # Named by the file's place and size too: two different GGUFs called model.gguf never share a copy.
    digest = hashlib.sha256(f"{gguf.resolve()}:{gguf.stat().st_size}".encode()).hexdigest()[:10]
    target = Path(out_dir) if out_dir else cache_dir() / "plain" / f"{gguf.stem}-{digest}"
    if (target / "config.json").is_file() and any(target.glob("*.safetensors")):
        return target
    if log:
        print(f"materialising {location.gguf_file} as a plain model in {target} (once; cached)", file=sys.stderr, flush=True)
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    with quiet_gguf_loading():
        loaded = AutoModelForCausalLM.from_pretrained(location.folder, gguf_file=location.gguf_file, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(location.folder, gguf_file=location.gguf_file)
        config = AutoConfig.from_pretrained(location.folder, gguf_file=location.gguf_file)
    if "quantization_config" in vars(config):
        delattr(config, "quantization_config")
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = plain.load_state_dict(loaded.state_dict(), strict=False)
    # Tied embeddings legitimately have no separate lm_head tensor; anything else is a real mismatch.
    missing = [m for m in missing if m != "lm_head.weight"]
    if missing or unexpected:
        raise RuntimeError(f"materialising {location.gguf_file}: missing {missing[:5]}, unexpected {unexpected[:5]}")
    if getattr(config, "tie_word_embeddings", False):
        plain.tie_weights()
    tmp = target.with_name(f"{target.name}.partial-{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    plain.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    try:
        os.replace(tmp, target)  # atomic; refused when another process put a complete copy there first
    except OSError:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        if not (target / "config.json").is_file():
            raise
    return target
