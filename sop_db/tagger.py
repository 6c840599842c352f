"""Stage taggers for mining: label every turn of a raw transcript with an SOP stage.

- `KnnStageTagger`: no language model. Every already labelled turn (salesman moves and customer
  replies, each with the move it answers as context) is embedded with φ; a new turn takes the
  similarity-weighted vote of its nearest labelled turns of the same role. `SOPStore.tag_stage`
  covers salesman moves only; mining must label customer turns too, hence this index.
- `LLMStageAnnotator`: asks a chat model for the stage id of each turn (prompt in
  grouped_sim/data/prompts/mining.yaml), retried on an answer that names no stage; a turn it still cannot label falls
  back to the kNN tagger when one is given and is marked as such in `turn.meta`. On our own
  backends the first attempts for all turns of a dialogue are one batched call.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from grouped_sim.embeddings import embed
from grouped_sim.models.base import LocalChatModel
from grouped_sim.prompts import prompt
from grouped_sim.transcript import transcript_text
from grouped_sim.schemas import Dialogue, Turn
from grouped_sim.sop_db.taxonomy import Taxonomy, load_taxonomy


class TurnLabel(BaseModel):
    stage: str
    confidence: float = Field(ge=0.0, le=1.0)
    source: str


def turn_feature(turns: Sequence[Turn], index: int) -> str:
    """What is embedded for turn `index`: a customer reply is read together with the move it answers."""
    turn = turns[index]
    if turn.role == "customer" and index > 0 and turns[index - 1].role == "salesman":
        return transcript_text(turns[index - 1 : index + 1])
    return turn.text


class KnnStageTagger:
    """A similarity-weighted k-nearest-neighbour vote over labelled turns, one index per role."""

    def __init__(self, k: int = 7, taxonomy: Taxonomy | None = None) -> None:
        self.k = k
        self.taxonomy = taxonomy or load_taxonomy()
        self._vectors: dict[str, np.ndarray] = {}
        self._labels: dict[str, list[str]] = {}

    @classmethod
    def from_dialogues(cls, dialogues: Sequence[Dialogue], k: int = 7, taxonomy: Taxonomy | None = None, seed_with_taxonomy: bool = True) -> KnnStageTagger:
        """Index every labelled turn of `dialogues` (unlabelled turns are ignored)."""
        tagger = cls(k=k, taxonomy=taxonomy)
        texts: dict[str, list[str]] = {"salesman": [], "customer": []}
        labels: dict[str, list[str]] = {"salesman": [], "customer": []}
        for dialogue in dialogues:
            for index, turn in enumerate(dialogue.turns):
                if turn.sop_stage and turn.text:
                    texts[turn.role].append(turn_feature(dialogue.turns, index))
                    labels[turn.role].append(turn.sop_stage)
        if seed_with_taxonomy:
            for stage in tagger.taxonomy.stages:
                for example in stage.examples:
                    texts["salesman"].append(example)
                    labels["salesman"].append(stage.id)
        for role in texts:
            tagger._vectors[role] = embed(texts[role])
            tagger._labels[role] = labels[role]
        return tagger

    @property
    def size(self) -> dict[str, int]:
        return {role: len(labels) for role, labels in self._labels.items()}

    def label_features(self, role: str, features: Sequence[str]) -> list[TurnLabel]:
        vectors = self._vectors.get(role)
        labels = self._labels.get(role, [])
        if vectors is None or not labels:
            # Nothing of this role is labelled: borrow the other role's index rather than guess.
            other = "customer" if role == "salesman" else "salesman"
            vectors, labels = self._vectors.get(other), self._labels.get(other, [])
            if vectors is None or not labels:
                raise ValueError("the kNN tagger has no labelled turns; give a corpus with sop_stage labels or an --annotator model")
        queries = embed(list(features))
        sims = queries @ vectors.T
        out = []
        k = min(self.k, len(labels))
        for row in sims:
            top = np.argsort(-row)[:k]
            votes: Counter[str] = Counter()
            for j in top:
                votes[labels[j]] += max(1e-6, float(row[j]))
            stage, weight = votes.most_common(1)[0]
            out.append(TurnLabel(stage=stage, confidence=round(weight / sum(votes.values()), 3), source="knn"))
        return out

    def label_dialogue(self, dialogue: Dialogue) -> list[TurnLabel]:
        """A label for every turn, in order (both roles batched: one encoder call per role)."""
        result: list[TurnLabel | None] = [None] * len(dialogue.turns)
        for role in ("salesman", "customer"):
            idx = [i for i, t in enumerate(dialogue.turns) if t.role == role]
            if not idx:
                continue
            for i, label in zip(idx, self.label_features(role, [turn_feature(dialogue.turns, i) for i in idx])):
                result[i] = label
        return [r for r in result if r is not None]


def apply_labels(dialogue: Dialogue, labels: Sequence[TurnLabel | None], relabel: bool = False) -> Dialogue:
    """A copy of `dialogue` with stages filled in; existing labels are kept unless `relabel`."""
    turns = []
    for turn, label in zip(dialogue.turns, labels):
        if label is None or (turn.sop_stage and not relabel):
            turns.append(turn)
            continue
        meta = {**turn.meta, "stage_source": label.source, "stage_confidence": label.confidence}
        turns.append(turn.model_copy(update={"sop_stage": label.stage, "meta": meta}))
    return dialogue.model_copy(update={"turns": turns})


def find_stage(text: str, taxonomy: Taxonomy) -> str | None:
    """The first stage id (or stage name) named in a model's answer, else None."""
    lowered = text.lower()
    best: tuple[int, str] | None = None
    for stage in taxonomy.stages:
        for name in (stage.id, stage.id.replace("_", " "), stage.name.lower()):
            m = re.search(r"(?<![a-z_])" + re.escape(name) + r"(?![a-z_])", lowered)
            if m and (best is None or m.start() < best[0]):
                best = (m.start(), stage.id)
    return best[1] if best else None


class LLMStageAnnotator:
    """Labels each turn by asking a chat model; falls back to kNN (marked) when its answers name no stage."""

    def __init__(self, model: Any, taxonomy: Taxonomy | None = None, retries: int = 2, fallback: KnnStageTagger | None = None, context_turns: int = 4) -> None:
        self.model = model
        self.taxonomy = taxonomy or load_taxonomy()
        self.retries = retries
        self.fallback = fallback
        self.context_turns = context_turns
        self.stats: Counter[str] = Counter()

    def _messages(self, dialogue: Dialogue, index: int) -> list[Any]:
        from langchain_core.messages import HumanMessage, SystemMessage

        cfg = prompt("mining")["annotation"]
        stages = "\n".join(f"- {s.id}: {s.description}" for s in self.taxonomy.stages)
        lo = max(0, index - self.context_turns)
        context = transcript_text(dialogue.turns[lo:index]) or "(start of call)"
        turn = dialogue.turns[index]
        return [
            SystemMessage(content=cfg["system"].format(stages=stages)),
            HumanMessage(content=cfg["user"].format(context=context, role=turn.role, text=turn.text)),
        ]

    RETRY_SEED_STRIDE = 1_000_003  # attempt a of turn i is seeded i + a * stride: never another turn's first seed

    def first_answers(self, dialogue: Dialogue) -> list[str | None]:
        """Every turn's first answer in one batch on our own backends (row i, turn i, seeded i): each
        is the answer a call of its own with seed i gives. None for other chat models (per call)."""
        if not isinstance(self.model, LocalChatModel) or not dialogue.turns:
            return [None] * len(dialogue.turns)
        return list(self.model.generate_chats([self._messages(dialogue, i) for i in range(len(dialogue.turns))], seed=0))

    def ask(self, dialogue: Dialogue, index: int, attempt: int) -> str:
        """One answer for turn `index` in a call of its own."""
        messages, seed = self._messages(dialogue, index), index + attempt * self.RETRY_SEED_STRIDE
        try:
            return str(self.model.invoke(messages, seed=seed).content)
        except TypeError:  # a chat model that takes no seed
            return str(self.model.invoke(messages).content)

    def stage_of(self, dialogue: Dialogue, index: int, first: str | None) -> str | None:
        """The stage the model names for turn `index` within 1 + retries attempts, else None."""
        for attempt in range(self.retries + 1):
            answer = first if attempt == 0 and first is not None else self.ask(dialogue, index, attempt)
            stage = find_stage(answer, self.taxonomy)
            if stage:
                return stage
        return None

    def label_dialogue(self, dialogue: Dialogue) -> list[TurnLabel]:
        fallback_labels = self.fallback.label_dialogue(dialogue) if self.fallback else None
        out: list[TurnLabel] = []
        for index, first in enumerate(self.first_answers(dialogue)):
            stage = self.stage_of(dialogue, index, first)
            if stage:
                self.stats["llm"] += 1
                out.append(TurnLabel(stage=stage, confidence=1.0, source="llm"))
            elif fallback_labels is not None:
                self.stats["knn_fallback"] += 1
                label = fallback_labels[index]
                out.append(label.model_copy(update={"source": "knn-fallback"}))
            else:
                self.stats["unlabelled"] += 1
                out.append(None)  # type: ignore[arg-type]
        return out
