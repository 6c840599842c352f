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
and the held-out figures); the 90 MB encoder is never copied. The folder format, the head, the
embedding cache and the held-out figures are shared with the realism scorer
(`grouped_sim.discriminator.heads`).

Held-out figures come from held-out dialogues only: their pairs and their negatives are drawn
from those dialogues alone, so nothing a scorer was fitted on is in its evaluation. Two scorers
trained on disjoint splits (`train_coherence(..., train_ids, heldout_ids)`) let one pick replies
and the other judge them.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

# Head, HeldOut, corpus_digest, evaluate_pairs, fast_auc, HEAD_FILE and THRESHOLD are shared with the
# realism scorer and named here too, where callers have always found them.
from grouped_sim.discriminator.heads import (  # noqa: F401
    CARD_FILES,
    FORMAT_VERSION,
    HEAD_FILE,
    sample_warnings,
    THRESHOLD,
    EmbedFn,
    Embeddings,
    Head,
    HeadScorer,
    HeldOut,
    Progress,
    ScorerModel,
    check_split,
    corpus_digest,
    evaluate_pairs,
    fast_auc,
    format_name,
)
from grouped_sim.discriminator.negatives import Reply, other_call_replies
from grouped_sim.embeddings import ENCODER_NAME
from grouped_sim.errors import InputError
from grouped_sim.io import read_json
from grouped_sim.schemas import Dialogue
from grouped_sim.transcript import parse_transcript, speaker, transcript_text

TASK = "coherence"
CARD_FILE = CARD_FILES[TASK]
FORMAT = format_name(TASK)
CoherenceModel = ScorerModel  # a fitted coherence scorer: config, head and card

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



def chosen_split(split: Path | None, ids: Sequence[str], holdout: float, seed: int) -> tuple[list[str], list[str], str]:
    """(train, held-out, the rule that chose them) for a `train` command: an explicit `--split`
    file, else `--holdout` and `--seed` by the discriminator's rule. The rule goes on the card."""
    if split is not None:
        train_ids, held_ids = read_split(split)
        return train_ids, held_ids, f"explicit: {split}"
    train_ids, held_ids = split_dialogues(ids, holdout, seed)
    return train_ids, held_ids, f"--holdout {holdout} --seed {seed}: the discriminator's rule (sha256 of 'seed:id', lowest first)"

# --------------------------------------------------------------------------- features


def _words(text: str) -> set[str]:
    return set(_WORDS.findall(text.lower()))


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


def _feature_row(p: _Parsed, reply: str, emb: Embeddings) -> np.ndarray:
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


def features(contexts: Sequence[str], replies: Sequence[str], config: CoherenceConfig, emb: Embeddings, on_progress: Progress | None = None) -> np.ndarray:
    """The head's input for each (context, reply): `FEATURES`, then for `head="vectors"` [u, v, u*v, |u-v|]."""
    if len(contexts) != len(replies):
        raise ValueError(f"{len(contexts)} contexts but {len(replies)} replies")
    parsed = [_parse(c, config) for c in contexts]
    clean = [_reply(r) for r in replies]
    emb.prepare((t for p, r in zip(parsed, clean) for t in _texts_of(p, r) if t), on_progress)
    rows = [_feature_row(p, r, emb) for p, r in zip(parsed, clean)]
    if config.head == "vectors":
        rows = [np.concatenate([x, u, v, u * v, np.abs(u - v)]) for x, u, v in ((x, emb[p.window], emb[r]) for x, p, r in zip(rows, parsed, clean))]
    width = len(FEATURES) + (4 * emb.dim if config.head == "vectors" else 0)
    return np.array(rows, dtype=np.float64) if rows else np.zeros((0, width))



# --------------------------------------------------------------------------- train, save, load


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
) -> ScorerModel:
    """Fit the head on pairs of the `train_ids` dialogues; evaluate on the `heldout_ids` ones.

    The two id lists must be disjoint and name dialogues of `dialogues`. `on_progress(done, total)`
    follows the embedding of the distinct texts (the slow part).
    """
    cfg = config or CoherenceConfig()
    by_id = {d.id: d for d in dialogues}
    check_split(train_ids, heldout_ids, by_id)
    train_set, held_set = set(train_ids), set(heldout_ids)
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
    emb = Embeddings(embed_fn)
    every = train_pairs + held_pairs
    feats = features([p.context for p in every], [p.reply for p in every], cfg, emb, on_progress)
    x_train, x_held = feats[: len(train_pairs)], feats[len(train_pairs) :]
    head = Head.fit(x_train, np.array([p.label for p in train_pairs]), cfg.c)
    held = evaluate_pairs(held_pairs, head.predict(x_held).tolist(), seed=cfg.seed) if held_pairs else None
    train_fit = evaluate_pairs(train_pairs, head.predict(x_train).tolist(), resamples=200, seed=cfg.seed)
    card = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "task": TASK,
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
        "warnings": sample_warnings(len(train_dialogues), held),
    }
    return ScorerModel(cfg, head, card)


class CoherenceScorer(HeadScorer):
    """A saved scorer, loaded: `score(contexts, replies)` = P(the reply answers that context).

    The scorer reads a context's last `context_turns` turns; the same (context, reply) strings as
    the realism scorer takes.
    """

    task = TASK
    config_model = CoherenceConfig

    @staticmethod
    def card_features(card: dict[str, Any]) -> Sequence[str]:
        return FEATURES

    def features(self, contexts: list[str], replies: list[str]) -> np.ndarray:
        return features(contexts, replies, self.config, self._emb)


def pair_rows(pairs: Sequence[CoherencePair]) -> list[dict[str, Any]]:
    """Pairs as JSON-ready dicts (to inspect or save what a scorer was trained on)."""
    return [asdict(p) for p in pairs]
