"""The batch layer around one dialogue: a plan in, dialogues appended to the run folder as they finish.

It adds what running one dialogue (graphs/simulation.py) leaves out: concurrency, LangGraph SQLite
checkpoints, the run folder (plan.json, dialogues.jsonl, run.json) and resume. A run folder that
holds the same plan is finished, not redone.

One process writes a run folder at a time: it holds an exclusive lock (flock on run.lock) from
before it reads what is written until run.json is written, and a second writer fails at once with
an InputError. The lock belongs to the open file, so it dies with its process (kill -9 included).
Dialogues that ended in an error stay in dialogues.jsonl (they are results: whose failure it was);
`retry_failed=True` takes them out and runs them again.

What simulates the dialogues is a DialogueExecutor: asyncio tasks in this process (LocalExecutor),
or Ray actors (graphs/ray_executor.py, `simulate --executor ray`). Either hands each finished
dialogue back to this process, whose RunWriter appends it: the run folder has one writer, and
resume works the same whatever ran the dialogues.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from grouped_sim.config import SimulationConfig, SimulatorMode
from grouped_sim.corpus import DialogueAppender, iter_corpus_lines
from grouped_sim.errors import InputError
from grouped_sim.artifacts import Artifact
from grouped_sim.io import write_json_atomic, write_jsonl
from grouped_sim.graphs.graph import SimDeps, build_graph
from grouped_sim.graphs.plan import RunPlan, RunSettings, SimProfile
from grouped_sim.graphs.simulation import graph_config, run_dialogue, to_dialogue
from grouped_sim.prompts import prompt_version
from grouped_sim.runfolder import RunFolder
from grouped_sim.schemas import Dialogue, TerminationReason

DepsSource = SimDeps | Callable[[], SimDeps]


def dialogue_meta(settings: RunSettings, config: SimulationConfig) -> dict[str, Any]:
    """Run-level metadata every dialogue carries: what made it."""
    return {
        "mode": config.mode.value,
        "salesman": settings.salesman,
        "customer": settings.customer,
        "manager": settings.manager,
        "config_digest": config.digest(),
        "prompt_version": prompt_version(),
    }


def summarise(dialogues: list[Dialogue]) -> dict[str, Any]:
    customer_turns = [t for d in dialogues for t in d.customer_turns()]
    return {
        "dialogues": len(dialogues),
        "outcomes": dict(Counter(d.outcome.value for d in dialogues)),
        "terminations": dict(Counter(d.termination_reason.value for d in dialogues if d.termination_reason)),
        "customer_turns": len(customer_turns),
        "role_guard": {
            "regenerated_turns": sum(1 for t in customer_turns if t.meta.get("attempts", 1) > 1),
            "fallback_turns": sum(1 for t in customer_turns if t.meta.get("fallback")),
            "rejected_replies": sum(len(t.meta.get("rejected", [])) for t in customer_turns),
        },
        "errors": dict(Counter(d.error["who"] for d in dialogues if d.error)),
    }


def load_plan(run_dir: Path | str, flag: str = "--resume") -> RunPlan:
    """The plan of an earlier run, or a clear error naming the flag that pointed here (`--resume`,
    `--plan-from`) when the folder is not a run folder or its plan is damaged."""
    folder = RunFolder(Path(run_dir))
    if not folder.root.is_dir():
        raise InputError(f"{flag} {run_dir}: no such run folder")
    if not folder.plan.is_file():
        raise InputError(f"{flag} {run_dir}: not a run folder ({folder.plan.name} missing); start a run with grouped-sim simulate --out {run_dir}")
    artifact = Artifact("plan file", "the run cannot be resumed from it; start the same run again with grouped-sim simulate --out NEW_FOLDER")
    raw = artifact.read_json(folder.plan)
    with artifact.reading(folder.plan):
        return RunPlan.model_validate(_upgraded(raw))


def _upgraded(raw: Any) -> Any:
    """A plan written before best-of-N, read as what wrote it (plain sampling), so its resume makes
    the same dialogues. (Plans that name a local `engine` are read by GenerationParams.)"""
    config = raw.get("config") if isinstance(raw, dict) else None
    if isinstance(config, dict) and "best_of" not in config:
        config["best_of"] = {"n": 1}
    return raw


def check_written(path: Path) -> None:
    """Read-only: every line already written is a dialogue (a torn last line is allowed), or an
    error naming the file and line, raised before the folder is locked or anything is repaired."""
    from grouped_sim.corpus import CorpusError, dialogue_from
    from grouped_sim.io import iter_jsonl

    if not path.is_file():
        return
    seen: dict[str, int] = {}
    for line_no, raw in iter_jsonl(path, torn_tail_ok=True, error=CorpusError):
        dialogue = dialogue_from(raw, path, line_no)
        if dialogue.id in seen:  # each dialogue is written once; two writers at once were the only way
            raise CorpusError(path, line_no, "id", f"duplicate id {dialogue.id!r} (first on line {seen[dialogue.id]}); keep one of the two lines, then resume")
        seen[dialogue.id] = line_no


def check_checkpoints(folder: RunFolder) -> None:
    """Read-only: the run's LangGraph checkpoint database, if any, is a whole SQLite file (one cut
    short made resume a sqlite3 traceback mid-run). Checked before the folder is locked."""
    import sqlite3

    path = folder.checkpoints
    if not path.is_file():
        return
    artifact = Artifact("checkpoint database", f"remove {path}, then grouped-sim simulate --resume {folder.root} (calls cut off mid-way start over; finished ones are kept)")
    with artifact.reading(path):
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            verdict = connection.execute("PRAGMA quick_check").fetchone()
        finally:
            connection.close()
    artifact.require(verdict is not None and verdict[0] == "ok", path, f"the database fails its integrity check ({verdict[0] if verdict else 'no answer'})")


def repair_and_read(path: Path) -> list[Dialogue]:
    """Dialogues already written; a last line cut short by a killed process is dropped from the file.

    Only the final line can be partial (each record is one flushed write), so anything wrong
    before it is real corruption and an error, not something to skip.
    """
    if not path.is_file():
        return []
    with DialogueAppender(path):  # opening repairs a torn last line
        pass
    return [dialogue for _, dialogue in iter_corpus_lines(path)]


def check_folder(folder: RunFolder, plan: RunPlan, resume: bool) -> None:
    """Refuse a folder that holds another run; refuse `--resume` of a folder that is no run."""
    if folder.root.exists() and not folder.root.is_dir():
        raise InputError(f"{folder.root}: the run folder is a file")
    if folder.plan.is_file():
        if load_plan(folder.root).ids() != plan.ids():
            raise InputError(
                f"{folder.root}: holds a different run (other profiles, models, seed or config); "
                f"use a new --out folder, or --resume {folder.root} to finish that run"
            )
    elif resume:
        load_plan(folder.root)  # raises the clear not-a-run-folder error
    elif folder.dialogues.is_file() and folder.dialogues.stat().st_size:
        raise InputError(f"{folder.root}: already has {folder.dialogues.name} from another run; use a new --out folder")


@contextmanager
def run_lock(folder: RunFolder) -> Iterator[None]:
    """Hold the run folder's lock (the folder must exist), or fail at once when another process holds it."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not Linux/macOS: no lock
        yield
        return
    fd = os.open(folder.lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            who = f"another grouped-sim process (pid {holder})" if holder.isdigit() else "another grouped-sim process"
            raise InputError(f"{folder.root}: {who} is writing this run folder; wait for it to finish or stop it, then rerun") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the file releases the lock


class PlannedDialogue(BaseModel):
    """One dialogue of a plan still to simulate: with the run's participants, all a worker needs
    to simulate it (a small, picklable record: what crosses to a Ray worker)."""

    index: int = Field(ge=0, description="the item's position in the plan (the profile's case index when it has none)")
    item: SimProfile
    id: str
    seed: int


def planned(plan: RunPlan, done_ids: set[str]) -> list[PlannedDialogue]:
    """The plan's dialogues not yet written, in plan order."""
    rows = zip(plan.items, plan.ids(), plan.seeds())
    return [PlannedDialogue(index=i, item=item, id=did, seed=seed) for i, (item, did, seed) in enumerate(rows) if did not in done_ids]


Deliver = Callable[[Dialogue], None]


class DialogueExecutor:
    """Where a run's dialogues are simulated: in this process (LocalExecutor) or on Ray actors
    (graphs/ray_executor.py). The run folder is never the executor's: it hands each finished
    dialogue to `deliver`, in the calling process, and the batch layer writes it. So there is one
    writer of a run folder whatever runs the dialogues, and resume works the same for all."""

    def start(self) -> None:
        """Build the participants; called only when something is left to simulate, at most once
        per run (a new run calls it before its folder exists, so a spec that fails leaves none)."""

    def run(self, todo: list[PlannedDialogue], plan: RunPlan, folder: RunFolder, deliver: Deliver) -> None:
        """Simulate every planned dialogue, calling `deliver` once per finished one, in this thread."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """For run.json: `executor` (what ran the dialogues) and `engines` (how each model computed)."""
        return {"executor": {"kind": "local"}, "engines": {}}

    def close(self) -> None:
        """Release what `start` took (workers, a Ray instance); called once the run is over."""


class LocalExecutor(DialogueExecutor):
    """Dialogues as asyncio tasks in this process, at most `runtime.concurrency` in flight."""

    def __init__(self, deps: DepsSource) -> None:
        self._source = deps
        self.deps: SimDeps | None = deps if isinstance(deps, SimDeps) else None

    def start(self) -> None:
        if self.deps is None:
            self.deps = self._source()  # type: ignore[operator]

    def run(self, todo: list[PlannedDialogue], plan: RunPlan, folder: RunFolder, deliver: Deliver) -> None:
        self.start()
        asyncio.run(_run_all(self.deps, todo, plan, folder, deliver))  # type: ignore[arg-type]

    def describe(self) -> dict[str, Any]:
        return {"executor": {"kind": "local"}, "engines": engines_used(self.deps)}


class RunWriter:
    """The single writer of dialogues.jsonl: each delivered dialogue is appended once (one fsynced
    line), whatever delivered it. A repeat of an id already written, or an id the plan does not
    hold, is dropped and counted: a retried worker must never make a dialogue appear twice."""

    def __init__(self, sink: DialogueAppender, expected: set[str], on_progress: Callable[[Dialogue], None] | None) -> None:
        self.sink, self.expected, self.on_progress = sink, expected, on_progress
        self.new: list[Dialogue] = []
        self.dropped = 0

    def __call__(self, dialogue: Dialogue) -> None:
        if dialogue.id not in self.expected:
            self.dropped += 1
            return
        self.expected.discard(dialogue.id)
        self.sink.write_dialogue(dialogue)  # one flushed line: the dialogue is safe from here
        self.new.append(dialogue)
        if self.on_progress:
            self.on_progress(dialogue)


def as_executor(deps: DepsSource | DialogueExecutor) -> DialogueExecutor:
    """Participants (or a function that builds them) run here; an executor runs as it says."""
    return deps if isinstance(deps, DialogueExecutor) else LocalExecutor(deps)


def run_simulation(
    items: list[SimProfile],
    settings: RunSettings,
    config: SimulationConfig,
    out_dir: Path | str,
    deps: DepsSource | DialogueExecutor,
    on_progress: Callable[[Dialogue], None] | None = None,
    resume: bool = False,
    retry_failed: bool = False,
    salesman_code: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Simulate every profile, appending each dialogue to dialogues.jsonl as it finishes; write run.json.

    `deps` is the run's participants, or a function that builds them, or an executor that runs
    the dialogues elsewhere (Ray workers): participants are built only when something is left to
    simulate, so finishing a finished run loads no model. A folder that already holds a run is
    locked before anything loads, so a second writer fails in a second; a new run builds its
    participants first, so a spec or store that fails leaves no folder behind.
    `retry_failed` runs again the dialogues an earlier attempt wrote as errors. `salesman_code`
    (file and hash of a python: salesman) is recorded in plan.json for `--resume` to check.
    """
    folder = RunFolder(Path(out_dir))
    plan = RunPlan(settings=settings, config=config, items=items, salesman_code=salesman_code)
    check_folder(folder, plan, resume)
    started = time.time()
    executor = as_executor(deps)
    try:
        if folder.plan.is_file():
            check_written(folder.dialogues)
            check_checkpoints(folder)
        else:
            executor.start()
            folder.root.mkdir(parents=True, exist_ok=True)
        with run_lock(folder):
            check_folder(folder, plan, resume)  # again, now that no one else can write it
            return _run_locked(folder, plan, executor, started, on_progress, retry_failed)
    finally:
        executor.close()


def _kept(folder: RunFolder, retry_failed: bool) -> tuple[list[Dialogue], int]:
    """Dialogues already written that stay, and how many failed ones were taken out to run again."""
    written = repair_and_read(folder.dialogues) if folder.plan.is_file() else []
    if not retry_failed:
        return written, 0
    failed = [d for d in written if d.termination_reason is TerminationReason.error]
    if failed:
        written = [d for d in written if d.termination_reason is not TerminationReason.error]
        write_jsonl(folder.dialogues, written)  # atomically: a kill now only means they run next time
    return written, len(failed)


def _run_locked(
    folder: RunFolder, plan: RunPlan, executor: DialogueExecutor, started: float, on_progress: Callable[[Dialogue], None] | None, retry_failed: bool
) -> dict[str, Any]:
    settings, config = plan.settings, plan.config
    written, retried = _kept(folder, retry_failed)
    todo = planned(plan, {d.id for d in written})
    if todo:
        executor.start()
    load_seconds = time.time() - started
    write_json_atomic(folder.plan, plan.model_dump(mode="json"))
    ids = set(plan.ids())
    for d in written:
        if on_progress and d.id in ids:
            on_progress(d)
    with DialogueAppender(folder.dialogues) as sink:
        writer = RunWriter(sink, {p.id for p in todo}, on_progress)
        if todo:
            executor.run(todo, plan, folder, writer)
    new = writer.new
    summary = {
        "models": settings.model_dump(),
        "seed": config.seed,
        "config": config.model_dump(mode="json"),
        "config_digest": config.digest(),
        "prompt_version": prompt_version(),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "wall_seconds": round(time.time() - started, 1),
        "load_seconds": round(load_seconds, 1),
        "resumed": {"kept": len(written), "ran": len(new), "retried_failed": retried} if written or retried else None,
        "concurrency": config.runtime.concurrency,
        **executor.describe(),
        **({"repeats_dropped": writer.dropped} if writer.dropped else {}),
        **summarise(written + new),
        "warnings": run_warnings(written + new, config),
    }
    write_json_atomic(folder.summary, summary)
    return summary


def engines_used(deps: SimDeps | None) -> dict[str, str]:
    """How each of our models in the run computed its tokens (llama.cpp or transformers): part of
    what made the text."""
    from grouped_sim.graphs.salesman import ChatModelSalesman
    from grouped_sim.models.base import engine_description_of

    if deps is None:
        return {}
    models = {"customer": deps.customer}
    if isinstance(deps.salesman, ChatModelSalesman):
        models["salesman"] = deps.salesman.model
    return {role: text for role, model in models.items() if (text := engine_description_of(model))}


def run_warnings(dialogues: list[Dialogue], config: SimulationConfig) -> list[str]:
    """Losses of fidelity a run would otherwise hide (printed by the CLI, kept in run.json)."""
    warnings = []
    if config.mode is SimulatorMode.full:
        bare = [d.id for d in dialogues if not d.error and not d.meta.get("retrieved")]
        if bare:
            warnings.append(f"{len(bare)} dialogues ran in full mode with no behaviour chain retrieved (K_p empty), e.g. {bare[0]}")
    return warnings


async def resume_or_run(graph: Any, deps: SimDeps, item: SimProfile, seed: int, did: str, index: int, meta: dict[str, Any]) -> Dialogue:
    """Continue a dialogue from its last checkpoint when an interrupted run left one, else run it."""
    thread = did
    if graph.checkpointer is not None:
        cfg = graph_config(did, deps.config.max_turns)
        try:
            saved = await graph.aget_state(cfg)
            if saved is not None and saved.values.get("dialogue_id") == did:
                final = saved.values if not saved.next else await graph.ainvoke(None, config=cfg, context=deps)
                if final.get("termination"):
                    return to_dialogue(final, item, meta)
                # A checkpoint taken at the wrong instant of a kill can leave a thread that does not
                # run on to an end. Start the call again on a fresh thread: seeds are per dialogue
                # and turn, so the restarted call says exactly what an uninterrupted one would.
                thread = f"{did}#restart-{uuid.uuid4().hex[:8]}"
        except Exception:  # an unreadable checkpoint is no reason to lose the dialogue: start over
            thread = f"{did}#restart-{uuid.uuid4().hex[:8]}"
    return await run_dialogue(graph, deps, item, seed, did, index, meta, thread_id=thread)


async def _run_all(deps: SimDeps, todo: list[PlannedDialogue], plan: RunPlan, folder: RunFolder, deliver: Deliver) -> None:
    runtime = plan.config.runtime
    # Sync nodes run in the loop's default executor: give every dialogue in flight a thread.
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=runtime.concurrency + 4, thread_name_prefix="gs-node"))
    gate = asyncio.Semaphore(runtime.concurrency)
    meta = dialogue_meta(plan.settings, plan.config)
    async with _checkpointer(folder, runtime.checkpoint) as saver:
        graph = build_graph(checkpointer=saver)

        async def one(p: PlannedDialogue) -> None:
            async with gate:
                dialogue = await resume_or_run(graph, deps, p.item, p.seed, p.id, p.index, meta)
                deliver(dialogue)
                if saver is not None:
                    await saver.adelete_thread(dialogue.id)

        await asyncio.gather(*(one(p) for p in todo))


@asynccontextmanager
async def _checkpointer(folder: RunFolder, enabled: bool) -> AsyncIterator[Any]:
    """LangGraph's async SQLite checkpointer in the run folder (None when disabled)."""
    if not enabled:
        yield None
        return
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    async with AsyncSqliteSaver.from_conn_string(str(folder.checkpoints)) as saver:
        yield saver
