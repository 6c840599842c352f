"""transformers generation for hf: models: one padded `generate` call for many prompts.

Sampling is done by `RowSampler`, a logits processor with one seeded `torch.Generator` per row that
applies the row's own temperature and top-p and then pins the chosen token. A row's tokens therefore
depend on its own seed, not on the other rows' seeds, so candidate 0 of best-of-N is the reply a
plain call with the same seed gives; rows of different prompts share left-padding, whose numerics
can flip a near-tie token (docs/scale.md).

Concurrent calls are not merged here: a merging queue (and a hand-written CPU decoder) served the
135M while it was the default; the embedded models now run on llama.cpp, which batches its slots.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RowRequest:
    """One prompt and the sampling settings that belong to it (roles sharing weights differ)."""

    prompt: str
    seed: int | None
    temperature: float
    top_p: float
    max_new_tokens: int
    cancel: Any = field(default=None, compare=False)  # a threading.Event: set, the row stops at its next token


class RowSampler:
    """Samples each row with its own generator, temperature and top-p; returns one-hot logits.

    Used with `do_sample=False`: the greedy step then picks exactly the token sampled here, and
    `generate`'s own warpers never run. Processors that come before it (repetition penalty) still
    shape the scores it samples from.
    """

    def __init__(self, rows: list[RowRequest]) -> None:
        self.rows = rows
        self.generators = [seeded_generator(row.seed) for row in rows]

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        out = torch.full_like(scores, float("-inf"))
        for i, row in enumerate(self.rows):
            out[i, sample_token(scores[i], row.temperature, row.top_p, self.generators[i])] = 0.0
        return out


def seeded_generator(seed: int | None) -> Any:
    """A row's own random stream: `seed`, or a fresh random seed when the caller gave none."""
    import torch

    g = torch.Generator()
    g.manual_seed(seed if seed is not None else int(torch.randint(0, 2**31 - 1, (1,)).item()))
    return g


def sample_token(scores: Any, temperature: float, top_p: float, generator: Any) -> int:
    """One token from a row's scores: argmax at temperature 0, else nucleus sampling with `generator`."""
    import torch

    logits = scores.float()
    if temperature <= 0:
        return int(torch.argmax(logits))
    probs = torch.softmax(logits / temperature, dim=-1)
    kept, order = nucleus(probs, top_p if top_p < 1.0 else 1.0)
    return int(order[torch.multinomial(kept, 1, generator=generator)])


NUCLEUS_CANDIDATES = 4096


def nucleus(probs: Any, top_p: float) -> tuple[Any, Any]:
    """The smallest most-probable set of tokens whose mass reaches top_p: (their probabilities,
    their token ids), most probable first; the draw is made among them only.

    The set almost always lies among the top NUCLEUS_CANDIDATES tokens, found with topk (several
    times cheaper than sorting a 49k vocabulary, and the draw runs over a few thousand entries,
    not all); the whole vocabulary is sorted only when they do not reach top_p.
    """
    import torch

    k = min(NUCLEUS_CANDIDATES, probs.shape[-1])
    top, order = torch.topk(probs, k)
    cumulative = torch.cumsum(top, dim=-1)
    if k < probs.shape[-1] and float(cumulative[-1]) < top_p:
        top, order = torch.sort(probs, descending=True)
        cumulative = torch.cumsum(top, dim=-1)
    # Keep the smallest prefix whose mass reaches top_p (always at least one token).
    return top.masked_fill(cumulative - top >= top_p, 0.0), order


class CancelledRows:
    """A stopping criterion: a row whose caller cancelled it (RowRequest.cancel set) is done."""

    def __init__(self, rows: list[RowRequest]) -> None:
        self.rows = rows

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        return torch.tensor([r.cancel is not None and r.cancel.is_set() for r in self.rows], dtype=torch.bool, device=input_ids.device)


def cut_at_stop(text: str, stop: list[str] | None) -> str:
    """The text up to the first stop string (generate stops a row a few characters late)."""
    if not stop:
        return text
    cut = len(text)
    for marker in stop:
        idx = text.find(marker)
        if idx != -1:
            cut = min(cut, idx)
    return text[:cut]


def stop_criterion(loaded: Any, stop: list[str]) -> Any:
    """transformers' StopStringCriteria for these stop strings, built once per loaded model.

    Passing `stop_strings=` to `generate` rebuilds the criterion's token tables on every call: about
    190 ms, 14 % of a short turn's wall time on 2 cores. The criterion is stateless between calls
    (its tables depend on the tokenizer and the strings only), so the cached one stops at exactly
    the same token and the text is unchanged.
    """
    from transformers import StopStringCriteria

    key = tuple(stop)
    if key not in loaded.stop_criteria:
        loaded.stop_criteria[key] = StopStringCriteria(tokenizer=loaded.tokenizer, stop_strings=list(stop))
    return loaded.stop_criteria[key]


def generate_batch(loaded: Any, rows: list[RowRequest], stop: list[str] | None, repetition_penalty: float) -> list[str]:
    """Every row's continuation from transformers' `generate`, computed on the process's one tensor
    thread (grouped_sim/compute.py)."""
    from grouped_sim.compute import on_compute_thread

    return on_compute_thread(generate_with_transformers, loaded, rows, stop, repetition_penalty)


def generate_with_transformers(loaded: Any, rows: list[RowRequest], stop: list[str] | None, repetition_penalty: float) -> list[str]:
    """One padded `generate` call over `rows`; each row cut at its own token budget and stop strings.

    Rows that all share one prompt (best-of-N candidates) read it once: the prompt but its last
    token is run as a batch of one, its KV cache is copied to every row, and `generate` goes on
    from there. On a full-mode prompt (about 470 tokens) 4 candidates take 2.0x less time than a
    padded batch of 4 copies, with the same text for every seed (benchmarks/results/speed.json).
    """
    import torch
    from transformers import StoppingCriteriaList

    tokenizer = loaded.tokenizer
    shared = len(rows) > 1 and len({r.prompt for r in rows}) == 1
    batch = tokenizer([rows[0].prompt] if shared else [r.prompt for r in rows], return_tensors="pt", padding=True, add_special_tokens=False)
    gen_kwargs: dict[str, Any] = {
        "max_new_tokens": max(r.max_new_tokens for r in rows),
        "repetition_penalty": repetition_penalty,
        "pad_token_id": tokenizer.pad_token_id,
        "do_sample": False,
        "logits_processor": [RowSampler(rows)],
        # Neutralise sampling defaults a model's generation_config may carry (they would only warn).
        "temperature": None,
        "top_p": None,
        "top_k": None,
    }
    criteria = StoppingCriteriaList([stop_criterion(loaded, stop)] if stop else [])
    if any(r.cancel is not None for r in rows):
        criteria.append(CancelledRows(rows))
    if criteria:
        gen_kwargs["stopping_criteria"] = criteria
    with loaded.lock, torch.inference_mode():
        if shared and batch["input_ids"].shape[1] > 1:
            batch = shared_prefix(loaded.model, batch["input_ids"], len(rows), gen_kwargs)
        out = loaded.model.generate(**batch, **gen_kwargs)
    width = batch["input_ids"].shape[1]
    texts: list[str] = []
    for i, row in enumerate(rows):
        # A row's first k tokens do not depend on how many more steps the batch ran.
        tokens = out[i, width : width + row.max_new_tokens]
        texts.append(cut_at_stop(tokenizer.decode(tokens, skip_special_tokens=True), stop).strip())
    return texts


def shared_prefix(model: Any, input_ids: Any, n: int, gen_kwargs: dict[str, Any]) -> dict[str, Any]:
    """Run one prompt but its last token once, copy its KV cache to `n` rows (into gen_kwargs), and
    return the n-row batch that `generate` continues from that cache."""
    import torch
    from transformers import DynamicCache

    cache = DynamicCache()
    model(input_ids=input_ids[:, :-1], past_key_values=cache, use_cache=True, logits_to_keep=1)
    cache.batch_repeat_interleave(n)
    gen_kwargs["past_key_values"] = cache
    return {"input_ids": input_ids.repeat(n, 1), "attention_mask": torch.ones(n, input_ids.shape[1], dtype=torch.long)}
