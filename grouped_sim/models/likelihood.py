"""How likely a reply is after its context, under a language model that is NOT the customer.

The coherence judge reads replies through these numbers. A model rates its own samples highly, so
the model that writes the customer's lines cannot grade them; the judge's default reader is the
base Gemma 3 270M (a plain language model of another family, shipped on PyPI in four parts; see
data/models.yaml), run on transformers in fp32 so every token of the reply has an exact
log-probability (llama.cpp's server reports log-probabilities of generated tokens only).

A context is a transcript ("Salesman: ...\\nCustomer: ..." lines, grouped_sim.transcript) and the
reply is read as the next customer line. Only the reply's positions are projected onto the
vocabulary (Gemma's vocabulary is 262k words: the projection is most of the cost).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

MAX_CONTEXT_TOKENS = 384
MAX_REPLY_TOKENS = 64


def reader_weights(model: str) -> Any:
    """The transformers weights of a reader model: an embedded name (joined and checked), or a path."""
    from grouped_sim.models.embedded import embedded_path, find_embedded
    from grouped_sim.models.local import load_weights

    embedded = find_embedded(model)
    return load_weights(str(embedded_path(embedded)) if embedded is not None else model)


class ReplyReader:
    """Per-token log-probabilities of replies after their contexts (see the module docstring)."""

    def __init__(self, model: str = "gemma3-270m", batch_size: int = 8) -> None:
        self.name = model
        self.loaded = reader_weights(model)
        self.batch_size = batch_size

    def _ids(self, context: str, reply: str) -> tuple[list[int], list[int]]:
        tok = self.loaded.tokenizer
        prefix = (context + "\n" if context else "") + "Customer:"
        ctx = tok(prefix, add_special_tokens=True)["input_ids"]
        bos = ctx[:1] if tok.bos_token_id is not None and ctx[:1] == [tok.bos_token_id] else []
        if len(ctx) > MAX_CONTEXT_TOKENS:
            ctx = bos + ctx[-(MAX_CONTEXT_TOKENS - len(bos)) :]
        rep = tok(" " + reply.strip(), add_special_tokens=False)["input_ids"][:MAX_REPLY_TOKENS]
        return ctx, rep or [tok.eos_token_id]

    def logprobs(self, contexts: Sequence[str], replies: Sequence[str]) -> list[np.ndarray]:
        """For each (context, reply): the log-probability of each reply token, in order."""
        from grouped_sim.compute import on_compute_thread

        out: list[np.ndarray] = []
        for start in range(0, len(replies), self.batch_size):
            rows = [self._ids(c, r) for c, r in zip(contexts[start : start + self.batch_size], replies[start : start + self.batch_size])]
            out += on_compute_thread(self._batch, rows)
        return out

    def _batch(self, rows: list[tuple[list[int], list[int]]]) -> list[np.ndarray]:
        import torch

        pad = self.loaded.tokenizer.pad_token_id or 0
        width = max(len(c) + len(r) for c, r in rows)
        keep = max(len(r) for _, r in rows) + 1
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for k, (c, r) in enumerate(rows):  # left padding: every reply ends at the last position
            seq = c + r
            ids[k, width - len(seq) :] = torch.tensor(seq)
            mask[k, width - len(seq) :] = 1
        with torch.inference_mode():
            logits = self.loaded.model(input_ids=ids, attention_mask=mask, logits_to_keep=keep).logits.float()
        logp = torch.log_softmax(logits, dim=-1)
        result = []
        for k, (_, r) in enumerate(rows):
            # Position j of the kept logits predicts token j + 1 of the kept window's end.
            predictors = logp[k, keep - 1 - len(r) : keep - 1]
            result.append(predictors.gather(-1, torch.tensor(r)[:, None]).squeeze(-1).numpy().astype(np.float64))
        return result
