"""A compact decoder for Llama-family models on CPU: the fast path of the embedded default.

Why it exists. On 2 CPU cores, transformers' `generate` spends about 36 ms per token on
SmolLM2-135M (in fp32 matrix-vector products that stream 540 MB of weights per token, plus a KV
cache that grows by concatenation) and about 0.5 s reading a 400-token prompt. What this module
does instead, each lever measured (benchmarks/engine.py, results in
benchmarks/results/engine.json):

- the prompt is read in bfloat16 where the CPU computes it natively (AVX512-BF16 / AMX): about 3x
  faster matrix products than fp32;
- new tokens are computed with weight-only low-bit matrices: weights that are 4-bit already (a Q4
  GGUF, like the embedded model's) stay 4-bit (`Int4Linear`, exact but for bf16 scales), others
  become int8 with a scale per output channel (`Int8Linear`). On held-out real replies the
  per-token negative log-likelihood moved by under 1 % against fp32 (benchmarks/results/engine.json);
- the KV cache is allocated once per batch and written in place, and a layer is about 30 tensor
  operations (fused QKV and gate/up projections, one RoPE over queries and keys together);
- in bf16, a prompt's attention is one matrix product per key head (`_attend_prompt`), and a new
  token's query heads are laid out as their key head's queries (`_attend_new`): torch's bf16
  attention kernel with grouped heads was 2x slower on a prompt and 4.7x per new token.

Where the CPU has no native bfloat16, everything runs in fp32 (only the cache and the lighter
layer remain, and rows of a batch are multiplied one by one, see `RowwiseLinear`). Models that
are not plain Llama (biases, other activations, scaled RoPE) are left to transformers:
`unsupported_reason` says why, and `auto` falls back.

Batch invariance: a row's tokens depend on its own prompt and seed only. Each distinct prompt is
read on its own (no padding), the 4-bit and int8 products compute every row independently of its
neighbours, and each row attends alone over a cache of its own. Best-of-N candidates, merged
concurrent requests and a call made alone therefore give the same text, which
tests/foundation/test_lean_engine.py checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from grouped_sim.models.batching import RowRequest, apply_repetition_penalty, cut_at_stop, sample_token, seeded_generator

COMPUTE_BF16_INT8 = "bf16 prompt; per token 4-bit weights where the model's are 4-bit, int8 elsewhere"
COMPUTE_FP32 = "fp32"


def native_bf16() -> bool:
    """True where this CPU multiplies bfloat16 matrices in hardware (AVX512-BF16 or AMX)."""
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:  # another torch build: take the safe, portable path
        return False


def unsupported_reason(model: Any) -> str | None:
    """Why the lean decoder cannot run `model` (a transformers causal LM, maybe under a LoRA), or None."""
    config = getattr(model, "config", None)
    if config is None or getattr(config, "model_type", None) != "llama":
        return f"model type {getattr(config, 'model_type', None)!r} is not llama"
    if getattr(config, "attention_bias", False) or getattr(config, "mlp_bias", False):
        return "biased projections"
    if getattr(config, "hidden_act", "silu") != "silu":
        return f"activation {config.hidden_act!r}"
    rope = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {}
    if rope.get("rope_type", rope.get("type", "default")) not in ("default", None):
        return f"RoPE scaling {rope.get('rope_type')!r}"
    if getattr(config, "pretraining_tp", 1) != 1:
        return "tensor-parallel pretraining split"
    if next(model.parameters()).device.type != "cpu":
        return "weights are not on the CPU"
    return None


def without_adapter_wrapper(model: Any) -> Any:
    """The transformers model under a peft wrapper (its LoRA layers stay in place), or `model`."""
    from peft import PeftModel

    return model.get_base_model() if isinstance(model, PeftModel) else model


@dataclass
class Projection:
    """A projection as the model holds it: its base weight and its LoRA update as two factors
    (update = up @ down, scaling folded into `up`), or no update. Read without merging anything
    into the model, so the transformers path on the same weights is untouched."""

    base: torch.Tensor  # [out, in]
    down: torch.Tensor | None = None  # [rank, in]
    up: torch.Tensor | None = None  # [out, rank]

    @property
    def merged(self) -> torch.Tensor:
        return self.base if self.down is None or self.up is None else self.base + self.up @ self.down


def projection(module: Any) -> Projection:
    """The base weight and LoRA factors of a (possibly adapted) linear layer."""
    from peft.tuners.lora import LoraLayer

    if not isinstance(module, LoraLayer):
        return Projection(module.weight.detach().float())
    base = module.get_base_layer().weight.detach().float()
    active = [name for name in module.active_adapters if name in module.lora_A]
    if any(module.use_dora.get(name) for name in active):  # DoRA rescales the whole weight: no low-rank form
        return Projection(base + sum(module.get_delta_weight(name).detach().float() for name in active))
    if not active:
        return Projection(base)
    down = torch.cat([module.lora_A[name].weight.detach().float() for name in active])
    up = torch.cat([module.lora_B[name].weight.detach().float() * module.scaling[name] for name in active], dim=1)
    return Projection(base, down, up)


def stacked(parts: list[Projection]) -> Projection:
    """Projections of one input side by side (Q, K, V; gate, up): one product instead of several."""
    base = torch.cat([p.base for p in parts])
    if all(p.down is None for p in parts):
        return Projection(base)
    downs = [p.down if p.down is not None else base.new_zeros(0, base.shape[1]) for p in parts]
    ups = [p.up if p.up is not None else base.new_zeros(p.base.shape[0], 0) for p in parts]
    return Projection(base, torch.cat(downs), torch.block_diag(*ups))


class LowRankUpdate:
    """x (up @ down)^T computed as two broadcast products summed over their last axis, so a row's
    result never depends on the other rows of its batch (a matrix product's would)."""

    def __init__(self, down: torch.Tensor, up: torch.Tensor) -> None:
        self.down, self.up = down.float().contiguous(), up.float().contiguous()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        hidden = (x.float().unsqueeze(-2) * self.down).sum(-1)
        return (hidden.unsqueeze(-2) * self.up).sum(-1)


class WithUpdate:
    """A low-bit base product plus the exact LoRA update: the base stays 4-bit under an adapter."""

    def __init__(self, base: Any, update: LowRankUpdate) -> None:
        self.base, self.update = base, update

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return (self.base(x).float() + self.update(x)).to(torch.bfloat16)


class Int4Linear:
    """y = x W^T for a W that IS 4-bit: every group of 32 inputs holds at most 16 evenly spaced values.

    GGUF Q4 weights (the embedded SmolLM2 ships as Q4_1) de-quantise to exactly that, so they are
    stored back as 4 bits with a bf16 scale and offset per group: half the bytes of int8 and a
    smaller error (the bf16 rounding of the scales only) than re-quantising them per channel.
    `exact` returns None for any other weight.
    """

    GROUP = 32

    def __init__(self, packed: torch.Tensor, scales_and_zeros: torch.Tensor, out_features: int) -> None:
        self.packed, self.scales_and_zeros, self.out_features = packed, scales_and_zeros, out_features

    @classmethod
    def exact(cls, weight: torch.Tensor) -> Int4Linear | None:
        out_features, in_features = weight.shape
        if in_features % cls.GROUP:
            return None
        groups = weight.float().reshape(out_features, in_features // cls.GROUP, cls.GROUP)
        low, high = groups.amin(dim=-1), groups.amax(dim=-1)
        step = (high - low) / 15
        levels = torch.round((groups - low[..., None]) / step.clamp(min=1e-12)[..., None])
        if not torch.equal(levels * step[..., None] + low[..., None], groups):
            return None
        try:
            packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(levels.reshape(out_features, in_features).to(torch.int32), 1)
        except (AttributeError, RuntimeError):  # a torch without the CPU int4 kernels: int8 it is
            return None
        # The kernel computes (level - 8) * scale + zero.
        scales_and_zeros = torch.stack([step, low + 8 * step], dim=-1).transpose(0, 1).contiguous().to(torch.bfloat16)
        return cls(packed, scales_and_zeros, out_features)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, x.shape[-1]).to(torch.bfloat16)
        y = torch.ops.aten._weight_int4pack_mm_for_cpu(flat, self.packed, self.GROUP, self.scales_and_zeros)
        return y.reshape(*x.shape[:-1], self.out_features)


class Int8Linear:
    """y = x W^T with W stored as int8 and one scale per output channel (symmetric)."""

    def __init__(self, weight: torch.Tensor) -> None:
        w = weight.float()
        scale = w.abs().amax(dim=1).clamp(min=1e-8) / 127.0
        self.weight = torch.round(w / scale[:, None]).clamp(-127, 127).to(torch.int8).contiguous()
        self.scale = scale.to(torch.bfloat16)
        self.out_features = w.shape[0]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, x.shape[-1]).to(torch.bfloat16)
        y = torch.ops.aten._weight_int8pack_mm(flat, self.weight, self.scale)
        return y.reshape(*x.shape[:-1], self.out_features)


class RowwiseLinear:
    """y = x W^T in fp32, one row at a time.

    An fp32 matrix product over several rows rounds differently from the same rows one by one (the
    library switches kernels with the row count), so rows are kept apart to keep batch invariance;
    it costs a pass over the weights per row, where the int8 path reads them once for all rows.
    """

    def __init__(self, weight: torch.Tensor) -> None:
        self.weight = weight.float().contiguous()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([F.linear(row, self.weight) for row in x.split(1)])


@dataclass
class Layer:
    """One decoder layer's weights: dense ones for reading prompts, `*_step` ones for new tokens."""

    attn_norm: torch.Tensor
    mlp_norm: torch.Tensor
    qkv: torch.Tensor
    out: torch.Tensor
    gate_up: torch.Tensor
    down: torch.Tensor
    qkv_step: Any
    out_step: Any
    gate_up_step: Any
    down_step: Any


class LeanLlama:
    """The weights of one Llama-family model laid out for CPU inference (see the module docstring)."""

    def __init__(self, model: Any, bf16: bool | None = None) -> None:
        reason = unsupported_reason(model)
        if reason is not None:
            raise ValueError(f"the lean decoder cannot run this model: {reason}")
        base = without_adapter_wrapper(model)
        cfg = base.config
        self.bf16 = native_bf16() if bf16 is None else bf16
        self.dtype = torch.bfloat16 if self.bf16 else torch.float32
        self.compute = COMPUTE_BF16_INT8 if self.bf16 else COMPUTE_FP32
        self.heads, self.kv_heads = cfg.num_attention_heads, cfg.num_key_value_heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // self.heads
        self.hidden = cfg.hidden_size
        self.eps = float(cfg.rms_norm_eps)
        self.max_positions = int(cfg.max_position_embeddings)
        inner = base.model
        self.embed = inner.embed_tokens.weight.detach().to(self.dtype)
        self.final_norm = inner.norm.weight.detach().float()
        self.lm_head = self._step_linear(projection(base.lm_head))
        self.layers = [self._layer(layer) for layer in inner.layers]
        self.cos, self.sin = self._rope_tables(cfg)

    def _step_linear(self, proj: Projection) -> Any:
        if not self.bf16:
            return RowwiseLinear(proj.merged)
        base = Int4Linear.exact(proj.base) or Int8Linear(proj.base)
        return base if proj.down is None or proj.up is None else WithUpdate(base, LowRankUpdate(proj.down, proj.up))

    def _layer(self, layer: Any) -> Layer:
        attn, mlp = layer.self_attn, layer.mlp
        qkv = stacked([projection(attn.q_proj), projection(attn.k_proj), projection(attn.v_proj)])
        gate_up = stacked([projection(mlp.gate_proj), projection(mlp.up_proj)])
        out, down = projection(attn.o_proj), projection(mlp.down_proj)
        return Layer(
            attn_norm=layer.input_layernorm.weight.detach().float(),
            mlp_norm=layer.post_attention_layernorm.weight.detach().float(),
            qkv=qkv.merged.to(self.dtype),
            out=out.merged.to(self.dtype),
            gate_up=gate_up.merged.to(self.dtype),
            down=down.merged.to(self.dtype),
            qkv_step=self._step_linear(qkv),
            out_step=self._step_linear(out),
            gate_up_step=self._step_linear(gate_up),
            down_step=self._step_linear(down),
        )

    def _rope_tables(self, cfg: Any) -> tuple[torch.Tensor, torch.Tensor]:
        rope = getattr(cfg, "rope_parameters", None) or {}
        theta = float(rope.get("rope_theta") or getattr(cfg, "rope_theta", 10000.0))
        inv_freq = 1.0 / (theta ** (torch.arange(0, self.head_dim, 2, dtype=torch.float32) / self.head_dim))
        freqs = torch.outer(torch.arange(self.max_positions, dtype=torch.float32), inv_freq)
        angles = torch.cat([freqs, freqs], dim=-1)
        return angles.cos().to(self.dtype), angles.sin().to(self.dtype)

    def norm(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x.float(), (self.hidden,), weight, self.eps).to(self.dtype)

    def rotate(self, qk: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """RoPE on queries and keys at once; qk is [B, T, heads, head_dim], positions [B, T]."""
        cos, sin = self.cos[positions].unsqueeze(2), self.sin[positions].unsqueeze(2)
        half = self.head_dim // 2
        rotated = torch.cat([-qk[..., half:], qk[..., :half]], dim=-1)
        return qk * cos + rotated * sin

    def new_cache(self, length: int) -> torch.Tensor:
        """One row's keys and values for every layer: [layers, 2, kv_heads, length, head_dim].

        Each row owns its cache, sized by its own prompt and budget, so its memory layout (and the
        attention kernel's arithmetic over it) never depends on the rows it is batched with.
        """
        return torch.zeros(len(self.layers), 2, self.kv_heads, length, self.head_dim, dtype=self.dtype)

    def _attention_inputs(self, qkv: torch.Tensor, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        batch, length = qkv.shape[:2]
        n_q, n_kv = self.heads * self.head_dim, self.kv_heads * self.head_dim
        qk = self.rotate(qkv[..., : n_q + n_kv].reshape(batch, length, self.heads + self.kv_heads, self.head_dim), positions)
        q = qk[:, :, : self.heads].transpose(1, 2)
        k = qk[:, :, self.heads :].transpose(1, 2)
        v = qkv[..., n_q + n_kv :].reshape(batch, length, self.kv_heads, self.head_dim).transpose(1, 2)
        return q, k, v

    def _mlp_and_out(self, x: torch.Tensor, attended: torch.Tensor, layer: Layer, step: bool) -> torch.Tensor:
        merged = attended.transpose(1, 2).reshape(*x.shape[:2], self.heads * self.head_dim)
        x = x + (layer.out_step(merged) if step else F.linear(merged, layer.out)).to(self.dtype)
        h = self.norm(x, layer.mlp_norm)
        gate, up = (layer.gate_up_step(h) if step else F.linear(h, layer.gate_up)).to(self.dtype).chunk(2, dim=-1)
        hidden = F.silu(gate) * up
        return x + (layer.down_step(hidden) if step else F.linear(hidden, layer.down)).to(self.dtype)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.lm_head(F.rms_norm(x.float(), (self.hidden,), self.final_norm, self.eps).to(self.dtype)).float()

    @torch.inference_mode()
    def read_prompt(self, ids: list[int], caches: list[torch.Tensor]) -> torch.Tensor:
        """Run one prompt (no padding), write its keys and values into each of `caches`; its next-token logits."""
        if len(ids) >= self.max_positions:
            raise ValueError(f"prompt of {len(ids)} tokens is longer than the model's {self.max_positions} positions")
        tokens = torch.tensor([ids])
        positions = torch.arange(len(ids))[None]
        x = self.embed[tokens]
        future = torch.ones(len(ids), len(ids), dtype=torch.bool).triu(1)  # one mask for every layer
        for i, layer in enumerate(self.layers):
            q, k, v = self._attention_inputs(F.linear(self.norm(x, layer.attn_norm), layer.qkv), positions)
            for cache in caches:
                cache[i, 0, :, : len(ids)] = k[0]
                cache[i, 1, :, : len(ids)] = v[0]
            x = self._mlp_and_out(x, self._attend_prompt(q, k, v, future), layer, step=False)
        return self.logits(x[:, -1])[0]

    def _attend_prompt(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, future: torch.Tensor) -> torch.Tensor:
        """Causal attention over one prompt: q [1, heads, n, d], k, v [1, kv_heads, n, d]; `future`
        [n, n] marks the keys after each query.

        In bf16, one matrix product per key head for all the query heads that share it, softmax in
        fp32: half the time of torch's bf16 flash kernel on the 2-core machine (54 ms against 105
        for a 505-token prompt, 30 layers), whose bf16 path runs far below the matrix units' rate.
        fp32 keeps transformers' own call (the fp32 parity test).
        """
        if not self.bf16:
            return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        length, group = q.shape[2], self.heads // self.kv_heads
        outs = []
        for h in range(self.kv_heads):
            queries = q[0, h * group : (h + 1) * group].reshape(group * length, self.head_dim)
            scores = torch.mm(queries, k[0, h].t()).view(group, length, length).float()
            scores.mul_(self.head_dim**-0.5).masked_fill_(future, float("-inf"))
            weights = torch.softmax(scores, dim=-1).to(self.dtype).view(group * length, length)
            outs.append(torch.mm(weights, v[0, h]).view(group, length, self.head_dim))
        return torch.cat(outs)[None]

    @torch.inference_mode()
    def step(self, tokens: torch.Tensor, positions: list[int], caches: list[torch.Tensor]) -> torch.Tensor:
        """One new token per row at its own position; each row attends to its own cache only.

        The linear layers take all rows at once (their kernels compute each row on its own); attention
        runs row by row. Rows attending together changed a row's text with its batch (torch's kernel
        rounded differently for 2 rows than for 1: measured on mining prompts), and on this
        memory-bound step one row at a time costs the same as a batch.
        """
        x = self.embed[tokens][:, None]
        at = torch.tensor(positions)[:, None]
        for i, layer in enumerate(self.layers):
            q, k, v = self._attention_inputs(layer.qkv_step(self.norm(x, layer.attn_norm)).to(self.dtype), at)
            attended = []
            for row, (cache, position) in enumerate(zip(caches, positions)):
                cache[i, 0, :, position] = k[row, :, 0]
                cache[i, 1, :, position] = v[row, :, 0]
                keys, values = cache[i, 0, :, : position + 1][None], cache[i, 1, :, : position + 1][None]
                attended.append(self._attend_new(q[row : row + 1], keys, values))
            x = self._mlp_and_out(x, torch.cat(attended), layer, step=True)
        return self.logits(x[:, 0])

    def _attend_new(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Attention of one new token of one row: q [1, heads, 1, d] over k, v [1, kv_heads, n, d].

        In bf16 the query heads sharing a key head are laid out as that head's queries (needs no
        mask: every one may see all n keys): torch's bf16 kernel with enable_gqa took 33 ms a step
        for 4 rows over 700 positions on the 2-core machine, this 7 ms. fp32 keeps transformers'
        own call, so the fp32 lean decoder still gives transformers' text exactly.
        """
        if not self.bf16:
            return F.scaled_dot_product_attention(q, k, v, enable_gqa=True)
        rows, group = q.shape[0], self.heads // self.kv_heads
        # Contiguous: the kernel always sees one memory layout of the queries, whatever the step's rows.
        grouped = q.reshape(rows, self.kv_heads, group, self.head_dim).contiguous()
        return F.scaled_dot_product_attention(grouped, k, v).reshape(rows, self.heads, 1, self.head_dim)


@dataclass
class _Row:
    request: RowRequest
    prompt_ids: list[int]
    generator: torch.Generator
    tokens: list[int]
    done: bool = False


def generate_rows(lean: LeanLlama, tokenizer: Any, eos_ids: set[int], rows: list[RowRequest], stop: list[str] | None, repetition_penalty: float) -> list[str]:
    """Sample every row to its budget, a stop string, EOS or cancellation; the text of each row.

    Same sampling as the transformers path (models/batching.py): repetition penalty over the prompt
    and what was generated, then the row's temperature and top-p with its own seeded generator.
    """
    state = [_Row(r, tokenizer(r.prompt, add_special_tokens=False).input_ids, seeded_generator(r.seed), []) for r in rows]
    caches = [lean.new_cache(len(s.prompt_ids) + s.request.max_new_tokens) for s in state]
    logits = torch.empty(len(rows), lean.embed.shape[0])
    for members in _by_prompt(rows).values():
        logits[members] = lean.read_prompt(state[members[0]].prompt_ids, [caches[m] for m in members])
    positions = [len(s.prompt_ids) for s in state]
    for _ in range(max(r.max_new_tokens for r in rows)):
        chosen = [_choose(s, logits[i], repetition_penalty) for i, s in enumerate(state)]
        for s, token in zip(state, chosen):
            _advance(s, token, tokenizer, eos_ids, stop)
        live = [i for i, s in enumerate(state) if not s.done]
        if not live:
            break
        # Only unfinished rows go on; the linear layers compute each row on its own, so who else
        # is in the step never changes a row's numbers.
        logits[live] = lean.step(torch.tensor([chosen[i] for i in live]), [positions[i] for i in live], [caches[i] for i in live])
        for i in live:
            positions[i] += 1
    return [cut_at_stop(tokenizer.decode(s.tokens, skip_special_tokens=True), stop).strip() for s in state]


def _by_prompt(rows: list[RowRequest]) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        groups.setdefault(row.prompt, []).append(i)
    return groups


def _choose(row: _Row, logits: torch.Tensor, repetition_penalty: float) -> int:
    if row.done:
        return row.tokens[-1] if row.tokens else row.prompt_ids[-1]
    scores = apply_repetition_penalty(logits, row.prompt_ids + row.tokens, repetition_penalty)
    return sample_token(scores, row.request.temperature, row.request.top_p, row.generator)


def _advance(row: _Row, token: int, tokenizer: Any, eos_ids: set[int], stop: list[str] | None) -> None:
    if row.done:
        return
    if token in eos_ids:
        row.done = True
        return
    row.tokens.append(token)
    cancelled = row.request.cancel is not None and row.request.cancel.is_set()
    if cancelled or len(row.tokens) >= row.request.max_new_tokens:
        row.done = True
    elif stop and any(marker in tokenizer.decode(row.tokens, skip_special_tokens=True) for marker in stop):
        row.done = True
