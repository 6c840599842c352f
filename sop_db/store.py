"""The behaviour-chain store M_SOP = {(φ(p_i), H_i)} in Chroma.

Two collections live in one Chroma database:

- `behaviour_chains`: one record per dialogue, keyed by dialogue id, embedded on the customer's
  profile text; the stage-annotated chain of (salesman move, customer reply, stage) rides along as
  metadata. Retrieval by profile gives K_p (eq. 8 of the paper).
- `annotated_turns`: one record per salesman move with the stage of the customer's reply, embedded
  on the move. The light manager tags a new salesman move by a vote of its nearest neighbours, and
  reads what similar customers said at that stage.

Our MiniLM embedding function is registered with Chroma under a fixed name, so a collection reopens
in a new process with it and Chroma's own default (which downloads a model) never runs.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
from chromadb.utils.embedding_functions import register_embedding_function
from pydantic import BaseModel, Field

from grouped_sim.embeddings import ENCODER_NAME, embed_list_stored
from grouped_sim.artifacts import Artifact
from grouped_sim.errors import GroupedSimError, InputError
from grouped_sim.schemas import Dialogue
from grouped_sim.sop_db.taxonomy import Taxonomy, load_taxonomy

CHAINS = "behaviour_chains"
TURNS = "annotated_turns"
EMBEDDING_FUNCTION_NAME = "grouped-sim-minilm"


class StoreError(GroupedSimError):
    """The SOP store could not be opened or used (blamed on the store in run failures)."""


@register_embedding_function
class MiniLMEmbeddingFunction(EmbeddingFunction[Documents]):
    """Chroma adapter over grouped_sim.embeddings: the same φ everywhere in the project."""

    def __init__(self) -> None:
        pass

    def __call__(self, input: Documents) -> Embeddings:
        """Documents (a batch) are kept on disk as a whole list (`embed_list_stored`), so a corpus's
        chains and moves are encoded once per machine and come back bit for bit as encoded; a
        query (one text) goes through `embed`'s query path, which gives a text one vector always."""
        return [row for row in embed_list_stored(list(input))]

    @staticmethod
    def name() -> str:
        return EMBEDDING_FUNCTION_NAME

    def get_config(self) -> dict[str, Any]:
        return {"encoder": ENCODER_NAME}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> MiniLMEmbeddingFunction:
        return MiniLMEmbeddingFunction()

    def default_space(self) -> str:  # type: ignore[override]
        return "cosine"

    def supported_spaces(self) -> list[str]:  # type: ignore[override]
        return ["cosine"]


class ChainStep(BaseModel):
    salesman: str
    customer: str
    stage: str | None = None


class BehaviourChain(BaseModel):
    """One stored dialogue as the SOP engine sees it."""

    id: str
    domain: str
    archetype: str | None = None
    outcome: str
    profile_text: str
    steps: list[ChainStep]
    distance: float | None = None

    def customer_lines_at(self, stage: str) -> list[str]:
        return [s.customer for s in self.steps if s.stage == stage and s.customer]

    def exchanges_at(self, stage: str) -> list[Exchange]:
        """The steps of this chain at `stage` that a customer answered, with their ids."""
        return [
            Exchange(id=f"{self.id}:{i}", salesman=s.salesman, customer=s.customer, stage=s.stage)
            for i, s in enumerate(self.steps)
            if s.stage == stage and s.customer
        ]


class Exchange(BaseModel):
    """One real exchange: a salesman move, the customer's reply, its stage, and where it came from."""

    id: str = Field(description="dialogue id and step index, 'DIALOGUE:STEP'")
    salesman: str
    customer: str
    stage: str | None = None


LEAVE_OUT_SLACK = 64  # neighbours asked for beyond k when a call's own moves are left out of a vote


class StageVote(BaseModel):
    """The tagger's answer: the winning stage, its share of the vote, and the neighbours behind it."""

    stage: str
    confidence: float = Field(ge=0.0, le=1.0)
    neighbours: list[str] = Field(default_factory=list)
    matches: list[Exchange] = Field(default_factory=list, description="neighbours at the winning stage that a real customer answered")

    @property
    def replies(self) -> list[str]:
        """What real customers answered to the matching moves."""
        return [m.customer for m in self.matches]


def derive_profile_text(dialogue: Dialogue) -> str:
    """A profile summary for dialogues that came without one: the customer's own words and the outcome."""
    if dialogue.profile is not None:
        return dialogue.profile.as_text()
    said = [t.text for t in dialogue.customer_turns() if t.text][:4]
    quoted = " / ".join(f'"{s}"' for s in said)
    return f"A customer in a {dialogue.domain} sales call whose call ended as {dialogue.outcome.value}. They said: {quoted}."


def chain_steps(dialogue: Dialogue) -> list[ChainStep]:
    """Pair each salesman move with the customer reply that follows it."""
    steps: list[ChainStep] = []
    pending: str | None = None
    for turn in dialogue.turns:
        if turn.role == "salesman":
            if pending is not None:
                steps.append(ChainStep(salesman=pending, customer="", stage=None))
            pending = turn.text
        else:
            steps.append(ChainStep(salesman=pending or "", customer=turn.text, stage=turn.sop_stage))
            pending = None
    if pending is not None:
        steps.append(ChainStep(salesman=pending, customer="", stage=None))
    return steps


def _archetype(dialogue: Dialogue) -> str:
    if dialogue.profile is not None and dialogue.profile.archetype:
        return dialogue.profile.archetype
    return str(dialogue.meta.get("archetype") or "")


STORE_FILE = "chroma.sqlite3"  # what makes a folder a Chroma store


def is_store_folder(path: Path) -> bool:
    return (path / STORE_FILE).is_file()


def _open_client(location: str | Path) -> Any:
    import chromadb
    from chromadb.config import Settings

    settings = Settings(anonymized_telemetry=False)
    text = str(location)
    if text.startswith(("http://", "https://")):
        from urllib.parse import urlparse

        url = urlparse(text)
        try:
            return chromadb.HttpClient(
                host=url.hostname or "localhost",
                port=url.port or (443 if url.scheme == "https" else 8000),
                ssl=url.scheme == "https",
                settings=settings,
            )
        except Exception as exc:  # chromadb raises plain ValueError/ConnectionError here
            raise StoreError(f"{text}: cannot reach the Chroma server: {exc}") from exc
    path = Path(location)
    if path.exists() and not path.is_dir():
        raise InputError(f"{path}: the SOP store path is a file, expected a folder")
    try:
        return chromadb.PersistentClient(path=str(path), settings=settings)
    except Exception:
        _forget_client(str(path))
        raise


def _forget_client(path: str) -> None:
    """Chroma caches one client per folder before it has started; one that failed to start (a
    damaged database) would answer every later open in this process with an AttributeError.
    Forget it, so the next open (of the repaired folder, or to report the damage again) starts afresh."""
    from chromadb.api.shared_system_client import SharedSystemClient

    SharedSystemClient._identifier_to_system.pop(path, None)
    SharedSystemClient._identifier_to_refcount.pop(path, None)


class SOPStore:
    """A handle on the two collections; `create=False` refuses to invent an empty store."""

    def __init__(self, location: str | Path, create: bool = False, taxonomy: Taxonomy | None = None, rebuild: str | None = None) -> None:
        """Open (or with `create`, make) a store; `rebuild` is how its owner makes it again, for
        the error a damaged store gives (a sim folder's store comes back with `fit`)."""
        self.location = str(location)
        self.taxonomy = taxonomy or load_taxonomy()
        is_url = self.location.startswith(("http://", "https://"))
        if not create and not is_url and not is_store_folder(Path(location)):
            # Checked before Chroma opens the folder: opening one creates chroma.sqlite3, and a
            # read-only command must never turn a folder it was pointed at into an empty store.
            what = "a file" if Path(location).is_file() else "not a store" if Path(location).is_dir() else "no such folder"
            raise InputError(f"{location}: no SOP store here ({what}); build one with: grouped-sim sop build --corpus FILE --db {location}")
        if is_url:
            self._open(create)
            return
        if Path(location).exists() and not Path(location).is_dir():
            raise InputError(f"{location}: the SOP store path is a file, expected a folder")
        from chromadb.errors import ChromaError

        artifact = Artifact("SOP store", rebuild or f"grouped-sim sop build --corpus CALLS.jsonl --db NEW_FOLDER (or remove {location} first)")
        with artifact.reading(location, also=(ChromaError,)):  # a database file cut short or foreign
            self._open(create)

    def _open(self, create: bool) -> None:
        location = self.location
        self.client = _open_client(location)
        if create:
            ef = MiniLMEmbeddingFunction()
            space = {"hnsw": {"space": "cosine"}}
            self.chains = self.client.get_or_create_collection(CHAINS, embedding_function=ef, configuration=space)
            self.turns = self.client.get_or_create_collection(TURNS, embedding_function=ef, configuration=space)
        else:
            try:
                # No embedding function passed: Chroma rebuilds ours from the stored config.
                self.chains = self.client.get_collection(CHAINS)
                self.turns = self.client.get_collection(TURNS)
            except Exception as exc:
                raise InputError(f"{location}: not a grouped-sim SOP store ({exc}); build one with grouped-sim sop build") from exc
        for collection in (self.chains, self.turns):
            # Chroma embeds with the function persisted in the collection's configuration; make sure
            # it is ours, so its download-on-first-use default can never run.
            ef = collection.configuration.get("embedding_function")
            if not isinstance(ef, MiniLMEmbeddingFunction):
                raise StoreError(f"{location}: collection {collection.name!r} reopened with {type(ef).__name__}, not {EMBEDDING_FUNCTION_NAME}")

    # ---- writing -------------------------------------------------------------------------

    def upsert_dialogues(self, dialogues: Sequence[Dialogue], on_progress: Callable[[int], None] | None = None, batch: int = 32) -> int:
        """Add or replace dialogues by id; rebuilding from the same corpus leaves the same store."""
        for index, dialogue in enumerate(dialogues, start=1):
            for t_index, turn in enumerate(dialogue.turns):
                self.taxonomy.check(turn.sop_stage, f"dialogue {dialogue.id}, turn {t_index}")
        for start in range(0, len(dialogues), batch):
            chunk = dialogues[start : start + batch]
            self._upsert_chains(chunk)
            self._upsert_turns(chunk)
            if on_progress:
                on_progress(len(chunk))
        self._upsert_taxonomy_examples()
        return len(dialogues)

    def _upsert_chains(self, dialogues: Sequence[Dialogue]) -> None:
        ids, docs, metas = [], [], []
        for d in dialogues:
            steps = chain_steps(d)
            meta: dict[str, Any] = {
                "domain": d.domain,
                "archetype": _archetype(d),
                "outcome": d.outcome.value,
                "n_steps": len(steps),
                "chain": json.dumps([s.model_dump() for s in steps], ensure_ascii=False),
                "has_profile": d.profile is not None,
            }
            for stage in {s.stage for s in steps if s.stage}:
                meta[f"stage_{stage}"] = True
            ids.append(d.id)
            docs.append(derive_profile_text(d))
            metas.append(meta)
        self.chains.upsert(ids=ids, documents=docs, metadatas=metas)

    def _upsert_turns(self, dialogues: Sequence[Dialogue]) -> None:
        ids, docs, metas = [], [], []
        for d in dialogues:
            for index, step in enumerate(chain_steps(d)):
                if not step.salesman or not step.stage:
                    continue
                ids.append(f"{d.id}:{index}")
                docs.append(step.salesman)
                metas.append({"stage": step.stage, "customer": step.customer, "dialogue_id": d.id, "domain": d.domain, "archetype": _archetype(d)})
        if ids:
            self.turns.upsert(ids=ids, documents=docs, metadatas=metas)

    def _upsert_taxonomy_examples(self) -> None:
        ids, docs, metas = [], [], []
        for stage in self.taxonomy.stages:
            for i, example in enumerate(stage.examples):
                ids.append(f"taxonomy:{stage.id}:{i}")
                docs.append(example)
                metas.append({"stage": stage.id, "customer": "", "dialogue_id": "", "domain": "", "archetype": ""})
        if ids:
            self.turns.upsert(ids=ids, documents=docs, metadatas=metas)

    # ---- reading -------------------------------------------------------------------------

    def count(self) -> int:
        return self.chains.count()

    def has_domain(self, domain: str) -> bool:
        """Whether any behaviour chain comes from a call of this domain (retrieval filters by it)."""
        return bool(self.chains.get(where={"domain": domain}, limit=1, include=[])["ids"])

    def domains(self) -> list[str]:
        """The domains of the stored chains (reads every chain's metadata: for messages, not hot paths)."""
        return sorted({str(m.get("domain")) for m in self.chains.get(include=["metadatas"])["metadatas"] or []})

    def retrieve(self, profile_text: str, k: int = 4, stage: str | None = None, domain: str | None = None) -> list[BehaviourChain]:
        """Top-K chains by profile similarity, optionally only those that reached `stage` or in `domain`."""
        if stage is not None:
            self.taxonomy.check(stage, "--stage")
        filters: list[dict[str, Any]] = []
        if stage:
            filters.append({f"stage_{stage}": True})
        if domain:
            filters.append({"domain": domain})
        where: dict[str, Any] | None = None
        if len(filters) == 1:
            where = filters[0]
        elif filters:
            where = {"$and": filters}
        if k <= 0:
            return []
        return [self._chain(cid, doc, meta, dist) for cid, doc, meta, dist in self._nearest(profile_text, k, filters, where)]

    @staticmethod
    def _chain(cid: str, doc: str, meta: dict[str, Any], dist: float) -> BehaviourChain:
        return BehaviourChain(
            id=cid,
            domain=str(meta["domain"]),
            archetype=str(meta.get("archetype") or "") or None,
            outcome=str(meta["outcome"]),
            profile_text=doc,
            steps=[ChainStep.model_validate(s) for s in json.loads(str(meta["chain"]))],
            distance=float(dist),
        )

    OVERFETCH = 16
    FIRST_LOOK = 2  # candidates read per wanted chain in the first metadata read of a filtered query

    def _nearest(self, profile_text: str, n: int, filters: list[dict[str, Any]], where: dict[str, Any] | None) -> list[tuple[Any, Any, Any, Any]]:
        """(id, document, metadata, distance) of the n nearest chains that pass the filters.

        No count() first: it costs more than the search at 100k chains (5 ms), and Chroma returns
        fewer rows when the store holds fewer than asked. A filtered Chroma query costs about 13 ms
        at 10k chains and 120 ms or more at 100k (it filters the whole store before searching),
        against 1-2 ms unfiltered; so the nearest OVERFETCH * n are searched unfiltered and filtered here,
        and the filtered query runs only when too few of them pass (a rare domain or stage).
        """
        if where is None:
            return self._rows(self.chains.query(query_texts=[profile_text], n_results=n))
        wide = self.chains.query(query_texts=[profile_text], n_results=n * self.OVERFETCH, include=["distances"])
        rows = self._passing(wide["ids"][0], wide["distances"][0], filters, n)
        if len(rows) >= n:
            return rows
        return self._rows(self.chains.query(query_texts=[profile_text], n_results=n, where=where))

    def _passing(self, ids: list[str], distances: list[float], filters: list[dict[str, Any]], n: int) -> list[tuple[Any, Any, Any, Any]]:
        """The first n of the ranked candidates whose metadata passes the filters, nearest first.

        Candidates are searched without their records: Chroma reads a record's metadata key by key
        (a chain has about 15: the chain JSON, stage flags, domain...), about 0.08 ms a record at
        100k chains, so reading all 64 would cost four times the search. The records are read in
        growing slices from the nearest, until n pass or none are left.
        """
        rows: list[tuple[Any, Any, Any, Any]] = []
        start, size = 0, max(1, int(n * self.FIRST_LOOK))
        while start < len(ids) and len(rows) < n:
            part = ids[start : start + size]
            got = self.chains.get(ids=part, include=["documents", "metadatas"])
            records = dict(zip(got["ids"], zip(got["documents"], got["metadatas"])))  # get() answers in storage order
            for cid, dist in zip(part, distances[start : start + size]):
                doc, meta = records.get(cid, (None, None))  # None: deleted since the search
                if meta is not None and all(meta.get(key) == value for f in filters for key, value in f.items()):
                    rows.append((cid, doc, meta, dist))
            start, size = start + size, size * 2
        return rows[:n]

    @staticmethod
    def _rows(result: Any) -> list[tuple[Any, Any, Any, Any]]:
        return list(zip(result["ids"][0], result["documents"][0], result["metadatas"][0], result["distances"][0]))

    def tag_stage(self, salesman_text: str, k: int = 5, leave_out: str | None = None) -> StageVote:
        """Nearest-neighbour vote over annotated salesman moves, weighted by similarity.

        No count() first (it costs more than the search in a large store): Chroma returns what the
        store holds when that is fewer than k, and an empty store gives no neighbours. `leave_out`
        (a dialogue id) keeps a stored call's own moves out of the vote, so a training call is
        tagged as a call the store never saw would be.
        """
        return self.tag_stages([salesman_text], k, leave_out)[0]

    def tag_stages(self, texts: Sequence[str], k: int = 5, leave_out: str | None = None) -> list[StageVote]:
        """`tag_stage` of many moves, embedded and searched in one query."""
        asked = [i for i, t in enumerate(texts) if t.strip()]
        votes = [StageVote(stage=self.taxonomy.ids[0], confidence=0.0) for _ in texts]
        if k <= 0 or not asked:
            return votes
        for i, found in zip(asked, self._neighbours([texts[i] for i in asked], k, leave_out)):
            votes[i] = self._vote(found)
        return votes

    def _vote(self, found: list[tuple[str, str, Any, float]]) -> StageVote:
        if not found:
            return StageVote(stage=self.taxonomy.ids[0], confidence=0.0)
        weights: Counter[str] = Counter()
        for _, _, meta, dist in found:
            weights[str(meta["stage"])] += max(1e-6, 1.0 - dist)
        stage, top = weights.most_common(1)[0]
        matches = [Exchange(id=tid, salesman=doc, customer=str(m["customer"]), stage=stage) for tid, doc, m, _ in found if m["stage"] == stage and m.get("customer")]
        return StageVote(stage=stage, confidence=top / sum(weights.values()), neighbours=[tid for tid, _, _, _ in found], matches=matches)

    def _neighbours(self, texts: list[str], k: int, leave_out: str | None) -> list[list[tuple[str, str, Any, float]]]:
        """(id, text, metadata, distance) of the k nearest annotated moves not of call `leave_out`, per text.

        A metadata filter ($ne) makes Chroma scan the store (0.3 s a query on 350 turns); asking for
        a few more neighbours and dropping the call's own is exact and cheap, and when a text has
        more of its call's moves among them the query is asked again with LEAVE_OUT_SLACK more."""
        for slack in ((0,) if not leave_out else (k, LEAVE_OUT_SLACK)):
            result = self.turns.query(query_texts=texts, n_results=k + slack)
            everything = [list(zip(*(result[key][q] for key in ("ids", "documents", "metadatas", "distances")))) for q in range(len(texts))]
            found = [[(str(i), str(doc), meta, float(dist)) for i, doc, meta, dist in rows if not leave_out or meta.get("dialogue_id") != leave_out] for rows in everything]
            if all(len(f) >= k or len(rows) < k + slack for f, rows in zip(found, everything)):  # enough, or the store has no more
                break
        return [f[:k] for f in found]


# ---- building ------------------------------------------------------------------------------


def check_stages(lines: Iterable[tuple[int, Dialogue]], path: Path | str, taxonomy: Taxonomy | None = None) -> None:
    """Every stage label of a corpus is a node of the taxonomy, or an InputError naming file, line and turn."""
    from grouped_sim.corpus import CorpusError

    taxonomy = taxonomy or load_taxonomy()
    for line_no, dialogue in lines:
        for index, turn in enumerate(dialogue.turns):
            if turn.sop_stage is not None and turn.sop_stage not in taxonomy.ids:
                raise CorpusError(path, line_no, f"turns.{index}.sop_stage", f"{turn.sop_stage!r} is not a stage of the taxonomy ({', '.join(taxonomy.ids)})")


def check_store_target(location: str | Path) -> None:
    """A place a store may be built: a Chroma server, a new or empty folder, or a store folder."""
    text = str(location)
    if text.startswith(("http://", "https://")):
        return
    target = Path(location)
    if target.is_file():
        raise InputError(f"{target}: the SOP store path is a file, expected a folder")
    if target.is_dir() and not is_store_folder(target) and any(target.iterdir()):
        raise InputError(f"{target}: the folder holds files and is not an SOP store; choose an empty or new folder")


def build_store(location: str | Path, dialogues: Sequence[Dialogue], on_progress: Callable[[int], None] | None = None, taxonomy: Taxonomy | None = None) -> dict[str, int]:
    """Upsert dialogues into the store at `location` so that it is never seen half-built.

    A folder store is built in a temporary folder beside it (a copy of the store already there,
    if any) and moved into place only when complete: a failure or a kill leaves the old store, or
    none, never an empty or partial one. A folder that holds something other than a store is
    refused. 0 dialogues is refused too: a store without chains retrieves nothing. A Chroma server
    is upserted in place (validate the dialogues first). Returns the chain and turn counts.
    """
    import shutil

    if not dialogues:
        raise InputError(f"{location}: no dialogues to store; a store with 0 behaviour chains would make every full-mode run retrieve nothing")
    text = str(location)
    check_store_target(text)
    if text.startswith(("http://", "https://")):
        store = SOPStore(text, create=True, taxonomy=taxonomy)
        store.upsert_dialogues(dialogues, on_progress=on_progress)
        return {"chains": store.count(), "annotated_turns": store.turns.count()}
    target = Path(location)
    existing = is_store_folder(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{target.parent}: cannot create the folder: {exc.strerror}") from exc
    tmp = target.parent / f".{target.name}.building-{os.getpid()}"
    old = target.parent / f".{target.name}.replaced-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    if existing:
        _release(SOPStore(target, taxonomy=taxonomy))  # a damaged store is named as the user named it, not as its temp copy
    try:
        if existing:
            shutil.copytree(target, tmp)
        store = SOPStore(tmp, create=True, taxonomy=taxonomy)
        store.upsert_dialogues(dialogues, on_progress=on_progress)
        counts = {"chains": store.count(), "annotated_turns": store.turns.count()}
        _release(store)
        if target.exists():
            os.replace(target, old)
        os.replace(tmp, target)
        _forget_client(str(target))  # Chroma's cached client of this path holds the files just replaced
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not target.exists():
            os.replace(old, target)  # put the store that was there back
        raise
    shutil.rmtree(old, ignore_errors=True)
    return counts


def _release(store: SOPStore) -> None:
    """Close Chroma's handles on a store folder (its files are complete on disk) before it moves."""
    store.client.close()
    _forget_client(store.location)
