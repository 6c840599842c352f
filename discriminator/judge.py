"""The coherence judge: P(a customer's reply makes sense at this point of this call).

Why this instrument. The MiniLM heads rated the 135M customer's nonsense above real replies, and
the embedded 1.5B asked "is this a sensible reply?" (or "which of these two is the real one?")
answers the same whatever the reply (benchmarks/judge_validation.py). What the 1.5B does know is
how likely each next word is. So the judge reads the reply token by token after the call so far
(`ContinuationReader`) and after a few contexts of OTHER calls of the same corpus (the anchors):

- `fit_gain`  how much likelier the reply's tokens are after its own call than after the anchors,
              token by token, counting only the gains (log-probability, summed): a reply that
              answers what was said draws words from it; one from another call gains nothing;
- `fit_share` the share of its tokens at least e times likelier after its own call;
- `deficit`   how far the reply's per-token log-probability falls below the median of real replies
              of the corpus (0 above it): garbled words and shuffled sentences fall far below.

A model rates its own text as very likely, and the reader is the same 1.5B that plays the customer
by default. So the judge never rewards likelihood above the real median: `deficit` is one-sided, and the fit
features compare two likelihoods of the same words, in which the model's taste for its own
phrasing cancels. The validation table (docs/judge.md) shows what is left of that bias.

A logistic head over these features is trained to tell real replies from replies made bad without
any model: the words shuffled, or a real reply of another call. The 135M customer's replies and
the 1.5B customer's replies are never in training; they are what validation tests it on. A judge
folder holds `head.npz` (shared format with the MiniLM heads, `grouped_sim.discriminator.heads`)
and `judge.json` (reader, anchors, the real floor, features, split and held-out figures).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import random
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from grouped_sim.artifacts import Artifact
from grouped_sim.discriminator.heads import HEAD_FILE, Head
from grouped_sim.discriminator.negatives import Reply, other_call_replies
from grouped_sim.errors import InputError
from grouped_sim.metrics.coherence import reply_indices
from grouped_sim.schemas import Dialogue
from grouped_sim.transcript import transcript_text

CARD_FILE = "judge.json"
SHIPPED_JUDGE = "coherence-llm-judge"
FORMAT = "grouped-sim coherence judge"
FORMAT_VERSION = 1
FEATURES: tuple[str, ...] = ("fit_gain", "fit_share", "deficit")
HEADER = "Transcript of a conversation between a salesperson and a customer.\n\n"
FLOOR_QUANTILE = 0.5
GAIN_SHARE_AT = 1.0  # a token counts as "helped by its call" when its own context makes it e times likelier

Reader = Callable[[Sequence[str], Sequence[str]], list[np.ndarray]]
"""(prompts, continuations) -> per-token log-probabilities of each continuation (ContinuationReader.logprobs)."""


class JudgeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reader: str = Field("default", description="the llamacpp model that reads replies (a name from data/models.yaml or a GGUF path)")
    context_turns: int = Field(24, ge=1, le=256, description="turns of the call so far the reader sees (the whole of most calls: a context that only grows keeps its prefix cached)")
    anchors: int = Field(3, ge=1, le=16, description="contexts of other calls each reply is also read after")
    max_reply_tokens: int = Field(32, ge=1, le=256)
    seed: int = 0


def prompt_of(context: str, turns: int) -> str:
    """What the reader sees before a reply: a header, the last `turns` lines of the call, "Customer:"."""
    lines = [line for line in context.split("\n") if line.strip()][-turns:]
    return HEADER + "\n".join(lines) + ("\n" if lines else "") + "Customer:"


def continuation_of(reply: str) -> str:
    """The reply as the next line: a leading space and the end of the line (a reply that runs on
    where a person would stop pays for it)."""
    return " " + " ".join(reply.split()) + "\n"


@dataclass
class Readings:
    """Per-token log-probabilities of replies: after their own context, and after each anchor."""

    own: list[np.ndarray]
    anchors: list[list[np.ndarray]]


def read_replies(reader: Reader, contexts: Sequence[str], replies: Sequence[str], anchors: Sequence[str], config: JudgeConfig) -> Readings:
    """Read every reply after its context and after every anchor (one batch for the reader)."""
    k = len(anchors)
    prompts = [prompt_of(c, config.context_turns) for c in contexts]
    prompts += [prompt_of(a, config.context_turns) for _ in replies for a in anchors]
    conts = [continuation_of(r) for r in replies]
    conts += [continuation_of(r) for r in replies for _ in anchors]
    got = reader(prompts, conts)
    n = len(replies)
    return Readings(own=got[:n], anchors=[got[n + i * k : n + (i + 1) * k] for i in range(n)])


def features(readings: Readings, floor: float) -> np.ndarray:
    """The FEATURES of each reply (see the module docstring). Token t of a reply is the same token
    after its own context and after an anchor, so the two readings compare token by token."""
    rows = []
    for own, anchors in zip(readings.own, readings.anchors):
        gain = own - np.mean(np.stack(anchors), axis=0) if anchors and own.size else np.zeros(max(own.size, 1))
        mean = float(own.mean()) if own.size else floor
        rows.append([float(np.clip(gain, 0, None).sum()), float((gain > GAIN_SHARE_AT).mean()), min(0.0, mean - floor)])
    return np.asarray(rows, dtype=np.float64).reshape(-1, len(FEATURES))


def reply_contexts(dialogue: Dialogue) -> list[tuple[int, str, str]]:
    """(turn index, the call before it, the reply) for each customer reply that follows a salesman move."""
    turns = dialogue.turns
    return [(i, transcript_text(turns[:i]), turns[i].text) for i in reply_indices(dialogue) if turns[i].text.strip()]


def choose_anchors(dialogues: Sequence[Dialogue], n: int, seed: int = 0) -> list[str]:
    """`n` contexts from `n` different calls, each the call before a customer reply midway through
    it: what the judge reads every reply after, to see how much its own call adds."""
    rng = random.Random(f"anchors:{seed}")
    calls = [d for d in sorted(dialogues, key=lambda d: d.id) if reply_contexts(d)]
    anchors = []
    for d in rng.sample(calls, min(n, len(calls))):
        rows = reply_contexts(d)
        anchors.append(rows[len(rows) // 2][1])
    return anchors


def shuffled_words(text: str, rng: random.Random) -> str | None:
    """The words of `text` in another order, or None when it has fewer than three words."""
    words = text.split()
    if len(words) < 3:
        return None
    for _ in range(10):
        order = words[:]
        rng.shuffle(order)
        if order != words:
            return " ".join(order)
    return None


class JudgeCard(BaseModel):
    """judge.json: everything needed to read and trust a judge folder."""

    model_config = ConfigDict(extra="forbid")

    format: str = FORMAT
    format_version: int = FORMAT_VERSION
    features: list[str] = Field(default_factory=lambda: list(FEATURES))
    config: JudgeConfig
    anchors: list[str] = Field(description="contexts of other calls each reply is also read after")
    floor: float = Field(description="the median per-token log-probability of the training real replies (FLOOR_QUANTILE)")
    source: str = ""
    split: dict[str, list[str]] = Field(default_factory=dict)
    trained_on: dict[str, int] = Field(default_factory=dict)
    heldout: dict[str, Any] = Field(default_factory=dict)
    warnings: list[str] = Field(default_factory=list)


def judge_artifact(folder: Path, rebuild: str | None = None) -> Artifact:
    from grouped_sim.data import shipped_scorer_path

    if rebuild is None:
        shipped = folder.resolve().is_relative_to(shipped_scorer_path().parent.resolve())
        rebuild = "reinstall grouped-sim: this judge ships inside the package" if shipped else f"grouped-sim judge train --corpus CALLS.jsonl --out {folder}"
    return Artifact("coherence judge", rebuild)


class CoherenceJudge:
    """A judge folder, loaded: `score(contexts, replies)` = P(the reply makes sense there).

    `anchored(dialogues)` gives the same judge reading replies after contexts of those calls
    instead of its own anchors: a judge trained on one corpus, used on calls of another domain,
    must measure how much a reply's own call adds against calls of that domain.
    """

    def __init__(self, folder: Path | str, reader: Reader | None = None, rebuild: str | None = None) -> None:
        """Load and check the folder; `rebuild` is how its owner makes it again (a sim folder's
        judge comes back with `fit`), for the error a damaged folder gives."""
        self.folder = Path(folder)
        artifact = judge_artifact(self.folder, rebuild)
        path = self.folder / CARD_FILE
        if not path.is_file():
            raise InputError(f"{self.folder}: not a coherence judge folder (no {CARD_FILE}); train one with `grouped-sim judge train`")
        raw = artifact.read_json(path)
        with artifact.reading(path):
            self.card = JudgeCard.model_validate(raw)
        artifact.require(self.card.format == FORMAT and self.card.format_version == FORMAT_VERSION, path, f"not a judge card of format {FORMAT!r} version {FORMAT_VERSION}")
        artifact.require(self.card.features == list(FEATURES), path, "the judge's features differ from this grouped-sim's")
        self.head = Head.load(self.folder, artifact)
        artifact.require(self.head.coef.shape[0] == len(FEATURES), self.folder / HEAD_FILE, f"head has {self.head.coef.shape[0]} weights for {len(FEATURES)} features")
        self.anchors = list(self.card.anchors)
        self.floor = self.card.floor
        self._reader = reader
        self._cache: ScoreCache | None = None
        self.on_reading: Callable[[int, int], None] | None = None
        """Told (replies to read, replies asked) before the reader starts: a report says what it waits for."""

    @property
    def name(self) -> str:
        return f"coherence judge ({self.card.config.reader} reading replies; {self.folder.name})"

    def reader(self) -> Reader:
        if self._reader is None:
            from grouped_sim.models.llamacpp import ContinuationReader

            self._reader = ContinuationReader(self.card.config.reader, max_tokens=self.card.config.max_reply_tokens).logprobs
        return self._reader

    def anchored(self, dialogues: Sequence[Dialogue]) -> CoherenceJudge:
        """This judge with anchors (and the real floor) from these calls, where they have replies."""
        anchors = choose_anchors(dialogues, self.card.config.anchors, self.card.config.seed)
        if len(anchors) < self.card.config.anchors:
            return self
        other = copy.copy(self)
        other.anchors = anchors
        other._cache = None  # another digest, another cache
        return other

    def features(self, contexts: Sequence[str], replies: Sequence[str]) -> np.ndarray:
        return features(read_replies(self.reader(), contexts, replies, self.anchors, self.card.config), self.floor)

    def digest(self) -> str:
        """Names what this judge computes: its head, floor, reader, config and anchors."""
        blob = hashlib.sha256()
        for array in (self.head.mean, self.head.scale, self.head.coef, np.array([self.head.intercept, self.floor])):
            blob.update(np.asarray(array, dtype=np.float64).tobytes())
        blob.update(json.dumps([self.card.config.model_dump(mode="json"), self.anchors]).encode())
        return blob.hexdigest()[:16]

    def score(self, contexts: Sequence[str], replies: Sequence[str]) -> list[float]:
        """P per (context, reply). Scores are kept on disk by what was read (judge digest, prompt,
        reply), so a corpus is read once per machine and a report rerun reads only new replies."""
        if not replies:
            return []
        if self._cache is None:  # read from disk once per judge, not once per call (probe scores row by row)
            self._cache = ScoreCache(self.digest())
        cache = self._cache
        keys = [cache.key(prompt_of(c, self.card.config.context_turns), r) for c, r in zip(contexts, replies)]
        todo = [k for k, key in enumerate(keys) if key not in cache]
        if todo and self.on_reading is not None:
            self.on_reading(len(todo), len(keys))
        if todo:
            got = self.head.predict(self.features([contexts[k] for k in todo], [replies[k] for k in todo]))
            cache.add({keys[k]: float(p) for k, p in zip(todo, got)})
        return [cache[key] for key in keys]

    def __call__(self, contexts: Sequence[str], replies: Sequence[str]) -> list[float]:
        return self.score(contexts, replies)


class ScoreCache:
    """Judge scores on disk ($GROUPED_SIM_CACHE/judge/<digest>.jsonl, else the package's seed file
    for the shipped judge): appended as they are computed, read whole at start."""

    def __init__(self, digest: str) -> None:
        from grouped_sim.io import cache_root

        self.path = cache_root() / "judge" / f"{digest}.jsonl"
        self.scores: dict[str, float] = {}
        from grouped_sim.data import shipped_scorer_path

        for path in (shipped_scorer_path(SHIPPED_JUDGE) / f"scores-{digest}.jsonl", self.path):
            if path.is_file():
                for line in path.read_text(encoding="utf-8").splitlines():
                    try:
                        row = json.loads(line)
                        self.scores[str(row["k"])] = float(row["p"])
                    except (ValueError, KeyError, TypeError):
                        continue  # a torn last line of a killed run: that reply is read again

    @staticmethod
    def key(prompt: str, reply: str) -> str:
        return hashlib.sha256(json.dumps([prompt, reply]).encode()).hexdigest()[:24]

    def __contains__(self, key: str) -> bool:
        return key in self.scores

    def __getitem__(self, key: str) -> float:
        return self.scores[key]

    def add(self, scores: dict[str, float]) -> None:
        self.scores.update(scores)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write("".join(json.dumps({"k": k, "p": round(p, 6)}) + "\n" for k, p in scores.items()))
        except OSError:
            pass  # a read-only cache costs time on the next run, never a result


def trained_on(instrument: Any) -> frozenset[str]:
    """Ids of the calls a coherence judge was trained on, never graded as the real side (none for
    a MiniLM scorer, whose card says nothing of the kind)."""
    return frozenset(instrument.card.split.get("train", [])) if isinstance(instrument, CoherenceJudge) else frozenset()


def shipped_judge_path() -> Path:
    """The judge that ships inside the package (trained on the sample corpus; docs/judge.md)."""
    from grouped_sim.data import shipped_scorer_path

    return shipped_scorer_path(SHIPPED_JUDGE)


def load_coherence_instrument(folder: Path) -> Any:
    """A judge folder (judge.json) as a CoherenceJudge, else a MiniLM coherence scorer folder."""
    if (folder / CARD_FILE).is_file():
        return CoherenceJudge(folder)
    from grouped_sim.discriminator.coherence import CoherenceScorer

    return CoherenceScorer(folder)


def anchored_copy(source: Path, dialogues: Sequence[Dialogue], target: Path, note: str) -> Path:
    """Write `source`'s judge to `target`, reading replies against contexts of `dialogues` (a team's
    training calls): the head and floor as validated, the anchors of the team's domain."""
    judge = CoherenceJudge(source)
    anchored = judge.anchored(dialogues)
    if anchored is judge:
        raise InputError(f"the judge needs {judge.card.config.anchors} calls with a customer reply after a salesman move to read replies against")
    card = judge.card.model_copy(update={"anchors": anchored.anchors, "warnings": [*judge.card.warnings, note]})
    return save_judge(target, judge.head, card)


def save_judge(folder: Path | str, head: Head, card: JudgeCard) -> Path:
    """Write head.npz and judge.json into a temp folder beside `folder`, then move it in place."""
    target = Path(folder)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        np.savez(tmp / HEAD_FILE, mean=head.mean, scale=head.scale, coef=head.coef, intercept=np.array([head.intercept]))
        (tmp / CARD_FILE).write_text(card.model_dump_json(indent=2) + "\n", encoding="utf-8")
        if target.exists():
            if not (target / CARD_FILE).is_file() and any(target.iterdir()):
                raise InputError(f"{target}: exists and is not a judge folder; choose another --out")
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


@dataclass
class TrainingSet:
    """Replies to read: real ones (label 1) and ones made bad without a model (label 0)."""

    contexts: list[str]
    replies: list[str]
    labels: list[int]
    dialogue_ids: list[str]
    kinds: list[str]


def training_set(dialogues: Sequence[Dialogue], per_call: int, seed: int = 0) -> TrainingSet:
    """Up to `per_call` real replies per call, each with its words shuffled and a real reply of
    another of these calls at the same stage (grouped_sim.discriminator.negatives)."""
    rows = []
    for d in sorted(dialogues, key=lambda d: d.id):
        found = reply_contexts(d)
        step = max(1, len(found) // per_call) if found else 1
        rows += [(d, i, c, r) for i, c, r in found[::step][:per_call]]
    drawn = other_call_replies([Reply(d.id, i, d.turns[i].sop_stage, r) for d, i, _, r in rows], 1, seed)
    out = TrainingSet([], [], [], [], [])
    for (d, i, context, reply), others in zip(rows, drawn):
        rng = random.Random(f"{seed}:{d.id}:{i}")
        for kind, text, label in (("real", reply, 1), ("shuffled", shuffled_words(reply, rng), 0), ("other", others[0].text if others else None, 0)):
            if text:
                out.contexts.append(context)
                out.replies.append(text)
                out.labels.append(label)
                out.dialogue_ids.append(d.id)
                out.kinds.append(kind)
    return out


def real_floor(readings: Readings, labels: Sequence[int]) -> float:
    """The FLOOR_QUANTILE (the median) of per-token log-probability over the real replies."""
    means = [float(own.mean()) for own, y in zip(readings.own, labels) if y == 1 and own.size]
    return float(np.quantile(means, FLOOR_QUANTILE)) if means else -10.0


def fit_head(x: np.ndarray, y: Sequence[int], c: float = 1.0) -> Head:
    return Head.fit(x, np.asarray(y), c)


def heldout_figures(x: np.ndarray, head: Head, data: TrainingSet) -> dict[str, Any]:
    """ROC-AUC of real against each kind of made-bad reply on held-out calls, 95 % interval over calls."""
    from grouped_sim.discriminator.heads import fast_auc
    from grouped_sim.metrics.intervals import bootstrap_ci

    p = head.predict(x) if len(x) else np.zeros(0)
    out: dict[str, Any] = {"calls": len(set(data.dialogue_ids)), "real": int(sum(data.labels))}
    real_by_call: dict[str, list[float]] = {}
    for pid, kind, score in zip(data.dialogue_ids, data.kinds, p):
        if kind == "real":
            real_by_call.setdefault(pid, []).append(float(score))
    out["real_acceptance"] = round(float(np.mean([v >= 0.5 for vs in real_by_call.values() for v in vs])), 4) if real_by_call else None
    for bad in ("shuffled", "other"):
        units = []
        for call, reals in real_by_call.items():
            bads = [float(s) for pid, kind, s in zip(data.dialogue_ids, data.kinds, p) if pid == call and kind == bad]
            units.append([(1, r) for r in reals] + [(0, b) for b in bads])

        def auc(us: Sequence[list[tuple[int, float]]]) -> float | None:
            rows = [r for u in us for r in u]
            return fast_auc([y for y, _ in rows], [s for _, s in rows])

        value = auc(units)
        out[f"auc_real_vs_{bad}"] = round(value, 4) if value is not None else None
        out[f"auc_real_vs_{bad}_ci"] = bootstrap_ci(units, auc)
    return out


def train_judge(
    dialogues: Sequence[Dialogue], train_ids: Sequence[str], held_ids: Sequence[str], config: JudgeConfig, reader: Reader,
    per_call: int = 3, source: str = "", on_progress: Callable[[str], None] | None = None,
) -> tuple[Head, JudgeCard]:
    """Read real and made-bad replies of the training calls, fit the head, measure it on the held-out calls."""
    train_calls = [d for d in dialogues if d.id in set(train_ids)]
    held_calls = [d for d in dialogues if d.id in set(held_ids)]
    anchors = choose_anchors(train_calls, config.anchors, config.seed)
    if len(anchors) < config.anchors:
        raise InputError(f"the judge needs {config.anchors} training calls with a customer reply after a salesman move to read replies against; it has {len(anchors)}")
    train = training_set(train_calls, per_call, config.seed)
    if on_progress:
        on_progress(f"reading {len(train.replies)} replies of {len(train_calls)} training calls")
    readings = read_replies(reader, train.contexts, train.replies, anchors, config)
    floor = real_floor(readings, train.labels)
    head = fit_head(features(readings, floor), train.labels)
    card = JudgeCard(config=config, anchors=anchors, floor=floor, source=source, split={"train": sorted(train_ids), "heldout": sorted(held_ids)},
                     trained_on={"calls": len(train_calls), "real": int(sum(train.labels)), "made_bad": len(train.labels) - int(sum(train.labels))})
    if held_calls:
        held = training_set(held_calls, per_call, config.seed + 1)
        if on_progress:
            on_progress(f"reading {len(held.replies)} replies of {len(held_calls)} held-out calls")
        card.heldout = heldout_figures(features(read_replies(reader, held.contexts, held.replies, anchors, config), floor), head, held)
    if len(train_calls) < 20:
        card.warnings.append(f"trained on {len(train_calls)} calls: the head and the real floor rest on few replies")
    return head, card


def dump_readings(readings: Readings) -> list[dict[str, Any]]:
    """Readings as JSON-ready rows (benchmarks cache them)."""
    return [{"own": own.tolist(), "anchors": [a.tolist() for a in anchors]} for own, anchors in zip(readings.own, readings.anchors)]


def load_readings(rows: Sequence[dict[str, Any]]) -> Readings:
    return Readings(own=[np.asarray(r["own"]) for r in rows], anchors=[[np.asarray(a) for a in r["anchors"]] for r in rows])

