"""Small scorers over the frozen packaged MiniLM: a logistic head on features of (context, reply).

Two scorers share this machinery, because both must ship inside the package and run on a CPU in
milliseconds (issue 14: "a head over the packaged MiniLM, not a second 90 MB copy"):

- coherence (`grouped_sim.discriminator.coherence`): P(the reply answers THIS call), trained
  against real replies of other calls;
- realism (`grouped_sim.discriminator.realism`): P(a real customer said it rather than the
  simulator's customer model), trained against the model's own replies on the same contexts.

A scorer folder is the same for both: `head.npz` (standardisation, weights and a bias; a few KB)
and a card `<task>.json` (`coherence.json` or `realism.json`: format, encoder, feature names,
config, corpus digest, the split by dialogue id and the held-out figures). The task is the card's
file name, so a folder cannot be read as the wrong kind of scorer. The 90 MB encoder is never
copied. Held-out figures come from held-out dialogues only, with a bootstrap interval over them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol

import numpy as np
from pydantic import BaseModel, Field

from grouped_sim.artifacts import Artifact
from grouped_sim.embeddings import ENCODER_NAME
from grouped_sim.errors import InputError, count
from grouped_sim.schemas import Dialogue

Task = Literal["coherence", "realism"]
CARD_FILES: dict[str, str] = {"coherence": "coherence.json", "realism": "realism.json"}
HEAD_FILE = "head.npz"
FORMAT_VERSION = 1
THRESHOLD = 0.5

EmbedFn = Callable[[Sequence[str]], np.ndarray]
Progress = Callable[[int, int], None]


def format_name(task: str) -> str:
    """The card's `format` string for a task ("grouped-sim coherence scorer", ...)."""
    return f"grouped-sim {task} scorer"


# --------------------------------------------------------------------------- embeddings


_SHARED_CACHE: dict[str, np.ndarray] = {}


class Embeddings:
    """Unit vectors by text: each distinct text is embedded once (batched), then read from the cache.

    With the default encoder the cache is shared by every scorer of the process (a picker and a
    judge, coherence and realism, a report's run and reference read the same texts); an injected
    `embed_fn` gets its own.
    """

    def __init__(self, embed_fn: EmbedFn | None, limit: int = 200_000) -> None:
        if embed_fn is None:
            from grouped_sim.embeddings import embed_stored as embed_fn

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

    @property
    def dim(self) -> int:
        return len(next(iter(self.cache.values()))) if self.cache else 0


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
        # Balanced classes: P = 0.5 is the line between the two kinds of reply, whatever the number
        # of negatives per real reply.
        model = LogisticRegression(C=c, class_weight="balanced", max_iter=5000).fit((x - mean) / scale, y)
        return cls(mean, scale, model.coef_[0].astype(np.float64), float(model.intercept_[0]))

    @classmethod
    def load(cls, folder: Path, artifact: Artifact) -> Head:
        """head.npz of a scorer folder, checked: four arrays that fit together, finite numbers."""
        path = folder / HEAD_FILE
        artifact.require(path.is_file(), path, "missing (the scorer folder is incomplete)")
        with artifact.reading(path), np.load(path, allow_pickle=False) as z:
            head = cls(z["mean"], z["scale"], z["coef"], float(np.asarray(z["intercept"]).reshape(-1)[0]))
        shapes = {"mean": head.mean.shape, "scale": head.scale.shape, "coef": head.coef.shape}
        artifact.require(head.coef.ndim == 1 and len(set(shapes.values())) == 1, path, f"the head's arrays do not fit together ({shapes})")
        finite = all(np.isfinite(a).all() for a in (head.mean, head.scale, head.coef)) and np.isfinite(head.intercept)
        artifact.require(bool(finite) and bool((head.scale > 0).all()), path, "the head holds non-finite numbers or a zero scale")
        return head


# --------------------------------------------------------------------------- evaluation


class LabelledRow(Protocol):
    """What evaluation reads of a scored row: its label and the reply slot it belongs to."""

    @property
    def label(self) -> int: ...
    @property
    def dialogue_id(self) -> str: ...
    @property
    def turn_index(self) -> int: ...


class HeldOut(BaseModel):
    """Figures on held-out dialogues only (their real replies and their negatives)."""

    dialogues: int
    pairs: int = Field(description="scored replies, real and negative")
    positives: int = Field(description="real replies among them")
    accuracy: float | None = Field(None, description="share of replies on the right side of P = 0.5")
    balanced_accuracy: float | None = Field(None, description="mean of the accuracy on real and on negative replies")
    roc_auc: float | None
    roc_auc_ci: list[float] | None = Field(None, description="95 % bootstrap interval over held-out dialogues")
    rank_accuracy: float | None = Field(None, description="share of (real, negative) reply pairs of one context where the real one scores higher (ties half)")
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


def _rnd(x: float | None) -> float | None:
    return None if x is None else round(float(x), 4)


def evaluate_pairs(pairs: Sequence[LabelledRow], scores: Sequence[float], resamples: int = 1000, seed: int = 0) -> HeldOut:
    """Accuracy, ROC-AUC (with a bootstrap interval over dialogues) and ranking of scored rows."""
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

    correct = [(x >= THRESHOLD) == (y == 1) for x, y in zip(s, labels)]
    return HeldOut(
        dialogues=len(by_dialogue),
        pairs=len(pairs),
        positives=len(pos),
        accuracy=_rnd(sum(correct) / len(correct)) if correct else None,
        balanced_accuracy=_rnd((sum(x >= THRESHOLD for x in pos) / len(pos) + sum(x < THRESHOLD for x in neg) / len(neg)) / 2) if pos and neg else None,
        roc_auc=_rnd(fast_auc(labels, s)),
        roc_auc_ci=bootstrap_ci(list(by_dialogue.values()), auc_of, resamples=resamples, seed=seed) if pos and neg else None,
        rank_accuracy=_rnd(sum(wins) / len(wins)) if wins else None,
        mean_p_real=_rnd(np.mean(pos)) if pos else None,
        mean_p_other=_rnd(np.mean(neg)) if neg else None,
    )


MIN_TRAIN_DIALOGUES = 10  # below this a head learns the calls it saw, not the kind of reply
MIN_HELDOUT_DIALOGUES = 5  # below this a held-out interval is as wide as the scale


def sample_warnings(train_dialogues: int, heldout: HeldOut | None) -> list[str]:
    """What a scorer's card must say about the calls behind it: too few to train on, nothing held
    out, or held-out figures that could not be computed. Kept in the card (`warnings`) and printed
    by the train commands, so a scorer trained on 2 calls never passes for a tested one."""
    warnings = []
    if train_dialogues < MIN_TRAIN_DIALOGUES:
        warnings.append(f"trained on {count(train_dialogues, 'dialogue')} (fewer than {MIN_TRAIN_DIALOGUES}): the head has seen too few calls to tell replies apart beyond them")
    if heldout is None:
        warnings.append("nothing held out: no held-out accuracy or ROC-AUC, so nothing says how well it scores calls it never saw")
    elif heldout.roc_auc is None:
        warnings.append(f"held-out ROC-AUC n/a: {count(heldout.dialogues, 'held-out dialogue')} gave only one kind of reply")
    elif heldout.dialogues < MIN_HELDOUT_DIALOGUES:
        warnings.append(f"held-out figures rest on {count(heldout.dialogues, 'dialogue')} (fewer than {MIN_HELDOUT_DIALOGUES}): their intervals are too wide to trust")
    return warnings


def corpus_digest(dialogues: Iterable[Dialogue]) -> str:
    """sha256 of the dialogues' canonical JSON in id order: names the exact corpus a scorer saw."""
    blob = hashlib.sha256()
    for d in sorted(dialogues, key=lambda d: d.id):
        blob.update(d.model_dump_json().encode() + b"\n")
    return blob.hexdigest()


def check_split(train_ids: Sequence[str], heldout_ids: Sequence[str], known: Iterable[str]) -> None:
    """Refuse overlapping train and held-out ids, or ids the data does not hold."""
    train_set, held_set = set(train_ids), set(heldout_ids)
    if overlap := sorted(train_set & held_set):
        raise InputError(f"train and held-out dialogues overlap ({len(overlap)}, e.g. {overlap[0]!r}): a held-out figure must come from unseen calls")
    if unknown := sorted((train_set | held_set) - set(known)):
        raise InputError(f"{len(unknown)} split ids are not in the corpus, e.g. {unknown[0]!r}")


# --------------------------------------------------------------------------- folders


@dataclass
class ScorerModel:
    """A fitted scorer in memory: its config, head and card; `save` writes the folder."""

    config: BaseModel
    head: Head
    card: dict[str, Any]

    @property
    def task(self) -> str:
        return str(self.card.get("task") or "coherence")

    def save(self, folder: Path | str) -> Path:
        """Write head.npz and the card into a temp folder beside `folder`, then move it in place."""
        target = Path(folder)
        card_file = CARD_FILES[self.task]
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            np.savez(tmp / HEAD_FILE, mean=self.head.mean, scale=self.head.scale, coef=self.head.coef, intercept=np.array([self.head.intercept]))
            (tmp / card_file).write_text(json.dumps(self.card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
            old = None
            if target.exists():
                if scorer_task(target) != self.task and any(target.iterdir()):
                    raise InputError(f"{target}: exists and is not a {self.task} scorer folder; choose another --out")
                old = target.with_name(f".{target.name}.old-{os.getpid()}")
                target.rename(old)
            tmp.rename(target)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return target


def scorer_task(folder: Path | str) -> str | None:
    """The task of a scorer folder, read from which card it holds; None when it holds none."""
    folder = Path(folder)
    found = [task for task, name in CARD_FILES.items() if (folder / name).is_file()]
    return found[0] if len(found) == 1 else None


def read_card(folder: Path, task: str, features: Sequence[str] | Callable[[dict[str, Any]], Sequence[str]], artifact: Artifact | None = None) -> dict[str, Any]:
    """The card of a `task` scorer folder, checked against this grouped-sim (format, encoder, features).

    `features` are the names this grouped-sim computes, or a function of the card giving them (a
    realism head with or without the reply vector). A folder with no card at all is not a scorer
    (the user pointed at the wrong folder); a card that is damaged or of another version is an
    ArtifactError with the command that rebuilds it."""
    artifact = artifact or scorer_artifact(folder, task)
    path = folder / CARD_FILES[task]
    if not path.is_file():
        raise InputError(f"{folder}: not a {task} scorer folder (no {CARD_FILES[task]}); train one with `grouped-sim {_train_command(task)}`")
    card = artifact.read_json(path)
    artifact.require(isinstance(card, dict) and card.get("format") == format_name(task), path, f"not a {task} scorer card (format should be {format_name(task)!r})")
    version = card.get("format_version")
    artifact.require(version == FORMAT_VERSION, path, f"scorer format version {version}, this grouped-sim reads {FORMAT_VERSION}")
    artifact.require(card.get("encoder") == ENCODER_NAME, path, f"trained over the encoder {card.get('encoder')!r}, but this grouped-sim embeds with {ENCODER_NAME!r}")
    with artifact.reading(path):
        expected = features(card) if callable(features) else features
    artifact.require(list(card.get("features") or []) == list(expected), path, "the scorer's features differ from this grouped-sim's")
    return card


def _train_command(task: str) -> str:
    return "coherence train" if task == "coherence" else "discriminator train --head"


def scorer_artifact(folder: Path, task: str, rebuild: str | None = None) -> Artifact:
    """A scorer folder as an artifact. Its owner may know how it is rebuilt (a sim folder's scorers
    come back with `fit`); otherwise it is the train command of its task, or a reinstall for the
    scorers shipped inside the package."""
    if rebuild is None:
        from grouped_sim.data import shipped_scorer_path

        shipped = shipped_scorer_path().parent.resolve()
        if folder.resolve().is_relative_to(shipped):
            rebuild = "reinstall grouped-sim (pip install --force-reinstall --no-deps grouped-sim): this scorer ships inside the package"
        elif task == "coherence":
            rebuild = f"grouped-sim coherence train --corpus CALLS.jsonl --out {folder}"
        else:
            rebuild = f"grouped-sim discriminator train --head --data PAIRS --out {folder}"
    return Artifact(f"{task} scorer", rebuild)


def check_width(folder: Path, head: Head, x: np.ndarray) -> None:
    """A head must have one weight per feature column (a hand-edited or foreign head.npz has not)."""
    if x.shape[0] and x.shape[1] != head.coef.shape[0]:
        raise InputError(f"{folder / HEAD_FILE}: head has {head.coef.shape[0]} weights for {x.shape[1]} features; retrain it")


class HeadScorer:
    """A saved head, loaded: `score(contexts, replies)` = the head's P for each pair.

    The coherence and realism scorers differ only in their task, config and features; reading the
    card, checking it, loading the head and predicting are this one piece. Contexts are the call so
    far as `grouped_sim.transcript` renders it. Distinct texts are embedded once per scorer.
    """

    task: ClassVar[str]
    config_model: ClassVar[type[BaseModel]]

    def __init__(self, folder: Path | str, embed_fn: EmbedFn | None = None, rebuild: str | None = None) -> None:
        """Load and check the folder; `rebuild` is how its owner makes it again (for the error a
        damaged folder gives), by default the train command of the task."""
        self.folder = Path(folder)
        artifact = scorer_artifact(self.folder, self.task, rebuild)
        self.card = read_card(self.folder, self.task, self.card_features, artifact)
        with artifact.reading(self.folder / CARD_FILES[self.task]):
            self.config: Any = self.config_model.model_validate(self.card["config"])
        self.head = Head.load(self.folder, artifact)
        self._emb = Embeddings(embed_fn)

    @staticmethod
    def card_features(card: dict[str, Any]) -> Sequence[str]:
        """The feature names this grouped-sim computes for a card (checked against the card's)."""
        raise NotImplementedError

    def features(self, contexts: list[str], replies: list[str]) -> np.ndarray:
        """The head's input for each (context, reply); raises ValueError when the counts differ."""
        raise NotImplementedError

    @property
    def name(self) -> str:
        return str(self.folder)

    def score(self, contexts: Sequence[str], replies: Sequence[str]) -> list[float]:
        x = self.features(list(contexts), list(replies))
        check_width(self.folder, self.head, x)
        return [float(p) for p in self.head.predict(x)]

    def anchored(self, dialogues: Sequence[Dialogue]) -> HeadScorer:
        """The same scorer: a MiniLM head reads each reply on its own (the judge's interface)."""
        return self

    def __call__(self, contexts: Sequence[str], replies: Sequence[str]) -> list[float]:
        return self.score(contexts, replies)
