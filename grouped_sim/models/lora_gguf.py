"""A PEFT LoRA adapter written as a GGUF LoRA adapter, so llama.cpp can run what we train.

Training stays on transformers + PEFT (`grouped-sim train ...` writes a PEFT folder); llama.cpp
reads adapters only as GGUF files (`llamacpp:MODEL+adapter.gguf`). What llama.cpp expects of one
(its src/llama-adapter.cpp and convert_lora_to_gguf.py):

- metadata: `general.architecture` equal to the base model's, `general.type = adapter`,
  `adapter.type = lora`, `adapter.lora.alpha` (llama.cpp scales B·A by alpha / rank, as PEFT does);
- for each adapted base tensor, e.g. `blk.N.attn_q.weight`, a pair `blk.N.attn_q.weight.lora_a`
  and `.lora_b`: PEFT's lora_A [r, in] and lora_B [out, r] as they are. GGUF lists a tensor's dims
  in reverse, so ggml sees a: [in, r] and b: [r, out], and checks them against the base's [in, out];
- a `llama` GGUF (not a `qwen2` one) stores the q and k projections with each head's rows re-ordered for llama.cpp's
  rope (convert_hf_to_gguf's permute); lora_B of q_proj and k_proj needs the same row order, or the
  update lands on the wrong rows (the adapter loads and silently computes something else).

The base is read, never guessed: its GGUF gives the architecture, head counts and every tensor's
shape, so an adapter made for another model is refused here with a reason, not by llama.cpp later.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from grouped_sim.errors import InputError

CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"
PEFT_PREFIX = "base_model.model."
SUPPORTED_ARCHITECTURES = ("llama", "qwen2")
# Architectures whose GGUF keeps each head's q / k rows in llama.cpp's rope order (convert_hf_to_gguf
# permutes them for llama); qwen2 rotates halves as transformers does (NEOX rope) and keeps the order.
ROPE_ORDERED = ("llama",)
# PEFT module names whose LoRA llama.cpp applies (build_lora_mm) on a llama or qwen2 model.
TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class PeftLoraConfig(BaseModel):
    """The parts of PEFT's adapter_config.json the export depends on; what a GGUF adapter cannot
    carry (DoRA, rsLoRA scaling, per-module ranks or alphas, extra trained weights) is refused,
    because llama.cpp would load the rest and compute a different model without a word."""

    model_config = ConfigDict(extra="ignore")

    peft_type: str
    r: int = Field(ge=1)
    lora_alpha: float = Field(gt=0)
    use_dora: bool = False
    use_rslora: bool = False
    rank_pattern: dict[str, Any] = Field(default_factory=dict)
    alpha_pattern: dict[str, Any] = Field(default_factory=dict)
    modules_to_save: list[str] | None = None
    bias: str = "none"
    lora_bias: bool = False
    fan_in_fan_out: bool = False
    alora_invocation_tokens: list[int] | None = None

    def unsupported(self) -> str | None:
        """Why llama.cpp cannot run this adapter as PEFT does, or None."""
        checks = [
            (self.peft_type != "LORA", f"peft_type {self.peft_type!r} (only LORA adapters)"),
            (self.use_dora, "use_dora (DoRA's magnitude vectors)"),
            (self.use_rslora, "use_rslora (llama.cpp scales by alpha / r, rsLoRA by alpha / sqrt(r))"),
            (bool(self.rank_pattern or self.alpha_pattern), "rank_pattern / alpha_pattern (llama.cpp has one alpha per adapter)"),
            (bool(self.modules_to_save), f"modules_to_save {self.modules_to_save} (fully trained modules, not LoRA)"),
            (self.bias != "none" or self.lora_bias, "trained biases (bias / lora_bias)"),
            (self.fan_in_fan_out, "fan_in_fan_out (Conv1D layers)"),
            (bool(self.alora_invocation_tokens), "activated LoRA (alora_invocation_tokens)"),
        ]
        reasons = [reason for failed, reason in checks if failed]
        return "; ".join(reasons) or None


class BaseGGUF(BaseModel):
    """What the export needs from the base model's GGUF: architecture, heads, tensor shapes (ggml order)."""

    path: Path
    architecture: str
    head_count: int
    head_count_kv: int
    block_count: int
    shapes: dict[str, tuple[int, ...]]


class ExportSummary(BaseModel):
    """What `export_lora` wrote, for the command's report."""

    out: Path
    base: Path
    architecture: str
    rank: int
    alpha: float
    pairs: int
    layers: list[int]
    modules: list[str]
    bytes: int


@dataclass(frozen=True)
class LoraPair:
    """One adapted base tensor: its GGUF name and the arrays written as `.lora_a` / `.lora_b`."""

    target: str
    a: Any
    b: Any


def read_peft_config(adapter: Path) -> PeftLoraConfig:
    """The adapter folder's LoRA config, or an InputError that says what is missing or unsupported."""
    from grouped_sim.io import read_json

    path = adapter / CONFIG_FILE
    if not adapter.is_dir():
        raise InputError(f"--adapter {adapter}: no such folder (a PEFT LoRA folder with {CONFIG_FILE} and {WEIGHTS_FILE})")
    if not path.is_file():
        raise InputError(f"--adapter {adapter}: not a PEFT LoRA adapter folder (no {CONFIG_FILE})")
    try:
        config = PeftLoraConfig.model_validate(read_json(path, "adapter config"))
    except ValidationError as exc:
        raise InputError.from_validation(exc, str(path), whole="<config>") from exc
    reason = config.unsupported()
    if reason:
        raise InputError(f"{path}: llama.cpp cannot run this adapter as PEFT does: {reason}")
    return config


def read_peft_tensors(adapter: Path) -> dict[str, tuple[Any, Any]]:
    """PEFT's lora_A / lora_B weights (float32 numpy) by module name, e.g. `model.layers.3.self_attn.q_proj`."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = adapter / WEIGHTS_FILE
    if not path.is_file():
        raise InputError(f"--adapter {adapter}: no {WEIGHTS_FILE} (only safetensors adapters are read)")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise InputError(f"{path}: not a readable safetensors file ({exc})") from exc
    halves: dict[str, dict[str, Any]] = {}
    for key, tensor in tensors.items():
        stem = key.removeprefix(PEFT_PREFIX)
        for half in ("lora_A", "lora_B"):
            if stem.endswith(f".{half}.weight"):
                halves.setdefault(stem.removesuffix(f".{half}.weight"), {})[half] = tensor.float().numpy()
                break
        else:
            raise InputError(f"{path}: tensor {key!r} is not a LoRA A or B weight; a GGUF LoRA adapter carries only those")
    incomplete = sorted(m for m, h in halves.items() if len(h) != 2)
    if incomplete:
        raise InputError(f"{path}: {incomplete[0]} has only one of lora_A / lora_B")
    if not halves:
        raise InputError(f"{path}: no LoRA weights in it")
    return {module: (h["lora_A"], h["lora_B"]) for module, h in halves.items()}


def _field(reader: Any, key: str) -> Any:
    field = reader.fields.get(key)
    return None if field is None else field.contents()


def read_base(path: Path) -> BaseGGUF:
    """The base model's architecture, head counts and tensor shapes, from its GGUF header."""
    from gguf import GGUFReader

    try:
        reader = GGUFReader(path)
    except Exception as exc:  # a damaged or truncated file: the reader raises ValueError, IndexError, struct.error, ...
        raise InputError(f"base model {path}: not a readable GGUF model ({type(exc).__name__}: {exc})") from exc
    arch = str(_field(reader, "general.architecture") or "")
    heads = _field(reader, f"{arch}.attention.head_count")
    heads_kv = _field(reader, f"{arch}.attention.head_count_kv")
    blocks = _field(reader, f"{arch}.block_count")
    if arch in SUPPORTED_ARCHITECTURES and not (isinstance(heads, int) and isinstance(blocks, int) and isinstance(heads_kv, (int, type(None)))):
        raise InputError(f"base model {path}: a {arch} GGUF without one {arch}.attention.head_count, head_count_kv and block_count")
    shapes = {t.name: tuple(int(d) for d in t.shape) for t in reader.tensors}
    counts = [c if isinstance(c, int) else 0 for c in (heads, heads_kv or heads, blocks)]
    return BaseGGUF(path=path, architecture=arch, head_count=counts[0], head_count_kv=counts[1], block_count=counts[2], shapes=shapes)


def rope_rows(b: Any, heads: int) -> Any:
    """lora_B's rows in the order a llama GGUF keeps q / k rows: within each head, the two rope halves
    interleaved (llama.cpp rotates adjacent pairs; transformers rotates the first half with the second)."""
    out, rank = b.shape
    return b.reshape(heads, 2, out // heads // 2, rank).swapaxes(1, 2).reshape(out, rank)


def gguf_pairs(tensors: dict[str, tuple[Any, Any]], base: BaseGGUF) -> list[LoraPair]:
    """Each PEFT module as a GGUF tensor pair, named, row-ordered and shape-checked against the base."""
    import gguf

    if base.architecture not in SUPPORTED_ARCHITECTURES:
        raise InputError(f"base model {base.path}: architecture {base.architecture!r} is not supported by export-lora (supported: {', '.join(SUPPORTED_ARCHITECTURES)})")
    arch = next(a for a, name in gguf.MODEL_ARCH_NAMES.items() if name == base.architecture)
    names = gguf.get_tensor_name_map(arch, base.block_count)
    rope_heads = {"q_proj": base.head_count, "k_proj": base.head_count_kv}
    pairs = []
    for module, (a, b) in sorted(tensors.items()):
        leaf = module.rpartition(".")[2]
        target = names.get_name(f"{module}.weight", try_suffixes=(".weight",))
        if target is None or target not in base.shapes:
            raise InputError(f"adapter module {module!r}: no such tensor in {base.path.name} (an adapter for another base model?)")
        expected = base.shapes[target]  # ggml order: (in, out)
        if a.shape[0] != b.shape[1] or (a.shape[1], b.shape[0]) != expected:
            raise InputError(f"adapter module {module!r}: A {list(a.shape)} · B {list(b.shape)} does not fit {target} {list(expected)} (ggml order: in, out) of {base.path.name}")
        if leaf in rope_heads and base.architecture in ROPE_ORDERED:
            b = rope_rows(b, rope_heads[leaf])
        pairs.append(LoraPair(target=target, a=a, b=b))
    return pairs


def write_adapter(out: Path, architecture: str, alpha: float, pairs: list[LoraPair], name: str) -> None:
    """Write the GGUF adapter into a temporary file beside `out`, then move it into place: a failed
    or interrupted export never leaves a half-written file under `out` (nor replaces a good one)."""
    import gguf
    import numpy as np

    from grouped_sim.io import OutputError

    partial = out.with_name(f".{out.name}.partial-{os.getpid()}")
    writer = gguf.GGUFWriter(partial, architecture)
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(alpha))
    writer.add_name(name)
    for pair in pairs:
        writer.add_tensor(f"{pair.target}.lora_a", np.ascontiguousarray(pair.a, dtype=np.float32))
        writer.add_tensor(f"{pair.target}.lora_b", np.ascontiguousarray(pair.b, dtype=np.float32))
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        try:
            writer.write_header_to_file()
            writer.write_kv_data_to_file()
            writer.write_tensors_to_file()
        finally:
            writer.close()
        os.replace(partial, out)
    except OSError as exc:
        raise OutputError.writing(out, exc) from exc
    finally:
        partial.unlink(missing_ok=True)


def check_tensors(adapter: Path, config: PeftLoraConfig, tensors: dict[str, tuple[Any, Any]]) -> None:
    """Refuse, before the base is read, weights llama.cpp would run differently from PEFT: a module it
    does not adapt, a rank other than the config's (it scales by alpha / rank), NaN or infinities."""
    import numpy as np

    for module in sorted(tensors):
        leaf = module.rpartition(".")[2]
        if leaf not in TARGET_MODULES:
            raise InputError(f"{adapter}: target module {leaf!r} ({module}) is not supported by export-lora (supported: {', '.join(TARGET_MODULES)})")
    ranks = sorted({a.shape[0] for a, _ in tensors.values()})
    if ranks != [config.r]:
        raise InputError(f"{adapter}: its weights have rank {ranks}, its {CONFIG_FILE} says r = {config.r}; llama.cpp would scale them by alpha / {ranks[0]}")
    bad = sorted(m for m, (a, b) in tensors.items() if not (np.isfinite(a).all() and np.isfinite(b).all()))
    if bad:
        raise InputError(f"{adapter}: {bad[0]} has NaN or infinite weights (a diverged training run?); nothing written")


def export_lora(adapter: Path, out: Path, base: str | None = None) -> ExportSummary:
    """Convert the PEFT LoRA folder `adapter` into a GGUF LoRA adapter at `out`, for the GGUF model
    the spec `base` names (default: the base it was trained on; see `base_gguf`)."""
    config = read_peft_config(adapter)
    tensors = read_peft_tensors(adapter)
    check_tensors(adapter, config, tensors)
    model = read_base(base_gguf(base, adapter))
    pairs = gguf_pairs(tensors, model)
    write_adapter(out, model.architecture, config.lora_alpha, pairs, name=adapter.resolve().name)
    layers = sorted({int(p) for m in tensors for p in m.split(".") if p.isdigit()})
    modules = sorted({m.rpartition(".")[2] for m in tensors})
    return ExportSummary(out=out, base=model.path, architecture=model.architecture, rank=config.r, alpha=config.lora_alpha, pairs=len(pairs), layers=layers, modules=modules, bytes=out.stat().st_size)


def base_gguf(spec: str | None, adapter: Path) -> Path:
    """The GGUF model the adapter will run on: `spec` (llamacpp:MODEL or hf:MODEL), else the base
    it was trained on, from the training.json our train commands write beside the adapter."""
    from grouped_sim.models.finetune import TRAINING_FILE
    from grouped_sim.models.spec import parse_spec

    where = "--base"
    if spec is None:
        spec = _trained_base(adapter / TRAINING_FILE)
        where = f"the base in {adapter / TRAINING_FILE}"
    parsed = parse_spec(spec)
    if parsed.adapter:
        raise InputError(f"{where} {spec!r}: name the plain base model, without '+ADAPTER'")
    if parsed.backend == "llamacpp":
        from grouped_sim.models.llamacpp import resolve_gguf

        return resolve_gguf(parsed.model)[0]
    if parsed.backend == "hf":
        from grouped_sim.models.local import resolve_weights

        location = resolve_weights(parsed.model)
        if location.gguf_file is not None:
            return location.folder / location.gguf_file
    raise InputError(f"{where} {spec!r}: llama.cpp runs GGUF models; name the GGUF base the adapter will run on (llamacpp:smollm2, llamacpp:/path/model.gguf)")


def _trained_base(training_file: Path) -> str:
    """The hf: spec a train command recorded as its base (config.base of training.json)."""
    from grouped_sim.io import read_json

    if not training_file.is_file():
        raise InputError(f"{training_file.parent}: no {training_file.name} to say which model it was trained on; name the base with --base (e.g. llamacpp:smollm2)")
    info = read_json(training_file, "training summary")
    base = info.get("config", {}).get("base") if isinstance(info, dict) and isinstance(info.get("config"), dict) else None
    if not isinstance(base, str):
        raise InputError(f"{training_file}: no config.base; name the base with --base (e.g. llamacpp:smollm2)")
    return base


def adapter_folder(name: str) -> Path:
    """A PEFT folder by path, or a shipped adapter by its short spec name (customer-sft)."""
    from grouped_sim.models.spec import SHIPPED_ADAPTERS

    path = Path(name).expanduser()
    if name in SHIPPED_ADAPTERS and not path.exists():
        from grouped_sim.data import shipped_adapter_path

        return shipped_adapter_path(SHIPPED_ADAPTERS[name])
    return path


def llamacpp_spec(base: Path, out: Path) -> str:
    """The spec that runs the export: the embedded model's short name when the base is one, else its path."""
    from grouped_sim.models.embedded import embedded_models

    names = {m.file: m.aliases[0] if m.aliases else m.name for m in embedded_models().values()}
    return f"llamacpp:{names.get(base.name, str(base))}+{out.resolve()}"
