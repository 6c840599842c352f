"""The coherence scorer: P(this customer reply answers THIS context), learned from a team's corpus.

Realism (the discriminator) asks whether a reply sounds like a real customer; a fluent line that
answers nothing passes it. Coherence asks whether the reply belongs to this call: it is trained to
tell the real next reply from real replies of OTHER calls at the same SOP stage
(`grouped_sim.discriminator.negatives`), which sound just as real and are about the same kind of
thing, so only the context separates them.

The model is the packaged MiniLM (frozen, `grouped_sim.embeddings.embed`) and a logistic head over
a few similarities between the reply and the parts of the context (the salesman's move, the
customer's previous replies, the recent window), word overlaps and lengths: `FEATURES` names them.
The head over the raw vectors [u, v, u*v, |u-v|] is available (`head="vectors"`) but, measured on
the 75-call sample corpus, it overfits: held-out ROC-AUC 0.63 to 0.67 against 0.70 for the
features head (docs/evaluation.md). A scorer folder holds `head.npz` (a few hundred bytes) and
`coherence.json` (the card: encoder, features, config, corpus digest, the split by dialogue id
and the held-out figures); the 90 MB encoder is never copied.

Held-out figures come from held-out dialogues only: their pairs and their negatives are drawn
from those dialogues alone, so nothing a scorer was fitted on is in its evaluation. Two scorers
trained on disjoint splits (`train_coherence(..., train_ids, heldout_ids)`) let one pick replies
and the other judge them.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from grouped_sim.discriminator.negatives import Reply, other_call_replies
from grouped_sim.embeddings import ENCODER_NAME
from grouped_sim.errors import InputError
from grouped_sim.io import read_json
from grouped_sim.schemas import Dialogue
from grouped_sim.transcript import parse_transcript, speaker, transcript_text

CARD_FILE = "coherence.json"
HEAD_FILE = "head.npz"
FORMAT = "grouped-sim coherence scorer"
FORMAT_VERSION = 1
THRESHOLD = 0.5

FEATURES: tuple[str, ...] = (
    "cos_move",  # reply vs the salesman move it answers
    "cos_prev_reply",  # reply vs the customer's previous reply (0 when none)
    "has_prev_reply",
    "cos_move_before",  # reply vs the salesman move before that (0 when none)
    "cos_window",  # reply vs the last `window_turns` turns as one text
    "max_cos_replies",  # reply vs each earlier customer reply in the context: max and mean
    "mean_cos_replies",
    "max_cos_moves",  # reply vs each salesman move in the context: max
    "overlap_move",  # words of the reply also in the move, / (reply words + 1)
    "overlap_replies",  # words of the reply also in the customer's earlier replies
    "log_words",  # log(1 + words of the reply)
    "log_words_vs_prev",  # log(1 + words) minus the same for the previous reply (0 when none)
)
_WORDS = re.compile(r"[a-z0-9']+")

EmbedFn = Callable[[Sequence[str]], np.ndarray]
Progress = Callable[[int, int], None]


class CoherenceConfig(BaseModel):
    """How pairs are made and the head is fitted; saved in the card."""

    model_config = ConfigDict(extra="forbid")

    negatives: int = Field(3, ge=1, le=50, description="replies of other calls at the same stage per real reply")
    context_turns: int = Field(8, ge=2, le=64, description="turns of the call so far that the scorer reads (the end of it)")
    window_turns: int = Field(4, ge=1, le=64, description="last turns embedded together as one text (cos_window)")
    head: Literal["features", "vectors"] = "features"
    c: float = Field(1.0, gt=0.0, description="inverse L2 strength of the logistic head")
    seed: int = 0


@dataclass(frozen=True)
class CoherencePair:
    """One training or evaluation row: a context, a reply and whether the reply was said there."""

    dialogue_id: str
    turn_index: int
    stage: str | None
    context: str
    reply: str
    label: int
    source_dialogue: str
    source_turn: int


# --------------------------------------------------------------------------- pairs


def reply_turns(dialogue: Dialogue) -> list[int]:
    """Indices of the customer replies that follow a salesman move and say something: the positives."""
    from grouped_sim.metrics.coherence import reply_indices

    return [i for i in reply_indices(dialogue) if dialogue.turns[i].text]


def context_text(dialogue: Dialogue, index: int, context_turns: int) -> str:
    """The end of the call before turn `index`: its last `context_turns` turns, as a transcript."""
    return transcript_text(dialogue.turns[max(0, index - context_turns) : index])


def training_pairs(dialogues: Sequence[Dialogue], negatives: int = 3, seed: int = 0, context_turns: int = 8) -> list[CoherencePair]:
    """For every reply that follows a salesman move: (context, real reply, 1) and up to `negatives`
    (context, reply of another call at the same stage, 0). Negatives come from `dialogues` only."""
    slots = [(d, i) for d in dialogues for i in reply_turns(d)]
    replies = [Reply(d.id, i, d.turns[i].sop_stage, d.turns[i].text) for d, i in slots]
    drawn = other_call_replies(replies, negatives, seed)
    pairs: list[CoherencePair] = []
    for (dialogue, index), reply, others in zip(slots, replies, drawn):
        context = context_text(dialogue, index, context_turns)
        pairs.append(CoherencePair(dialogue.id, index, reply.stage, context, reply.text, 1, dialogue.id, index))
        pairs.extend(CoherencePair(dialogue.id, index, reply.stage, context, o.text, 0, o.dialogue_id, o.turn_index) for o in others)
    return pairs


def corpus_digest(dialogues: Iterable[Dialogue]) -> str:
    """sha256 of the dialogues' canonical JSON in id order: names the exact corpus a scorer saw."""
    blob = hashlib.sha256()
    for d in sorted(dialogues, key=lambda d: d.id):
        blob.update(d.model_dump_json().encode() + b"\n")
    return blob.hexdigest()


def split_dialogues(ids: Sequence[str], holdout: float, seed: int) -> tuple[list[str], list[str]]:
    """(train, held-out) ids by the discriminator's rule (hash of seed and id), so a discriminator,
    the customer adapter and a coherence scorer made with the same share and seed hold out the same calls."""
    from grouped_sim.discriminator.model import heldout_dialogues

    held = heldout_dialogues(list(ids), holdout, seed)
    return sorted(set(ids) - held), sorted(held)


ROLE_SPLIT_RULE = (
    "test: the share of calls the discriminator's rule holds out (sha256 of 'seed:id', lowest first; "
    "with share 0.2 and seed 0 it contains the 10 % the shipped customer adapter held out); the other "
    "calls in that same order, alternately picker (1st, 3rd, ...) and judge (2nd, 4th, ...)"
)


def role_split(ids: Sequence[str], test_share: float = 0.2, seed: int = 0) -> dict[str, list[str]]:
    """Three disjoint parts of a corpus: "picker" and "judge" (each trains one scorer) and "test"
    (held out from both). A scorer that picks replies must not also judge them (issue 14): the
    judge never saw the picker's calls, and neither saw the test calls."""
    from grouped_sim.discriminator.model import heldout_dialogues

    unique = sorted(set(ids))
    test = heldout_dialogues(unique, test_share, seed)
    rest = sorted((d for d in unique if d not in test), key=lambda d: hashlib.sha256(f"{seed}:{d}".encode()).hexdigest())
    return {"picker": sorted(rest[0::2]), "judge": sorted(rest[1::2]), "test": sorted(test)}


def read_split(path: Path | str) -> tuple[list[str], list[str]]:
    """(train, held-out) ids from a JSON file with "train" and "heldout" lists, or a scorer card."""
    path = Path(path)
    if path.is_dir():
        path = path / CARD_FILE
    if not path.is_file():
        raise InputError(f"{path}: split file not found")
    raw = read_json(path, "split file")
    split = raw.get("split", raw) if isinstance(raw, dict) else None
    if not isinstance(split, dict) or not all(isinstance(split.get(k), list) for k in ("train", "heldout")):
        raise InputError(f"{path}: a split needs lists \"train\" and \"heldout\" of dialogue ids")
    return [str(x) for x in split["train"]], [str(x) for x in split["heldout"]]


# --------------------------------------------------------------------------- features


def _words(text: str) -> set[str]:
    return set(_WORDS.findall(text.lower()))


_SHARED_CACHE: dict[str, np.ndarray] = {}


class _Embeddings:
    """Unit vectors by text: each distinct text is embedded once (batched), then read from the cache.

    With the default encoder the cache is shared by every scorer of the process (a picker and a
    judge, a report's run and reference read the same texts); an injected `embed_fn` gets its own.
    """

    def __init__(self, embed_fn: EmbedFn | None, limit: int = 200_000) -> None:
        if embed_fn is None:
            from grouped_sim.embeddings import embed as embed_fn

            self.cache = _SHARED_CACHE
        else:
            self.cache = {}
        self.embed_fn = embed_fn
        self.limit = limit

    def prepare(self, texts: Iterable[str], on_progress: Progress | None = None, batch: int = 64) -> None:
        unique = list(dict.fromkeys(texts))
        missing = [t for t in unique if t not in self.cache]
        if len(self.cache) + len(missing) > self.limit:
            self.cache.clear()
            missing = unique
        for start in range(0, len(missing), batch):
            chunk = missing[start : start + batch]
            self.cache.update(zip(chunk, np.asarray(self.embed_fn(chunk), dtype=np.float64)))
            if on_progress:
                on_progress(min(start + batch, len(missing)), len(missing))

    def __getitem__(self, text: str) -> np.ndarray:
        return self.cache[text]


@dataclass
class _Parsed:
    moves: list[str]  # salesman moves in the context, oldest first
    replies: list[str]  # customer replies in the context, oldest first
    move: str  # the move the reply answers ("" when the context holds none)
    move_before: str | None
    prev_reply: str | None
    window: str


def _parse(context: str, config: CoherenceConfig) -> _Parsed:
    turns = parse_transcript(context)[-config.context_turns :]
    moves = [t for r, t in turns if r == "salesman"]
    replies = [t for r, t in turns if r == "customer"]
    last_move = max((k for k, (r, _) in enumerate(turns) if r == "salesman"), default=None)
    move = turns[last_move][1] if last_move is not None else ""
    before = [t for r, t in turns[:last_move] if r == "salesman"] if last_move is not None else []
    prev = [t for r, t in turns[:last_move] if r == "customer"] if last_move is not None else replies
    window = "\n".join(f"{speaker(r)}: {t}" for r, t in turns[-config.window_turns :])
    return _Parsed(moves, replies, move, before[-1] if before else None, prev[-1] if prev else None, window)


def _reply(text: str) -> str:
    return text if text.strip() else "(silence)"


def _texts_of(parsed: _Parsed, reply: str) -> list[str]:
    return [reply, parsed.move, parsed.window, *parsed.moves, *parsed.replies]


def _feature_row(p: _Parsed, reply: str, emb: _Embeddings) -> np.ndarray:
    v = emb[reply]

    def cos(text: str | None) -> float:
        return float(emb[text] @ v) if text else 0.0

    reply_cos = [cos(t) for t in p.replies]
    words = _words(reply)
    earlier = set().union(*(_words(t) for t in p.replies)) if p.replies else set()
    n_words = len(reply.split())
    return np.array(
        [
            cos(p.move),
            cos(p.prev_reply),
            1.0 if p.prev_reply else 0.0,
            cos(p.move_before),
            cos(p.window),
            max(reply_cos, default=0.0),
            float(np.mean(reply_cos)) if reply_cos else 0.0,
            max((cos(t) for t in p.moves), default=0.0),
            len(words & _words(p.move)) / (len(words) + 1),
            len(words & earlier) / (len(words) + 1),
            math.log1p(n_words),
            math.log1p(n_words) - math.log1p(len(p.prev_reply.split())) if p.prev_reply else 0.0,
        ]
    )


def features(contexts: Sequence[str], replies: Sequence[str], config: CoherenceConfig, emb: _Embeddings, on_progress: Progress | None = None) -> np.ndarray:
    """The head's input for each (context, reply): `FEATURES`, then for `head="vectors"` [u, v, u*v, |u-v|]."""
    if len(contexts) != len(replies):
        raise ValueError(f"{len(contexts)} contexts but {len(replies)} replies")
    parsed = [_parse(c, config) for c in contexts]
    clean = [_reply(r) for r in replies]
    emb.prepare((t for p, r in zip(parsed, clean) for t in _texts_of(p, r) if t), on_progress)
    rows = [_feature_row(p, r, emb) for p, r in zip(parsed, clean)]
    if config.head == "vectors":
        rows = [np.concatenate([x, u, v, u * v, np.abs(u - v)]) for x, u, v in ((x, emb[p.window], emb[r]) for x, p, r in zip(rows, parsed, clean))]
    width = len(FEATURES) + (4 * _dim(emb) if config.head == "vectors" else 0)
    return np.array(rows, dtype=np.float64) if rows else np.zeros((0, width))


def _dim(emb: _Embeddings) -> int:
    return len(next(iter(emb.cache.values()))) if emb.cache else 0


# --------------------------------------------------------------------------- the head


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))


@dataclass
class Head:
    """Standardisation and logistic weights: P = sigmoid(((x - mean) / scale) @ coef + intercept)."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    def predict(self, x: np.ndarray) -> np.ndarray:
        if x.shape[0] == 0:
            return np.zeros(0)
        return _sigmoid(((x - self.mean) / self.scale) @ self.coef + self.intercept)

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, c: float) -> Head:
        from sklearn.linear_model import LogisticRegression

        mean = x.mean(axis=0)
        scale = x.std(axis=0)
        scale = np.where(scale < 1e-9, 1.0, scale)
        # Balanced classes: P = 0.5 is the line between "said here" and "said in another call",
        # whatever the number of negatives per reply.
        model = LogisticRegression(C=c, class_weight="balanced", max_iter=5000).fit((x - mean) / scale, y)
        return cls(mean, scale, model.coef_[0].astype(np.float64), float(model.intercept_[0]))


# --------------------------------------------------------------------------- evaluation


class HeldOut(BaseModel):
    """Figures on held-out dialogues only (their pairs, their negatives)."""

    dialogues: int
    pairs: int
    positives: int
    accuracy: float | None = Field(None, description="share of pairs on the right side of P = 0.5")
    balanced_accuracy: float | None = Field(None, description="mean of the accuracy on real and on other-call replies")
    roc_auc: float | None
    roc_auc_ci: list[float] | None = Field(None, description="95 % bootstrap interval over held-out dialogues")
    rank_accuracy: float | None = Field(None, description="share of (real, other-call) reply pairs of one context where the real one scores higher (ties half)")
    mean_p_real: float | None
    mean_p_other: float | None


def fast_auc(labels: Sequence[int], scores: Sequence[float]) -> float | None:
    """ROC-AUC by ranks (ties count half); None without both classes."""
    from scipy.stats import rankdata

    y = np.asarray(labels)
    n_pos, n_neg = int((y == 1).sum()), int((y == 0).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = rankdata(np.asarray(scores, dtype=np.float64))
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def evaluate_pairs(pairs: Sequence[CoherencePair], scores: Sequence[float], resamples: int = 1000, seed: int = 0) -> HeldOut:
    """Accuracy, ROC-AUC (with a bootstrap interval over dialogues) and ranking of scored pairs."""
    from grouped_sim.metrics.intervals import bootstrap_ci

    labels = [p.label for p in pairs]
    s = [float(x) for x in scores]
    pos = [x for x, y in zip(s, labels) if y == 1]
    neg = [x for x, y in zip(s, labels) if y == 0]
    by_dialogue: dict[str, list[tuple[int, float]]] = {}
    by_context: dict[tuple[str, int], tuple[list[float], list[float]]] = {}
    for p, x in zip(pairs, s):
        by_dialogue.setdefault(p.dialogue_id, []).append((p.label, x))
        real, other = by_context.setdefault((p.dialogue_id, p.turn_index), ([], []))
        (real if p.label == 1 else other).append(x)
    wins = [1.0 if r > o else 0.5 if r == o else 0.0 for real, other in by_context.values() for r in real for o in other]

    def auc_of(units: Sequence[list[tuple[int, float]]]) -> float | None:
        rows = [row for unit in units for row in unit]
        return fast_auc([y for y, _ in rows], [x for _, x in rows])

    def rnd(x: float | None) -> float | None:
        return None if x is None else round(float(x), 4)

    correct = [(x >= THRESHOLD) == (y == 1) for x, y in zip(s, labels)]
    return HeldOut(
        dialogues=len(by_dialogue),
        pairs=len(pairs),
        positives=len(pos),
        accuracy=rnd(sum(correct) / len(correct)) if correct else None,
        balanced_accuracy=rnd((sum(x >= THRESHOLD for x in pos) / len(pos) + sum(x < THRESHOLD for x in neg) / len(neg)) / 2) if pos and neg else None,
        roc_auc=rnd(fast_auc(labels, s)),
        roc_auc_ci=bootstrap_ci(list(by_dialogue.values()), auc_of, resamples=resamples, seed=seed) if pos and neg else None,
        rank_accuracy=rnd(sum(wins) / len(wins)) if wins else None,
        mean_p_real=rnd(np.mean(pos)) if pos else None,
        mean_p_other=rnd(np.mean(neg)) if neg else None,
    )


# --------------------------------------------------------------------------- train, save, load


@dataclass
class CoherenceModel:
    """A fitted scorer in memory: its head and its card; `save` writes the folder."""

    config: CoherenceConfig
    head: Head
    card: dict[str, Any]

    def save(self, folder: Path | str) -> Path:
        """Write head.npz and coherence.json into a temp folder beside `folder`, then move it in place."""
        target = Path(folder)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            np.savez(tmp / HEAD_FILE, mean=self.head.mean, scale=self.head.scale, coef=self.head.coef, intercept=np.array([self.head.intercept]))
            (tmp / CARD_FILE).write_text(json.dumps(self.card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
            old = None
            if target.exists():
                if not (target / CARD_FILE).is_file() and any(target.iterdir()):
                    raise InputError(f"{target}: exists and is not a coherence scorer folder; choose another --out")
                old = target.with_name(f".{target.name}.old-{os.getpid()}")
                target.rename(old)
            tmp.rename(target)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return target


def train_coherence(
    dialogues: Sequence[Dialogue],
    train_ids: Sequence[str],
    heldout_ids: Sequence[str] = (),
    config: CoherenceConfig | None = None,
    *,
    source: str | None = None,
    split_rule: str = "explicit",
    embed_fn: EmbedFn | None = None,
    on_progress: Progress | None = None,
) -> CoherenceModel:
    """Fit the head on pairs of the `train_ids` dialogues; evaluate on the `heldout_ids` ones.

    The two id lists must be disjoint and name dialogues of `dialogues`. `on_progress(done, total)`
    follows the embedding of the distinct texts (the slow part).
    """
    cfg = config or CoherenceConfig()
    by_id = {d.id: d for d in dialogues}
    train_set, held_set = set(train_ids), set(heldout_ids)
    if overlap := sorted(train_set & held_set):
        raise InputError(f"train and held-out dialogues overlap ({len(overlap)}, e.g. {overlap[0]!r}): a held-out figure must come from unseen calls")
    if unknown := sorted((train_set | held_set) - set(by_id)):
        raise InputError(f"{len(unknown)} split ids are not in the corpus, e.g. {unknown[0]!r}")
    train_dialogues = [by_id[i] for i in sorted(train_set)]
    held_dialogues = [by_id[i] for i in sorted(held_set)]
    train_pairs = training_pairs(train_dialogues, cfg.negatives, cfg.seed, cfg.context_turns)
    held_pairs = training_pairs(held_dialogues, cfg.negatives, cfg.seed, cfg.context_turns)
    labels = {p.label for p in train_pairs}
    if labels != {0, 1}:
        raise InputError(
            f"the {len(train_dialogues)} training dialogues give no {'real reply' if 1 not in labels else 'reply from another call'} to learn from: "
            "a coherence scorer needs at least two calls with customer replies after a salesman move"
        )
    emb = _Embeddings(embed_fn)
    every = train_pairs + held_pairs
    feats = features([p.context for p in every], [p.reply for p in every], cfg, emb, on_progress)
    x_train, x_held = feats[: len(train_pairs)], feats[len(train_pairs) :]
    head = Head.fit(x_train, np.array([p.label for p in train_pairs]), cfg.c)
    held = evaluate_pairs(held_pairs, head.predict(x_held).tolist(), seed=cfg.seed) if held_pairs else None
    train_fit = evaluate_pairs(train_pairs, head.predict(x_train).tolist(), resamples=200, seed=cfg.seed)
    card = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "encoder": ENCODER_NAME,
        "head": cfg.head,
        "features": list(FEATURES),
        "config": cfg.model_dump(mode="json"),
        "seed": cfg.seed,
        "threshold": THRESHOLD,
        "corpus": {"digest": corpus_digest(dialogues), "dialogues": len(dialogues), "source": source},
        "split": {"rule": split_rule, "train": sorted(train_set), "heldout": sorted(held_set)},
        "n": {
            "train_dialogues": len(train_dialogues),
            "train_pairs": len(train_pairs),
            "train_real_replies": sum(p.label for p in train_pairs),
            "heldout_dialogues": len(held_dialogues),
            "heldout_pairs": len(held_pairs),
        },
        "heldout": held.model_dump(mode="json") if held else None,
        "train_fit": {"roc_auc": train_fit.roc_auc, "accuracy": train_fit.accuracy},
    }
    return CoherenceModel(cfg, head, card)


def _card(folder: Path) -> dict[str, Any]:
    path = folder / CARD_FILE
    if not path.is_file():
        raise InputError(f"{folder}: not a coherence scorer folder (no {CARD_FILE}); train one with `grouped-sim coherence train`")
    card = read_json(path, "coherence scorer card")
    if not isinstance(card, dict) or card.get("format") != FORMAT:
        raise InputError(f"{path}: not a coherence scorer card (format should be {FORMAT!r})")
    if card.get("format_version") != FORMAT_VERSION:
        raise InputError(f"{path}: scorer format version {card.get('format_version')}, this grouped-sim reads {FORMAT_VERSION}; retrain it")
    if card.get("encoder") != ENCODER_NAME:
        raise InputError(f"{path}: trained over the encoder {card.get('encoder')!r}, but this grouped-sim embeds with {ENCODER_NAME!r}; retrain it")
    if list(card.get("features") or []) != list(FEATURES):
        raise InputError(f"{path}: the scorer's features differ from this grouped-sim's; retrain it")
    return card


class CoherenceScorer:
    """A saved scorer, loaded: `score(contexts, replies)` = P(the reply answers that context).

    A context is the call so far as `grouped_sim.transcript` renders it (the scorer reads its last
    `context_turns` turns); the same (context, reply) strings as the realism scorer takes. Distinct
    texts are embedded once per scorer and cached.
    """

    def __init__(self, folder: Path | str, embed_fn: EmbedFn | None = None) -> None:
        self.folder = Path(folder)
        self.card = _card(self.folder)
        try:
            self.config = CoherenceConfig.model_validate(self.card["config"])
        except (KeyError, ValidationError) as exc:
            raise InputError(f"{self.folder / CARD_FILE}: bad config ({exc})") from exc
        head_path = self.folder / HEAD_FILE
        if not head_path.is_file():
            raise InputError(f"{self.folder}: {HEAD_FILE} is missing")
        try:
            with np.load(head_path) as z:
                self.head = Head(z["mean"], z["scale"], z["coef"], float(z["intercept"][0]))
        except (OSError, KeyError, ValueError) as exc:
            raise InputError(f"{head_path}: not a coherence head ({exc})") from exc
        self._emb = _Embeddings(embed_fn)

    @property
    def name(self) -> str:
        return str(self.folder)

    def score(self, contexts: Sequence[str], replies: Sequence[str]) -> list[float]:
        x = features(list(contexts), list(replies), self.config, self._emb)
        if x.shape[0] and x.shape[1] != self.head.coef.shape[0]:
            raise InputError(f"{self.folder / HEAD_FILE}: head has {self.head.coef.shape[0]} weights for {x.shape[1]} features; retrain it")
        return [float(p) for p in self.head.predict(x)]

    def __call__(self, contexts: Sequence[str], replies: Sequence[str]) -> list[float]:
        return self.score(contexts, replies)


def pair_rows(pairs: Sequence[CoherencePair]) -> list[dict[str, Any]]:
    """Pairs as JSON-ready dicts (to inspect or save what a scorer was trained on)."""
    return [asdict(p) for p in pairs]
