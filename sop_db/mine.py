"""The dual-stream mining pipeline (paper §3.1, Figure 2): raw transcripts → profiles, stage
annotations, D_gen, D_sim and the behaviour-chain store M_SOP.

Per dialogue: (1) the customer's implicit profile is extracted with a chat model as a validated
`Profile`, retried on invalid output and recorded as failed with its reason after the last try:
never invented (on our own backends the first attempts of a chunk of dialogues run as one batch;
retries, and every call to an API model, go one dialogue at a time); (2) every turn gets an SOP
stage from an LLM annotator or, with none, from the kNN tagger over already labelled turns. Each
dialogue's result is appended to `mined.jsonl` the moment it is done, keyed by a content hash of
the input line and the models, so a rerun skips finished work and a killed run resumes. At the
end the annotated corpus, D_gen, D_sim and the store are (re)built from all results: rebuilding is
idempotent (atomic files, upserts by id).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from grouped_sim.corpus import CorpusError, dialogue_from, write_corpus
from grouped_sim.errors import InputError, validation_detail
from grouped_sim.io import LineError, iter_cache, iter_jsonl, write_json_atomic
from grouped_sim.jsontext import parse_json_object
from grouped_sim.models.base import LocalChatModel
from grouped_sim.transcript import transcript_text
from grouped_sim.schemas import Dialogue, Profile
from grouped_sim.prompts import prompt, prompt_version
from grouped_sim.profiles.derive import derive_profile
from grouped_sim.profiles.presets import load_presets
from grouped_sim.sop_db.tagger import KnnStageTagger, LLMStageAnnotator, TurnLabel, apply_labels
from grouped_sim.sop_db.taxonomy import load_taxonomy

MINED = "mined.jsonl"
ANNOTATED = "annotated_corpus.jsonl"
SUMMARY = "mine.json"
PIPELINE_VERSION = "mine-1"


# ---- input --------------------------------------------------------------------------------


class InputLine(BaseModel):
    line: int
    dialogue: Dialogue
    digest: str
    seed: int = Field(0, description="sampling seed of the dialogue's model calls: its index among the valid lines")


def read_lenient(path: Path | str) -> tuple[list[InputLine], list[LineError]]:
    """Every valid dialogue and every bad line: one bad line never hides the rest of the corpus.

    A stage label that is not a node of the taxonomy makes its line bad too: it would be carried
    into the annotated corpus, D_gen, D_sim and the store.
    """
    from grouped_sim.sop_db.store import check_stages

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: corpus file not found")
    good: list[InputLine] = []
    bad: list[LineError] = []
    seen: dict[str, int] = {}
    for line_no, raw in iter_jsonl(path, bad=bad, error=CorpusError):
        try:
            dialogue = dialogue_from(raw, path, line_no)
            check_stages([(line_no, dialogue)], path)
        except CorpusError as exc:
            bad.append(exc)
            continue
        if dialogue.id in seen:
            bad.append(CorpusError(path, line_no, "id", f"duplicate id {dialogue.id!r} (first on line {seen[dialogue.id]})"))
            continue
        seen[dialogue.id] = line_no
        digest = hashlib.sha256(json.dumps(raw, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]
        # Consecutive dialogues get consecutive seeds: a batch of them is one call (row i seeded
        # seed + i) that gives each the answer a call of its own would.
        good.append(InputLine(line=line_no, dialogue=dialogue, digest=digest, seed=len(good)))
    return good, bad


# ---- profile extraction -------------------------------------------------------------------


class ExtractionResult(BaseModel):
    """The outcome of extracting one profile: a validated profile, or the reason there is none."""

    status: str  # extractor: "ok" | "failed"; mining: "given" | "llm" | "derived"
    profile: Profile | None = None
    attempts: int = 0
    reason: str | None = None
    errors: list[str] = Field(default_factory=list, description="why each failed attempt was rejected")


def call_text(dialogue: Dialogue, max_turns: int = 16) -> str:
    return transcript_text(dialogue.turns[:max_turns])


def normalise_archetype(value: Any, allowed: dict[str, str]) -> str | None:
    if value in (None, "", "null"):
        return None
    key = re.sub(r"[\s_]+", "-", str(value).strip().lower())
    if key in allowed:
        return key
    raise ValueError(f"archetype {value!r} is not one of {', '.join(allowed)}")


def validate_extracted(raw: dict[str, Any], dialogue: Dialogue, allowed: dict[str, str]) -> Profile:
    """Strict: a Profile that validates, with a known archetype and a summary that says something."""
    data = dict(raw)
    data["archetype"] = normalise_archetype(data.get("archetype"), allowed)
    data["domain"] = data.get("domain") or dialogue.domain
    for key in ("pain_points", "decision_factors"):
        if isinstance(data.get(key), str):
            data[key] = [p.strip() for p in re.split(r"[;,]", data[key]) if p.strip()]
        elif data.get(key) is None:
            data[key] = []
    if isinstance(data.get("age"), str):
        digits = re.search(r"\d{2}", data["age"])
        data["age"] = int(digits.group(0)) if digits else None
    if isinstance(data.get("buy_propensity"), str):
        try:
            data["buy_propensity"] = float(data["buy_propensity"])
        except ValueError as exc:
            raise ValueError(f"buy_propensity {data['buy_propensity']!r} is not a number") from exc
    summary = str(data.get("summary") or "").strip()
    if len(summary.split()) < 4:
        raise ValueError("summary missing or shorter than four words")
    try:
        return Profile.model_validate(data)
    except ValidationError as exc:
        raise ValueError(validation_detail(exc, whole="<profile>")) from exc


def archetype_briefs() -> dict[str, str]:
    """Archetype id -> its one-line description, from the presets (the one place archetypes are defined)."""
    return {a.id: a.brief for a in load_presets().archetypes.values()}


def archetype_lines(archetypes: dict[str, str]) -> str:
    return "\n".join(f"- {k}: {v}" for k, v in archetypes.items())


def copies_example(summary: str) -> bool:
    """A small model often echoes the prompt's worked example; that is not this customer's profile."""
    from difflib import SequenceMatcher

    example = json.loads(prompt("mining")["extraction"]["example_profile"])["summary"]
    return SequenceMatcher(None, summary.lower().strip(), example.lower().strip()).ratio() >= 0.8


RETRY_SEED_STRIDE = 1_000_003  # attempt a of the dialogue seeded s uses s + a * stride: never a neighbour's first seed


def consecutive_runs(seeds: Sequence[int]) -> list[range]:
    """Index ranges of `seeds` that count up by one: each can be one batched call (row i seeded seed + i)."""
    runs, start = [], 0
    for i in range(1, len(seeds) + 1):
        if i == len(seeds) or seeds[i] != seeds[i - 1] + 1:
            runs.append(range(start, i))
            start = i
    return runs


class ProfileExtractor:
    """Infers a customer's profile from a call with any chat model; retried, never invented."""

    def __init__(self, model: Any, retries: int = 2, max_new_tokens: int = 220) -> None:
        self.model = model
        self.retries = retries
        self.max_new_tokens = max_new_tokens
        self.archetypes: dict[str, str] = archetype_briefs()

    def messages(self, dialogue: Dialogue, error: str | None = None) -> list[Any]:
        from langchain_core.messages import HumanMessage, SystemMessage

        cfg = prompt("mining")["extraction"]
        user = cfg["user"].format(
            archetypes=archetype_lines(self.archetypes),
            domain=dialogue.domain,
            example_call=cfg["example_call"].strip(),
            example_profile=cfg["example_profile"].strip(),
            call=call_text(dialogue),
        )
        if error:
            user += "\n" + cfg["retry_note"].format(error=error)
        return [SystemMessage(content=cfg["system"]), HumanMessage(content=user)]

    def first_answers(self, jobs: Sequence[tuple[Dialogue, int]]) -> list[str | None]:
        """The first attempt's answer for each (dialogue, seed), batched on our own backends.

        An answer is mostly decoding (a JSON profile of up to `max_new_tokens`), which a batch
        shares across its rows. Jobs whose seeds count up by one share a `generate_chats` call
        (row i seeded seed + i), so each answer is the one a call of its own with its seed gives.
        Other chat models (APIs) get None for every job: `extract` asks them one call at a time.
        """
        if not isinstance(self.model, LocalChatModel) or not jobs:
            return [None] * len(jobs)
        answers: list[str | None] = []
        for run in consecutive_runs([seed for _, seed in jobs]):
            conversations = [self.messages(jobs[i][0]) for i in run]
            answers += self.model.generate_chats(conversations, seed=jobs[run.start][1], max_new_tokens=self.max_new_tokens)
        return answers

    def ask(self, dialogue: Dialogue, seed: int, error: str | None = None) -> str:
        """One answer in a call of its own (a retry names the last attempt's error)."""
        # Only our own models take a per-call token budget; API clients would send it on as an unknown field.
        extra = {"max_new_tokens": self.max_new_tokens} if isinstance(self.model, LocalChatModel) else {}
        return str(self.model.invoke(self.messages(dialogue, error), seed=seed, **extra).content)

    def check(self, answer: str, dialogue: Dialogue) -> Profile:
        """The answer's profile, or a ValueError saying why it is not one."""
        profile = validate_extracted(parse_json_object(answer), dialogue, self.archetypes)
        if copies_example(profile.summary):
            raise ValueError("the answer copies the worked example instead of describing this customer")
        return profile

    def extract(self, dialogue: Dialogue, seed: int = 0, first: str | None = None) -> ExtractionResult:
        """Up to 1 + retries attempts; `first` is the first attempt's answer when it was batched."""
        errors: list[str] = []
        attempts = self.retries + 1
        for attempt in range(attempts):
            try:
                answer = first if attempt == 0 and first is not None else self.ask(dialogue, seed + attempt * RETRY_SEED_STRIDE, errors[-1] if errors else None)
                return ExtractionResult(status="ok", profile=self.check(answer, dialogue), attempts=attempt + 1, errors=errors)
            except ValueError as exc:
                errors.append(str(exc))
        return ExtractionResult(status="failed", attempts=attempts, reason=f"no valid profile after {attempts} attempts; last: {errors[-1]}", errors=errors)


# ---- the pipeline -------------------------------------------------------------------------


class MineSettings(BaseModel):
    """What shapes the results of a mining run (hashed into every per-dialogue key)."""

    extractor: str | None = Field(None, description="chat-model spec of the profile extractor; None: profiles derived from the customer's own words")
    annotator: str | None = Field(None, description="chat-model spec of the stage annotator; None: the kNN tagger")
    extract: str = Field("missing", description="'missing': only dialogues without a profile; 'all': re-extract every profile")
    relabel: bool = Field(False, description="replace existing stage labels too")
    retries: int = Field(2, ge=0, le=10)
    k: int = Field(3, ge=1, le=50)
    taxonomy: str | None = Field(None, description="the stage taxonomy YAML (absolute path); None: the built-in one")

    def key(self) -> str:
        # The archetype list shown to the extractor comes from the presets: part of the prompt too.
        shown = archetype_lines(archetype_briefs())
        blob = json.dumps({**self.model_dump(), "version": PIPELINE_VERSION, "prompts": prompt_version("mining"), "archetypes": shown}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


class MinedRecord(BaseModel):
    """One line of mined.jsonl: what mining made of one input dialogue."""

    key: str
    id: str
    line: int
    dialogue: Dialogue
    profile_status: str
    profile_reason: str | None = None
    profile_attempts: int = 0
    stage_sources: dict[str, int] = Field(default_factory=dict)


def record_key(item: InputLine, settings: MineSettings) -> str:
    return f"{item.digest}:{settings.key()}"


def load_done(path: Path) -> dict[str, MinedRecord]:
    """Finished records of earlier runs; a torn last line (a killed run) is ignored and redone."""
    return {record.key: record for record in iter_cache(path, MinedRecord)}


class Miner:
    """Holds the models and the tagger; `mine_one` turns one input dialogue into a MinedRecord."""

    def __init__(self, settings: MineSettings, tagger: KnnStageTagger | None, extractor: ProfileExtractor | None, annotator: LLMStageAnnotator | None) -> None:
        self.settings = settings
        self.tagger = tagger
        self.extractor = extractor
        self.annotator = annotator
        self.presets = load_presets()

    def keeps_profile(self, dialogue: Dialogue) -> bool:
        return dialogue.profile is not None and self.settings.extract != "all"

    def profile_of(self, dialogue: Dialogue, seed: int, first: str | None = None) -> ExtractionResult:
        """The given profile; else the extractor's when it passes its checks; else one derived from
        the customer's own words (never from the outcome): every dialogue gets a profile."""
        if self.keeps_profile(dialogue):
            return ExtractionResult(status="given", profile=dialogue.profile)
        source = extraction_source(dialogue)
        failed = None
        if self.extractor is not None:
            result = self.extractor.extract(source, seed=seed, first=first)
            if result.status == "ok":
                return result.model_copy(update={"status": "llm"})
            failed = result
        derived = derive_profile(source, self.presets)
        reason = f"derived from the transcript after the extractor failed: {failed.reason}" if failed else "derived from the transcript (no --extractor)"
        return ExtractionResult(status="derived", profile=derived, attempts=failed.attempts if failed else 0, reason=reason, errors=failed.errors if failed else [])

    def needs_labels(self, dialogue: Dialogue) -> bool:
        return self.settings.relabel or any(t.sop_stage is None for t in dialogue.turns)

    def mine_chunk(self, items: Sequence[InputLine]) -> Iterator[MinedRecord]:
        """Mine `items`, yielding each record the moment it is done (the caller writes it then).

        The extractor's first attempts for the whole chunk come first, as one batch on our own
        backends; then each dialogue in turn: its retries, its stage labels, its record.
        """
        asked = [item for item in items if self.extractor is not None and not self.keeps_profile(item.dialogue)]
        answers = self.extractor.first_answers([(extraction_source(i.dialogue), i.seed) for i in asked]) if self.extractor else []
        firsts = {item.digest: answer for item, answer in zip(asked, answers)}
        for item in items:
            yield self.mine_one(item, first=firsts.get(item.digest))

    def mine_one(self, item: InputLine, first: str | None = None) -> MinedRecord:
        """One dialogue's record; `first` is its extractor's first answer when that was batched."""
        dialogue = item.dialogue
        meta = dict(dialogue.meta)
        # Stream I: the profile.
        result = self.profile_of(dialogue, item.seed, first)
        meta["profile_extraction"] = {"status": result.status, "attempts": result.attempts, "reason": result.reason, "errors": result.errors}
        profile = result.profile
        # Stream II: stage labels.
        labels: list[TurnLabel | None] = [None] * len(dialogue.turns)
        if self.needs_labels(dialogue):
            if self.annotator is not None:
                labels = list(self.annotator.label_dialogue(dialogue))
            elif self.tagger is not None:
                labels = list(self.tagger.label_dialogue(dialogue))
        annotated = apply_labels(dialogue.model_copy(update={"profile": profile, "meta": meta}), labels, relabel=self.settings.relabel)
        sources = Counter(str(t.meta.get("stage_source", "given" if t.sop_stage else "none")) for t in annotated.turns)
        return MinedRecord(
            key=record_key(item, self.settings),
            id=dialogue.id,
            line=item.line,
            dialogue=annotated,
            profile_status=result.status,
            profile_reason=result.reason,
            profile_attempts=result.attempts,
            stage_sources=dict(sources),
        )


def extraction_source(dialogue: Dialogue) -> Dialogue:
    """What the extractor reads: the call without its profile or outcome (a profile must not carry the decision)."""
    return dialogue.model_copy(update={"profile": None, "outcome": "unknown"})


def build_tagger(items: list[InputLine], settings: MineSettings, labelled: list[Dialogue] | None = None) -> KnnStageTagger:
    """kNN tagger over the labelled turns of the input itself and of an optional labelled corpus."""
    pool = tagger_pool(items, labelled)
    return KnnStageTagger.from_dialogues(pool, k=settings.k, taxonomy=load_taxonomy(settings.taxonomy))


def tagger_pool(items: list[InputLine], labelled: list[Dialogue] | None = None) -> list[Dialogue]:
    """The dialogues the kNN tagger indexes: the labelled ones of the input, and an optional labelled corpus."""
    return [i.dialogue for i in items if any(t.sop_stage for t in i.dialogue.turns)] + list(labelled or [])


def needs_tagger(pending: Sequence[InputLine], settings: MineSettings) -> bool:
    """The tagger labels unlabelled turns (or every turn with --relabel), and backs the LLM annotator."""
    return settings.annotator is not None or settings.relabel or any(t.sop_stage is None for i in pending for t in i.dialogue.turns)


class MineRecipe(BaseModel):
    """What a Miner is built from: the settings (model specs among them) and the tagger's labelled
    dialogues. A local run builds it in this process; with `--executor ray` each worker builds its
    own from this recipe (the models load there, never pickled), so both mine alike."""

    settings: MineSettings
    pool: list[Dialogue] | None = Field(None, description="labelled dialogues the kNN tagger indexes; None: no tagger")

    def miner(self) -> Miner:
        from grouped_sim.config import GenerationParams
        from grouped_sim.models import build_chat_model

        s = self.settings
        tagger = KnnStageTagger.from_dialogues(self.pool, k=s.k, taxonomy=load_taxonomy(s.taxonomy)) if self.pool is not None else None
        gen = GenerationParams(temperature=0.7, top_p=0.9, max_new_tokens=220)
        extractor = ProfileExtractor(build_chat_model(s.extractor, gen), retries=s.retries) if s.extractor else None
        annotator = None
        if s.annotator:
            labeller = build_chat_model(s.annotator, gen.model_copy(update={"temperature": 0.2, "max_new_tokens": 12}))
            annotator = LLMStageAnnotator(labeller, retries=s.retries, fallback=tagger, taxonomy=load_taxonomy(s.taxonomy))
        return Miner(s, tagger, extractor, annotator)

    def mapper(self) -> Callable[[Sequence[InputLine]], list[MinedRecord]]:
        """A chunk of input dialogues -> their records, in order (the Ray workers' function)."""
        miner = self.miner()
        return lambda items: list(miner.mine_chunk(items))


def iter_pending(items: list[InputLine], done: dict[str, MinedRecord], settings: MineSettings) -> Iterator[InputLine]:
    for item in items:
        if record_key(item, settings) not in done:
            yield item


def finish(out: Path, records: list[MinedRecord], bad: list[LineError], settings: MineSettings, db: str | None, on_store_progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Write the annotated corpus, D_gen, D_sim and the summary; upsert the store. Idempotent."""
    from grouped_sim.sop_db.datasets import write_datasets

    dialogues = [r.dialogue for r in sorted(records, key=lambda r: r.line)]
    stored = None
    if db:
        from grouped_sim.sop_db.store import build_store

        # Built beside its folder and moved into place when complete (never left empty or half-built).
        stored = {"location": db, **build_store(db, dialogues, on_progress=on_store_progress, taxonomy=load_taxonomy(settings.taxonomy))}
    write_corpus(out / ANNOTATED, dialogues)
    counts = write_datasets(dialogues, out)
    statuses = Counter(r.profile_status for r in records)
    sources: Counter[str] = Counter()
    for r in records:
        sources.update(r.stage_sources)
    summary = {
        "settings": settings.model_dump(),
        "dialogues": len(records),
        "profiles": dict(statuses),
        "profile_failures": [{"id": r.id, "line": r.line, "reason": r.profile_reason} for r in records if r.profile_status in ("failed", "derived") and r.profile_attempts],
        "stage_sources": dict(sources),
        "datasets": counts,
        "store": stored,
        "bad_lines": [str(b) for b in bad],
    }
    write_json_atomic(out / SUMMARY, summary)
    return summary
