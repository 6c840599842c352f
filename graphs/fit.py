"""`grouped-sim fit`: from a team's raw transcripts to a folder holding everything a simulation needs.

    corpus ─► split by dialogue ─┬─► train: stage labels, profiles, SOP store, fitted decision dynamics
                                 └─► held out (never fitted on): stage labels from the train tagger,
                                     profiles from the part of the call before any decision

The folder (a "sim folder"):

    fit.json          what was done: counts, profile sources, the dynamics fit and its statistics
    split.json        which dialogues were held out (by dialogue, seeded)
    taxonomy.yaml     the stage taxonomy the folder was built with
    annotated.jsonl   every dialogue with stage labels (given, or tagged)
    profiles.jsonl    one profile per dialogue: {id, split, source, domain, profile}
    sop_db/           the Chroma store of the training calls
    dynamics.json     the fitted decision dynamics (or the prior, and why)
    judge/            the coherence judge of this domain: the shipped judge (validated on two
                      domains, docs/judge.md) reading replies against contexts of the training
                      calls; it grades replies in report and probe
    coherence/        two MiniLM coherence scorers of this domain, trained on disjoint halves of the
                      training calls: picker/ chooses among best-of-N candidates; judge/ graded
                      replies before the judge above (a fit without judge/ still uses it)

Steps write atomically and are skipped when their output exists, so a killed fit resumes and a
rerun gives the same folder. A folder holding a fit of other input is refused.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, model_validator

from grouped_sim.artifacts import Artifact
from grouped_sim.corpus import iter_corpus_lines, read_corpus, write_corpus
from grouped_sim.discriminator.coherence import CARD_FILE, CoherenceConfig, CoherenceScorer, train_coherence
from grouped_sim.discriminator.judge import CARD_FILE as JUDGE_CARD
from grouped_sim.errors import InputError
from grouped_sim.graphs.dynamics import FittedDynamics, move_answers, propensity_of
from grouped_sim.graphs.fitting import CallFacts, base_rates, decision_move, fit_dynamics
from grouped_sim.graphs.manager import LightManager
from grouped_sim.io import iter_jsonl, write_json_atomic, write_jsonl
from grouped_sim.profiles.derive import derive_profile
from grouped_sim.profiles.presets import Presets, load_presets
from grouped_sim.graphs.plan import SimProfile, sample_profiles
from grouped_sim.schemas import Dialogue, Profile, Turn
from grouped_sim.sop_db.store import SOPStore, is_store_folder
from grouped_sim.sop_db.store import build_store as build_chain_store
from grouped_sim.sop_db.tagger import KnnStageTagger, apply_labels
from grouped_sim.sop_db.taxonomy import Taxonomy, load_taxonomy

FIT_VERSION = 1
DECISION_FIELDS = ("buy_propensity", "difficulty")  # a given profile's fields that carry the decision
MIN_TRAIN = 2


class FitSettings(BaseModel):
    """What shapes a fit (hashed: a folder never mixes two fits)."""

    corpus: str
    holdout: float = Field(0.2, ge=0.0, lt=1.0)
    taxonomy: str | None = None
    seed: int = 0
    top_k: int = Field(4, ge=1, le=50)
    extractor: str | None = Field(None, description="chat-model spec of an LLM profile extractor; None: derived profiles")


class ProfileRecord(BaseModel):
    """One line of profiles.jsonl."""

    id: str
    split: str  # train | holdout
    source: str  # given | llm | derived | failed
    domain: str
    profile: Profile | None = None
    reason: str | None = None


class FitRecord(BaseModel):
    """What a reader of fit.json relies on (the file holds more: counts, profile sources, stages)."""

    version: int
    settings: FitSettings
    settings_digest: str
    train: int = Field(ge=0)
    holdout: int = Field(ge=0)
    coherence: dict[str, Any] = Field(default_factory=dict, description="per role (judge, picker): the MiniLM scorers, trained or why not")
    judge: dict[str, Any] = Field(default_factory=dict, description="the coherence judge of this domain: made or why not")


class SplitRecord(BaseModel):
    """split.json: which dialogues were fitted on and which were held out."""

    train: list[str]
    holdout: list[str]

    @model_validator(mode="after")
    def _disjoint(self) -> SplitRecord:
        if overlap := set(self.train) & set(self.holdout):
            raise ValueError(f"{len(overlap)} dialogues are both trained on and held out, e.g. {sorted(overlap)[0]!r}")
        return self


class SimFolder:
    """Paths of a sim folder, and what a simulation reads from it, each part checked as it is read.

    Every part is an artifact (grouped_sim.artifacts): damaged, foreign or inconsistent with the
    rest, it is a clear error naming the file and the way to rebuild it. `check()` reads them all
    up front, so `simulate --sim`, `serve --sim` and `probe` refuse a broken folder before they
    load a model or write anything.
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.fit = self.root / "fit.json"
        self.split = self.root / "split.json"
        self.taxonomy = self.root / "taxonomy.yaml"
        self.annotated = self.root / "annotated.jsonl"
        self.profiles = self.root / "profiles.jsonl"
        self.store = self.root / "sop_db"
        self.dynamics = self.root / "dynamics.json"
        self.coherence = self.root / "coherence"
        self.coherence_judge = self.coherence / "judge"
        self.coherence_picker = self.coherence / "picker"
        self.judge = self.root / "judge"

    # ---- the parts, as artifacts

    def _corpus(self) -> str:
        """The corpus of the fit, for the rebuild command (a placeholder when fit.json cannot say)."""
        try:
            return str(json.loads(self.fit.read_text(encoding="utf-8"))["settings"]["corpus"])
        except (OSError, ValueError, KeyError, TypeError):
            return "CALLS.jsonl"

    def rebuild(self, part: Path) -> str:
        """How to make one part again: `fit` redoes a missing part of a finished fit and keeps the
        rest; fit.json itself is the record that the rest belongs together, so without it: anew."""
        if part.name in ("fit.json", "fit.partial.json"):
            return f"grouped-sim fit --corpus {self._corpus()} --out NEW_FOLDER (without its fit.json the rest of {self.root} cannot be trusted)"
        return f"remove {part}, then rerun grouped-sim fit --corpus {self._corpus()} --out {self.root} (it redoes only what is missing)"

    def artifact(self, part: Path, kind: str) -> Artifact:
        return Artifact(f"sim folder's {kind}", self.rebuild(part))

    def check(self) -> FitRecord:
        """Every part read and checked against the others (cheap: no model, no store opened),
        or a clear error; returns the fit's record."""
        if not self.fit.is_file():
            raise InputError(f"{self.root}: not a sim folder (no fit.json); make one with grouped-sim fit --corpus FILE --out {self.root}")
        record = self.read_fit()
        split = self.read_split()
        self.load_taxonomy()
        self.load_dynamics()
        profiles = {r.id for r in self.load_profiles(None)}
        annotated = self.annotated_dialogues()
        ids = {d.id for d in annotated}
        every = set(split.train) | set(split.holdout)
        for part, got in ((self.annotated, ids), (self.profiles, profiles)):
            self.artifact(part, part.name).require(got == every, part, f"holds {len(got)} dialogues, but split.json names {len(every)} ({len(got ^ every)} differ)")
        store = self.artifact(self.store, "SOP store")
        store.require(is_store_folder(self.store), self.store, "no SOP store here")
        for role, folder in (("judge", self.coherence_judge), ("picker", self.coherence_picker)):
            if (record.coherence.get(role) or {}).get("trained"):
                self.artifact(folder, f"coherence {role}").require((folder / CARD_FILE).is_file(), folder, "missing, though fit.json says it was trained")
                self.scorer_at(folder)
        if record.judge.get("made"):
            self.artifact(self.judge, "coherence judge").require((self.judge / JUDGE_CARD).is_file(), self.judge, "missing, though fit.json says it was made")
            self.coherence_scorer()
        return record

    def read_fit(self) -> FitRecord:
        return self.artifact(self.fit, "fit summary").read_model(self.fit, FitRecord)

    def read_split(self) -> SplitRecord:
        return self.artifact(self.split, "split").read_model(self.split, SplitRecord)

    def load_taxonomy(self) -> Taxonomy:
        with self.artifact(self.taxonomy, "taxonomy").reading(self.taxonomy):
            return load_taxonomy(self.taxonomy)

    def load_dynamics(self) -> FittedDynamics:
        return self.artifact(self.dynamics, "fitted dynamics").read_model(self.dynamics, FittedDynamics)

    def load_profiles(self, split: str | None) -> list[ProfileRecord]:
        """The profile records of one split (None: all)."""
        with self.artifact(self.profiles, "profiles").reading(self.profiles):
            records = [ProfileRecord.model_validate(raw) for _, raw in iter_jsonl(self.profiles)]
        return [r for r in records if split is None or r.split == split]

    def annotated_dialogues(self) -> list[Dialogue]:
        with self.artifact(self.annotated, "annotated calls").reading(self.annotated):
            return read_corpus(self.annotated)

    def scorer_at(self, folder: Path) -> CoherenceScorer:
        return CoherenceScorer(folder, rebuild=self.rebuild(folder))

    def coherence_scorer(self) -> Any:
        """What grades coherence in this domain: the judge (the shipped one reading replies against
        this fit's training calls), else the MiniLM judge of an older fit, else None."""
        if (self.judge / JUDGE_CARD).is_file():
            from grouped_sim.discriminator.judge import CoherenceJudge

            return CoherenceJudge(self.judge, rebuild=self.rebuild(self.judge))
        return self.scorer_at(self.coherence_judge) if (self.coherence_judge / CARD_FILE).is_file() else None

    def picker_scorer(self) -> CoherenceScorer | None:
        """The domain's coherence picker (chooses best-of-N candidates; trained on other calls than the judge)."""
        return self.scorer_at(self.coherence_picker) if (self.coherence_picker / CARD_FILE).is_file() else None

    def digest(self) -> str:
        """The fit's identity: changes when anything it was built from changes (for dialogue ids)."""
        return self.read_fit().settings_digest


def settings_digest(settings: FitSettings) -> str:
    corpus = Path(settings.corpus).read_bytes()
    taxonomy = Path(settings.taxonomy).read_bytes() if settings.taxonomy else b""
    blob = json.dumps({**settings.model_dump(), "corpus": hashlib.sha256(corpus).hexdigest(), "taxonomy": hashlib.sha256(taxonomy).hexdigest(), "version": FIT_VERSION}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def split_ids(ids: list[str], share: float, seed: int) -> tuple[list[str], list[str]]:
    """(train, held out): a seeded shuffle of dialogue ids, the first `share` of them held out."""
    order = sorted(ids)
    random.Random(seed).shuffle(order)
    cut = round(len(order) * share)
    held = set(order[:cut])
    return [i for i in ids if i not in held], [i for i in ids if i in held]


def read_input(settings: FitSettings) -> tuple[list[Dialogue], Taxonomy]:
    """The corpus and taxonomy, checked before anything is written."""
    taxonomy = load_taxonomy(settings.taxonomy)
    dialogues = read_corpus(settings.corpus)
    if not dialogues:
        raise InputError(f"{settings.corpus}: no dialogues in the corpus")
    for line, dialogue in iter_corpus_lines(settings.corpus):
        for index, turn in enumerate(dialogue.turns):
            taxonomy.check(turn.sop_stage, f"{settings.corpus}:{line}: turn {index}")
    return dialogues, taxonomy


def annotate(dialogues: list[Dialogue], train_ids: set[str], taxonomy: Taxonomy) -> tuple[list[Dialogue], dict[str, Any]]:
    """Stage labels for every turn: the given ones, the rest from a kNN tagger over the labelled
    training turns (and the taxonomy's examples): held-out labels never teach the tagger."""
    if all(t.sop_stage for d in dialogues for t in d.turns):
        return dialogues, {"given": sum(len(d.turns) for d in dialogues), "tagged": 0}
    labelled = [d for d in dialogues if d.id in train_ids and any(t.sop_stage for t in d.turns)]
    if not labelled and not any(s.examples for s in taxonomy.stages):
        raise InputError("no stage labels in the corpus and no examples in the taxonomy: give labels, or a --taxonomy whose stages have examples")
    tagger = KnnStageTagger.from_dialogues(labelled, k=5, taxonomy=taxonomy)
    out = [apply_labels(d, tagger.label_dialogue(d)) if any(t.sop_stage is None for t in d.turns) else d for d in dialogues]
    tagged = [t for d in out for t in d.turns if t.meta.get("stage_source") == "knn"]
    confidence = sum(t.meta["stage_confidence"] for t in tagged) / len(tagged) if tagged else None
    stats = {"given": sum(len(d.turns) for d in out) - len(tagged), "tagged": len(tagged), "mean_tag_confidence": None if confidence is None else round(confidence, 3)}
    return out, stats


def pre_decision(dialogue: Dialogue) -> Dialogue:
    """The call up to the end of the first third of the customer's turns (what a probe may know)."""
    keep = max(1, math.ceil(len(dialogue.customer_turns()) / 3))
    seen, cut = 0, len(dialogue.turns)
    for index, turn in enumerate(dialogue.turns):
        seen += turn.role == "customer"
        if seen == keep:
            cut = index + 1
            break
    return dialogue.model_copy(update={"turns": dialogue.turns[:cut], "outcome": "unknown"})


def profile_for(dialogue: Dialogue, split: str, presets: Presets, extract: Callable[[Dialogue], Profile | None] | None) -> ProfileRecord:
    """One customer's profile: given (decision fields removed for held-out calls), else an LLM's
    (when one is given and passes its checks), else derived from their own words."""
    held_out = split == "holdout"
    if dialogue.profile is not None:
        profile = dialogue.profile.model_copy(update={f: None for f in DECISION_FIELDS}) if held_out else dialogue.profile
        return ProfileRecord(id=dialogue.id, split=split, source="given", domain=dialogue.domain, profile=profile)
    source = pre_decision(dialogue) if held_out else dialogue.model_copy(update={"outcome": "unknown"})
    if extract is not None and (extracted := extract(source)) is not None:
        return ProfileRecord(id=dialogue.id, split=split, source="llm", domain=dialogue.domain, profile=extracted.model_copy(update={f: None for f in DECISION_FIELDS}))
    profile = derive_profile(dialogue, presets, pre_decision=held_out)
    return ProfileRecord(id=dialogue.id, split=split, source="derived", domain=dialogue.domain, profile=profile)


def build_store(folder: SimFolder, train: list[Dialogue], taxonomy: Taxonomy, on_progress: Callable[[int], None] | None) -> dict[str, int]:
    """The SOP store of the training calls, built beside the folder and moved into place (kept on a rerun)."""
    if folder.store.is_dir():
        store = SOPStore(folder.store, taxonomy=taxonomy, rebuild=folder.rebuild(folder.store))
        return {"chains": store.count(), "annotated_turns": store.turns.count()}
    return build_chain_store(folder.store, train, on_progress=on_progress, taxonomy=taxonomy)


def call_facts(train: list[Dialogue], store: SOPStore, taxonomy: Taxonomy, top_k: int, rates: dict[str, float]) -> list[CallFacts]:
    """What the dynamics fit needs of each training call; its propensity comes from its K_p and its
    stages from the manager's tagger (its own moves left out of the vote), as in simulation."""
    tagger = LightManager(store, taxonomy=taxonomy)
    facts = []
    for d in train:
        chains = [c for c in store.retrieve(d.profile.as_text(), k=top_k + 1, domain=d.domain) if c.id != d.id][:top_k]  # type: ignore[union-attr]
        archetype = d.profile.archetype if d.profile else None
        facts.append(CallFacts(id=d.id, stages=tagger.script_stages(d.turns, leave_out=d.id), archetype=archetype, propensity=propensity_of([c.outcome for c in chains], rates), outcome=d.outcome.value, decision_move=decision_move(d, taxonomy), answers=move_answers(d.turns)))
    return facts


def load_split(folder: SimFolder, dialogues: list[Dialogue], settings: FitSettings) -> tuple[list[str], list[str]]:
    """The split recorded in the folder, or a new one (written before anything is fitted)."""
    if folder.split.is_file():
        recorded = folder.read_split()
        return recorded.train, recorded.holdout
    train, held = split_ids([d.id for d in dialogues], settings.holdout, settings.seed)
    write_json_atomic(folder.split, {"seed": settings.seed, "holdout_share": settings.holdout, "train": train, "holdout": held})
    return train, held


def build_profiles(folder: SimFolder, dialogues: list[Dialogue], held: set[str], extract: Callable[[Dialogue], Profile | None] | None, on_progress: Callable[[int], None] | None) -> list[ProfileRecord]:
    """profiles.jsonl, one record per dialogue (appended as made, so an interrupted fit resumes)."""
    from grouped_sim.io import JsonlAppender, iter_cache

    done = {r.id: r for r in iter_cache(folder.profiles, ProfileRecord)} if folder.profiles.is_file() else {}
    presets = load_presets()
    with JsonlAppender(folder.profiles) as sink:
        for d in dialogues:
            if d.id not in done:
                done[d.id] = profile_for(d, "holdout" if d.id in held else "train", presets, extract)
                sink.write_record(done[d.id])
            if on_progress:
                on_progress(1)
    return [done[d.id] for d in dialogues]


def write_taxonomy(folder: SimFolder, taxonomy: Taxonomy) -> None:
    if not folder.taxonomy.is_file():
        tmp = folder.taxonomy.with_suffix(".yaml.tmp")
        tmp.write_text(yaml.safe_dump(taxonomy.model_dump(mode="json"), sort_keys=False, allow_unicode=True), encoding="utf-8")
        tmp.replace(folder.taxonomy)


@dataclass
class FitProgress:
    """Progress hooks: `start(step, total)` when a step begins, then `advance(n)`."""

    start: Callable[[str, int], None] = lambda name, total: None
    advance: Callable[[int], None] = lambda n: None


class FitInput(BaseModel):
    """A fit's checked input: nothing is written before this exists."""

    model_config = {"arbitrary_types_allowed": True}

    settings: FitSettings
    digest: str
    dialogues: list[Dialogue]
    taxonomy: Taxonomy


def check_fit(settings: FitSettings, out: Path | str) -> FitInput:
    """Every input error of a fit (corpus, taxonomy, folder), before anything is written."""
    dialogues, taxonomy = read_input(settings)
    digest = settings_digest(settings)
    check_folder(SimFolder(out), digest)
    train, _ = split_ids([d.id for d in dialogues], settings.holdout, settings.seed)
    if len(train) < MIN_TRAIN:
        raise InputError(f"{settings.corpus}: --holdout {settings.holdout} leaves {len(train)} of {len(dialogues)} dialogues to fit on; at least {MIN_TRAIN} are needed")
    return FitInput(settings=settings, digest=digest, dialogues=dialogues, taxonomy=taxonomy)


def run_fit(settings: FitSettings | FitInput, out: Path | str, extract: Callable[[Dialogue], Profile | None] | None = None, progress: FitProgress | None = None) -> dict[str, Any]:
    """Every step of `fit`, resumable; returns (and writes) fit.json."""
    checked = settings if isinstance(settings, FitInput) else check_fit(settings, out)
    settings, digest, dialogues, taxonomy = checked.settings, checked.digest, checked.dialogues, checked.taxonomy
    progress = progress or FitProgress()
    folder = SimFolder(out)
    if (done := finished_fit(folder, digest)) is not None:
        return done
    folder.root.mkdir(parents=True, exist_ok=True)
    write_json_atomic(folder.root / "fit.partial.json", {"settings": settings.model_dump(), "settings_digest": digest})
    train_ids, held_ids = load_split(folder, dialogues, settings)
    write_taxonomy(folder, taxonomy)
    annotated, stage_stats = annotate(dialogues, set(train_ids), taxonomy)
    write_corpus(folder.annotated, annotated)
    progress.start("profiles", len(annotated))
    records = build_profiles(folder, annotated, set(held_ids), extract, progress.advance)
    by_id = {r.id: r for r in records}
    train = [d.model_copy(update={"profile": by_id[d.id].profile}) for d in annotated if d.id in set(train_ids)]
    progress.start("SOP store", len(train))
    store_counts = build_store(folder, train, taxonomy, progress.advance)
    dynamics = fit_or_load_dynamics(folder, train, taxonomy, settings)
    progress.start("coherence scorer", 1)
    coherence = fit_or_load_coherence(folder, annotated, train_ids, held_ids, settings)
    judge = fit_or_load_judge(folder, [d for d in annotated if d.id in set(train_ids)])
    progress.advance(1)
    summary = fit_summary(settings, digest, train_ids, held_ids, records, stage_stats, store_counts, dynamics)
    summary["coherence"] = coherence
    summary["judge"] = judge
    write_json_atomic(folder.fit, summary)
    (folder.root / "fit.partial.json").unlink(missing_ok=True)
    return summary


def finished_fit(folder: SimFolder, digest: str) -> dict[str, Any] | None:
    """fit.json of a finished fit of this input, every part checked: a rerun then writes nothing
    (not even Chroma's bookkeeping of an opened store). None when a part is missing (removed to be
    redone, or never written): the fit resumes and redoes only that."""
    if not folder.fit.is_file() or (folder.root / "fit.partial.json").is_file():
        return None
    record = folder.read_fit()
    if record.settings_digest != digest:
        return None  # check_folder refuses it
    parts = [folder.split, folder.taxonomy, folder.annotated, folder.profiles, folder.store, folder.dynamics]
    parts += [f for role, f in (("judge", folder.coherence_judge), ("picker", folder.coherence_picker)) if (record.coherence.get(role) or {}).get("trained")]
    parts += [folder.judge] if record.judge.get("made") else []
    if not all(p.exists() for p in parts):
        return None
    folder.check()
    return folder.artifact(folder.fit, "fit summary").read_json(folder.fit)  # type: ignore[no-any-return]


def check_folder(folder: SimFolder, digest: str) -> None:
    """Refuse a folder that holds another fit (or anything else); an unfinished fit of this input resumes."""
    for marker in (folder.fit, folder.root / "fit.partial.json"):
        if not marker.is_file():
            continue
        artifact = folder.artifact(marker, "fit record")
        recorded = artifact.read_json(marker)
        artifact.require(isinstance(recorded, dict), marker, "not a JSON object")
        if recorded.get("settings_digest") != digest:
            raise InputError(f"{folder.root}: holds a fit of another corpus or other settings; use a new --out folder")
    if folder.root.is_dir() and any(folder.root.iterdir()) and not (folder.fit.is_file() or (folder.root / "fit.partial.json").is_file()):
        raise InputError(f"{folder.root}: exists and is not a sim folder; use a new --out folder")


def fit_or_load_dynamics(folder: SimFolder, train: list[Dialogue], taxonomy: Taxonomy, settings: FitSettings) -> FittedDynamics:
    if folder.dynamics.is_file():
        return folder.load_dynamics()
    store = SOPStore(folder.store, taxonomy=taxonomy, rebuild=folder.rebuild(folder.store))
    rates = base_rates([d.outcome.value for d in train])
    dynamics = fit_dynamics(call_facts(train, store, taxonomy, settings.top_k, rates), taxonomy, seed=settings.seed)
    write_json_atomic(folder.dynamics, dynamics.model_dump(mode="json"))
    return dynamics


def fit_or_load_coherence(folder: SimFolder, annotated: list[Dialogue], train_ids: list[str], held_ids: list[str], settings: FitSettings) -> dict[str, Any]:
    """The domain's two coherence scorers, each trained on half of the training calls (alternately,
    in id order) and both measured on the held-out calls: the judge grades, the picker chooses, and
    neither has seen a reply it scores in probe. A corpus too small to learn from is recorded, not
    fatal: the fit works without them (best-of-N then falls back to the shipped picker)."""
    ordered = sorted(train_ids)
    halves = {"judge": (folder.coherence_judge, ordered[0::2]), "picker": (folder.coherence_picker, ordered[1::2])}
    summary: dict[str, Any] = {}
    for role, (target, ids) in halves.items():
        if not (target / CARD_FILE).is_file():
            try:
                model = train_coherence(annotated, ids, held_ids, CoherenceConfig(seed=settings.seed), source=settings.corpus, split_rule=f"{role}: every other training call of the fit (split.json), in id order")
            except InputError as exc:
                summary[role] = {"trained": False, "reason": str(exc)}
                continue
            model.save(target)
        card = folder.scorer_at(target).card
        summary[role] = {"trained": True, "n": card["n"], "heldout": card["heldout"], "warnings": card.get("warnings") or []}
    return summary


def fit_or_load_judge(folder: SimFolder, train: list[Dialogue]) -> dict[str, Any]:
    """The coherence judge of this domain: the shipped head and floor (validated on two domains,
    docs/judge.md), reading each reply against contexts of this fit's training calls. Nothing is
    read here, so a fit stays quick; `probe` and `report` pay for the reading."""
    from grouped_sim.discriminator.judge import anchored_copy, shipped_judge_path

    if not (folder.judge / JUDGE_CARD).is_file():
        try:
            anchored_copy(shipped_judge_path(), train, folder.judge, "anchors: contexts of this fit's training calls (split.json)")
        except InputError as exc:
            return {"made": False, "reason": str(exc)}
    return {"made": True, "anchors_from": "training calls"}


def fit_summary(
    settings: FitSettings, digest: str, train_ids: list[str], held_ids: list[str], records: list[ProfileRecord], stage_stats: dict[str, Any], store_counts: dict[str, int], dynamics: FittedDynamics
) -> dict[str, Any]:
    sources = Counter(r.source for r in records)
    return {
        "version": FIT_VERSION,
        "settings": settings.model_dump(),
        "settings_digest": digest,
        "train": len(train_ids),
        "holdout": len(held_ids),
        "profiles": {k: sources.get(k, 0) for k in ("given", "llm", "derived", "failed")},
        "stages": {"taxonomy": settings.taxonomy or "built-in", **stage_stats},
        "store": store_counts,
        "dynamics": {
            "fitted": dynamics.fitted,
            "estimator": dynamics.estimator,
            "reason": dynamics.reason,
            "statistics": dynamics.statistics.model_dump() if dynamics.statistics else None,
            "base_rates": dynamics.base_rates,
        },
    }


def sim_profiles(folder: SimFolder, n: int, seed: int) -> list[SimProfile]:
    """N of the training customers' profiles, archetypes in turn (as `simulate` samples a corpus)."""
    records = folder.load_profiles("train")
    stand_ins = [Dialogue(id=r.id, domain=r.domain, turns=[Turn(role="customer", text="-")], profile=r.profile) for r in records if r.profile is not None]
    return sample_profiles(stand_ins, n, seed)
