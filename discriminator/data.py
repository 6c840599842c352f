"""Discriminator data D_rm: pairs (context c, real reply y+, model reply y-) (paper Appendix B.1).

The negative is written by an UNTUNED chat model asked, in its chat form with a system persona, to
play the customer on the same context. That is the point: an instruction-tuned model playing a
customer is polite, helpful and wordy (the helpfulness bias), and the discriminator learns to tell
that from real customers. The default negative model is the embedded SmolLM2.

Pairs are appended to `pairs.jsonl` as they are produced and keyed by D_sim record id, so a killed
run resumes where it stopped; `meta.json` records the negative model and the source.

Hard negatives (`add_hard_negatives`, on by default in `grouped-sim discriminator data`) add, for
each real reply, pairs whose negative is a REAL reply from another call at the same SOP stage
(`grouped_sim.discriminator.negatives`): same style, wrong conversation. A model-written negative
alone lets the discriminator win on surface style; these make it read the context too. Their
`negative_model` is `HARD_NEGATIVES` and their id is the record id plus `:hardK`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from grouped_sim.errors import InputError
from grouped_sim.io import JsonlAppender, iter_cache, iter_jsonl, read_json, write_json_atomic
from grouped_sim.schemas import Dialogue

PAIRS_FILE = "pairs.jsonl"
META_FILE = "meta.json"
DEFAULT_NEGATIVES = "hf:smollm2"
HARD_NEGATIVES = "real:other-call-same-stage"


class Pair(BaseModel):
    """One row of D_rm."""

    model_config = ConfigDict(extra="forbid")

    id: str
    dialogue_id: str
    turn_index: int
    domain: str
    context: str
    positive: str
    negative: str
    negative_model: str


class NegativeParams(BaseModel):
    """How the negatives are sampled (the paper's inference settings for user simulators, Table 8)."""

    model_config = ConfigDict(extra="forbid")

    max_new_tokens: int = Field(32, ge=1, le=1024)
    temperature: float = Field(0.95, ge=0.0, le=2.0)
    top_p: float = Field(0.95, gt=0.0, le=1.0)
    repetition_penalty: float = Field(1.05, ge=1.0, le=2.0)
    batch_size: int = Field(8, ge=1, le=512)
    seed: int = 0


def records_from_dialogues(dialogues: Iterable[Dialogue]) -> list[dict[str, Any]]:
    """D_sim records (one per customer turn after a salesman move) of a corpus."""
    from grouped_sim.sop_db.datasets import d_sim_records

    return [r for d in dialogues for r in d_sim_records(d)]


def read_pairs(path: Path | str) -> list[dict[str, Any]]:
    """Read `pairs.jsonl` (or a folder holding it); a bad line names the file and line."""
    path = Path(path)
    if path.is_dir():
        path = path / PAIRS_FILE
    if not path.is_file():
        raise InputError(f"{path}: no discriminator pairs here; make them with `grouped-sim discriminator data`")
    pairs = []
    for line_no, raw in iter_jsonl(path):
        try:
            pairs.append(Pair.model_validate(raw).model_dump())
        except ValidationError as exc:
            raise InputError.from_validation(exc, f"{path}:{line_no}") from exc
    return pairs


def _done_ids(path: Path) -> set[str]:
    """Ids already written; a line torn by a killed run is redone (the appender cuts it first)."""
    return {pair.id for pair in iter_cache(path, Pair)}


def _chat_messages(record: dict[str, Any]) -> list[Any]:
    """The record's chat form without the final (real) reply: system persona + the call so far."""
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

    kinds = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
    return [kinds[m["role"]](content=m["content"]) for m in record["messages"][:-1]]


def _clean(text: str) -> str:
    return " ".join(str(text).split())


def generate_negatives(model: Any, records: Sequence[dict[str, Any]], params: NegativeParams) -> list[str]:
    """One model reply per record, in chat form; our own backends (hf:, vllm:) run them as one batch."""
    from grouped_sim.models.base import LocalChatModel

    if isinstance(model, LocalChatModel):
        texts = model.generate_chats([_chat_messages(r) for r in records], stop=None, seed=params.seed, max_new_tokens=params.max_new_tokens)
    else:
        texts = [str(model.invoke(_chat_messages(r)).content) for r in records]
    return [_clean(t) for t in texts]


def build_pairs(
    records: Sequence[dict[str, Any]],
    out_dir: Path | str,
    negatives: str = DEFAULT_NEGATIVES,
    params: NegativeParams | None = None,
    limit: int | None = None,
    source: str = "",
    model: Any | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> dict[str, int]:
    """Write pairs for `records` (D_sim rows) into `out_dir`, skipping ids already there.

    `model` overrides building a chat model from the `negatives` spec (tests share a loaded one).
    Returns counts: total wanted, already done, written now.
    """
    from grouped_sim.config import GenerationParams
    from grouped_sim.models import build_chat_model

    params = params or NegativeParams()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    meta_path = out / META_FILE
    meta = {"negatives": negatives, "source": source, "params": params.model_dump(mode="json")}
    if meta_path.is_file():
        old = read_json(meta_path, "pairs metadata file")
        if not isinstance(old, dict) or old.get("negatives") != negatives:
            raise InputError(f"{out}: already holds negatives from {old.get('negatives')!r}, not {negatives!r}; use another --out")
    write_json_atomic(meta_path, meta)
    wanted = [r for r in records if r.get("reference", "").strip()]
    if limit is not None:
        wanted = wanted[:limit]
    pairs_path = out / PAIRS_FILE
    done = _done_ids(pairs_path)
    todo = [r for r in wanted if r["id"] not in done]
    if on_progress and len(wanted) > len(todo):
        on_progress(len(wanted) - len(todo))
    if todo and model is None:
        model = build_chat_model(
            negatives,
            GenerationParams(temperature=params.temperature, top_p=params.top_p, repetition_penalty=params.repetition_penalty, max_new_tokens=params.max_new_tokens),
        )
    written = 0
    with JsonlAppender(pairs_path) as appender:
        for start in range(0, len(todo), params.batch_size):
            batch = todo[start : start + params.batch_size]
            replies = generate_negatives(model, batch, params.model_copy(update={"seed": params.seed + start}))
            for record, reply in zip(batch, replies):
                pair = Pair(
                    id=record["id"],
                    dialogue_id=record["dialogue_id"],
                    turn_index=record["turn_index"],
                    domain=record["domain"],
                    context=record["context"],
                    positive=record["reference"],
                    negative=reply,
                    negative_model=negatives,
                )
                appender.write_line(pair.model_dump_json())
                written += 1
            if on_progress:
                on_progress(len(batch))
    return {"wanted": len(wanted), "already_done": len(wanted) - len(todo), "written": written}


def add_hard_negatives(
    records: Sequence[dict[str, Any]],
    out_dir: Path | str,
    n: int = 1,
    seed: int = 0,
    limit: int | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> dict[str, int]:
    """Append, for each record (the first `limit`), `n` pairs whose negative is a real reply of another
    call at the same stage (any other call when the stage is missing or no other call has it).

    The pool is every record given, so pass the whole corpus's records; ids already in the folder
    are skipped. Returns counts: wanted, already done, written now.
    """
    from grouped_sim.discriminator.negatives import Reply, other_call_replies

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pool = [r for r in records if r.get("reference", "").strip()]
    drawn = other_call_replies([Reply(r["dialogue_id"], r["turn_index"], r.get("sop_stage"), r["reference"]) for r in pool], n, seed) if n > 0 else [[] for _ in pool]
    wanted = list(zip(pool, drawn))[:limit] if limit is not None else list(zip(pool, drawn))
    pairs_path = out / PAIRS_FILE
    done = _done_ids(pairs_path)
    todo = [
        Pair(
            id=f"{record['id']}:hard{k}",
            dialogue_id=record["dialogue_id"],
            turn_index=record["turn_index"],
            domain=record["domain"],
            context=record["context"],
            positive=record["reference"],
            negative=other.text,
            negative_model=HARD_NEGATIVES,
        )
        for record, others in wanted
        for k, other in enumerate(others)
    ]
    total = len(todo)
    todo = [p for p in todo if p.id not in done]
    with JsonlAppender(pairs_path) as appender:
        for pair in todo:
            appender.write_line(pair.model_dump_json())
    meta_path = out / META_FILE
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
    write_json_atomic(meta_path, {**meta, "hard_negatives": {"per_reply": n, "seed": seed, "source": HARD_NEGATIVES}})
    if on_progress:
        on_progress(len(wanted))
    return {"wanted": total, "already_done": total - len(todo), "written": len(todo)}
