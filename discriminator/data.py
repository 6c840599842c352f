"""Discriminator data D_rm: pairs (context c, real reply y+, model reply y-) (paper Appendix B.1).

The negative is written by an UNTUNED chat model asked, in its chat form with a system persona, to
play the customer on the same context. That is the point: an instruction-tuned model playing a
customer is polite, helpful and wordy (the helpfulness bias), and the discriminator learns to tell
that from real customers. The default negative model is the embedded SmolLM2.

Pairs are appended to `pairs.jsonl` as they are produced and keyed by D_sim record id, so a killed
run resumes where it stopped; `meta.json` records the negative model and the source.

Two prompt forms (`NegativeParams.form`). `chat` (the default above): the untuned model's helpful
persona. `transcript`: the simulator's own customer (e.g. `hf:smollm2+customer-sft`) continuing the
transcript prompt it was trained on and is run with (the D_sim record's `prompt`), `per_context`
replies per context from one batched call, each passed through the simulator's reply cleaning and
role guard (`clean`, injected by the caller: `grouped_sim.graphs.customer.said_reply`). Those are
the strong negatives: what our customer model really says on that context, so a scorer trained on
them measures the distance that is left, not the gap to an untuned model (issue 14). Candidate c
of the record at position j (of the records asked for, before skipping finished ones) is sampled
with seed `seed + j * per_context + c`, so a resumed run writes what an uninterrupted one would.

Hard negatives (`add_hard_negatives`, on by default in `grouped-sim discriminator data`) add, for
each real reply, pairs whose negative is a REAL reply from another call at the same SOP stage
(`grouped_sim.discriminator.negatives`): same style, wrong conversation. A model-written negative
alone lets the discriminator win on surface style; these make it read the context too. Their
`negative_model` is `HARD_NEGATIVES` and their id is the record id plus `:hardK`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from grouped_sim.errors import InputError
from grouped_sim.artifacts import Artifact
from grouped_sim.io import JsonlAppender, iter_cache, iter_jsonl, write_json_atomic
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
    batch_size: int = Field(8, ge=1, le=512, description="records per batched call (chat form; the transcript form batches each record's candidates)")
    seed: int = 0
    form: Literal["chat", "transcript"] = Field("chat", description="chat: the untuned model's persona; transcript: the simulator's customer prompt (module docstring)")
    per_context: int = Field(1, ge=1, le=64, description="model replies per context (transcript form: one batched call per context)")


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


GEN_SUFFIX = ":gen"


def _record_of(pair_id: str) -> str | None:
    """The record a model-written pair belongs to (None for a hard negative)."""
    if ":hard" in pair_id:
        return None
    return pair_id.split(GEN_SUFFIX, 1)[0]


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


def transcript_negatives(model: Any, record: dict[str, Any], params: NegativeParams, seed: int) -> list[str]:
    """`per_context` raw continuations of the record's transcript prompt in one batched call
    (candidate c seeded seed + c), cut at the end of the line as the simulator cuts them."""
    return model.generate_texts([record["prompt"]] * params.per_context, stop=["\n"], seed=seed, max_new_tokens=params.max_new_tokens)


def build_pairs(
    records: Sequence[dict[str, Any]],
    out_dir: Path | str,
    negatives: str = DEFAULT_NEGATIVES,
    params: NegativeParams | None = None,
    limit: int | None = None,
    source: str = "",
    model: Any | None = None,
    on_progress: Callable[[int], None] | None = None,
    clean: Callable[[str], str | None] | None = None,
    remote: Callable[[NegativeRecipe, Sequence[NegativeJob]], Iterator[list[str]]] | None = None,
) -> dict[str, int]:
    """Write pairs for `records` (D_sim rows) into `out_dir`, skipping records already there.

    `model` overrides building a chat model from the `negatives` spec (tests share a loaded one).
    `remote` maps the recipe over the jobs elsewhere, each job's replies in job order (`--executor
    ray`: grouped_sim/cli/executor.py chunk_map); this process still writes every pair.
    `clean` turns a raw model reply into the negative, or None to drop it (default: collapse
    whitespace). Returns counts: records wanted, already done, pairs written now, replies dropped.
    """
    params = params or NegativeParams()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _check_meta(out, negatives, source, params)
    wanted = [r for r in records if r.get("reference", "").strip()]
    if limit is not None:
        wanted = wanted[:limit]
    pairs_path = out / PAIRS_FILE
    done = _done_ids(pairs_path)
    bare = params.form == "chat" and params.per_context == 1  # one pair per record, id = the record's id
    done_records = done if bare else _finished_records(pairs_path, params.per_context)
    todo = [(j, r) for j, r in enumerate(wanted) if r["id"] not in done_records]
    if on_progress and len(wanted) > len(todo):
        on_progress(len(wanted) - len(todo))
    jobs = negative_jobs(todo, params)
    replies = _replies(jobs, NegativeRecipe(negatives=negatives, params=params), model, remote)
    with JsonlAppender(pairs_path) as appender:
        written, dropped = _write_jobs(jobs, replies, params, negatives, clean or _clean, _Skipping(appender, done), on_progress)
    return {"wanted": len(wanted), "already_done": len(wanted) - len(todo), "written": written, "dropped": dropped}


def _replies(jobs: list[NegativeJob], recipe: NegativeRecipe, model: Any | None, remote: Any | None) -> Iterator[list[str]]:
    """Each job's raw replies, in job order: from `remote` (Ray workers that load the model
    themselves), else from `model` or the recipe's model loaded here (only when there is work)."""
    if not jobs:
        return iter(())
    if remote is not None and model is None:
        return remote(recipe, jobs)
    mapper = recipe.mapper() if model is None else (lambda job: job_replies(model, job, recipe.params))
    return (mapper(job) for job in jobs)


def _finished_records(path: Path, per_context: int) -> set[str]:
    """Records whose model replies are all written. Records are written one after another, and a
    record's candidates in order, so only the last record in the file can have been cut short by a
    kill: unless its last candidate is there, it is redone (same seeds, same replies) and what it
    has is not written twice."""
    ids = [p.id for p in iter_cache(path, Pair) if _record_of(p.id)]
    if not ids:
        return set()
    records = {_record_of(i) for i in ids}
    last = ids[-1]
    complete = per_context == 1 or last.endswith(f"{GEN_SUFFIX}{per_context - 1}")
    return records if complete else records - {_record_of(last)}


class _Skipping:
    """An appender that leaves out pairs whose id is already in the file."""

    def __init__(self, appender: JsonlAppender, done: set[str]) -> None:
        self.appender, self.done = appender, done

    def write_pair(self, pair: Pair) -> bool:
        if pair.id in self.done:
            return False
        self.appender.write_line(pair.model_dump_json())
        return True


def read_meta(folder: Path) -> dict[str, Any]:
    """meta.json of a pairs folder (which model made the negatives, how): {} when there is none."""
    path = folder / META_FILE
    if not path.is_file():
        return {}
    artifact = Artifact("pairs metadata file", "grouped-sim discriminator data --out NEW_FOLDER (the pairs beside it cannot be told apart without it)")
    meta = artifact.read_json(path)
    artifact.require(isinstance(meta, dict), path, "expected a JSON object")
    return meta  # type: ignore[no-any-return]


def _check_meta(out: Path, negatives: str, source: str, params: NegativeParams) -> None:
    """One folder, one kind of negative: refuse to mix models or prompt forms, then record them."""
    meta_path = out / META_FILE
    if meta_path.is_file():
        old = read_meta(out)
        if old.get("negatives") != negatives:
            raise InputError(f"{out}: already holds negatives from {old.get('negatives')!r}, not {negatives!r}; use another --out")
        old_params = old.get("params") if isinstance(old.get("params"), dict) else {}
        if (old_params.get("form", "chat"), old_params.get("per_context", 1)) != (params.form, params.per_context):
            raise InputError(f"{out}: already holds {old_params.get('form', 'chat')}-form negatives, {old_params.get('per_context', 1)} per context; use another --out")
    write_json_atomic(meta_path, {"negatives": negatives, "source": source, "params": params.model_dump(mode="json")})


def _negative_model(negatives: str, params: NegativeParams) -> Any:
    from grouped_sim.config import GenerationParams
    from grouped_sim.models import build_chat_model
    from grouped_sim.models.base import LocalChatModel

    model = build_chat_model(
        negatives,
        GenerationParams(temperature=params.temperature, top_p=params.top_p, repetition_penalty=params.repetition_penalty, max_new_tokens=params.max_new_tokens),
    )
    if params.form == "transcript" and not isinstance(model, LocalChatModel):
        raise InputError(f"--negatives {negatives}: the transcript form continues a raw prompt, which only a local model (hf:, vllm:) takes")
    return model


def _pair(record: dict[str, Any], pair_id: str, negative: str, negatives: str) -> Pair:
    return Pair(
        id=pair_id,
        dialogue_id=record["dialogue_id"],
        turn_index=record["turn_index"],
        domain=record["domain"],
        context=record["context"],
        positive=record["reference"],
        negative=negative,
        negative_model=negatives,
    )


class NegativeJob(BaseModel):
    """One batched call's worth of negatives: its records and the seed of its first row (a chunk
    of the map, local or on Ray workers)."""

    records: list[dict[str, Any]]
    seed: int


def negative_jobs(todo: Sequence[tuple[int, dict[str, Any]]], params: NegativeParams) -> list[NegativeJob]:
    """Chat form: `batch_size` records (x `per_context`) per call, seeded by their offset in `todo`.
    Transcript form: each record's `per_context` candidates in one call, seeded by its position j
    (module docstring)."""
    k = params.per_context
    if params.form == "chat":
        return [NegativeJob(records=[r for _, r in todo[start : start + params.batch_size]], seed=params.seed + start * k) for start in range(0, len(todo), params.batch_size)]
    return [NegativeJob(records=[record], seed=params.seed + j * k) for j, record in todo]


def job_replies(model: Any, job: NegativeJob, params: NegativeParams) -> list[str]:
    """The raw model replies of a job: `per_context` per record, record by record."""
    if params.form == "chat":
        rows = [r for r in job.records for _ in range(params.per_context)]
        return generate_negatives(model, rows, params.model_copy(update={"seed": job.seed}))
    return transcript_negatives(model, job.records[0], params, job.seed)


class NegativeRecipe(BaseModel):
    """What writes the negatives: the model spec and how it samples. With `--executor ray` each
    worker loads the model from this (never pickled weights) and maps jobs to their replies."""

    negatives: str
    params: NegativeParams

    def mapper(self) -> Callable[[NegativeJob], list[str]]:
        model = _negative_model(self.negatives, self.params)
        return lambda job: job_replies(model, job, self.params)


def _write_jobs(jobs: Sequence[NegativeJob], replies: Iterable[list[str]], params: NegativeParams, negatives: str, clean: Callable[[str], str | None], appender: _Skipping, on_progress: Any) -> tuple[int, int]:
    """Append each job's pairs as its replies come (in job order). A record whose replies were all
    dropped writes nothing, so a resume tries it again (same seeds, same result)."""
    k, written, dropped = params.per_context, 0, 0
    bare = params.form == "chat" and k == 1  # one pair per record, id = the record's id
    for job, raws in zip(jobs, replies):
        for n, raw in enumerate(raws):
            record, text = job.records[n // k], clean(raw)
            if text is None:
                dropped += 1
                continue
            pair_id = record["id"] if bare else f"{record['id']}{GEN_SUFFIX}{n % k}"
            written += appender.write_pair(_pair(record, pair_id, text, negatives))
        if on_progress:
            on_progress(len(job.records))
    return written, dropped


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
