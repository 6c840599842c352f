"""The batch layer around the pure turn loop: profiles in, dialogues appended as they finish.

Each dialogue gets a content id (hash of profile, seed, model specs, config and prompt version) so
a rerun of the same job names the same dialogues, and `--resume` can skip the finished ones.
"""

from __future__ import annotations

import asyncio
import uuid
import hashlib
import json
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from grouped_sim.config import DEFAULT_CHAT_SPEC, DEFAULT_CUSTOMER_SPEC, SimulationConfig, SimulatorMode
from grouped_sim.corpus import JsonlAppender, read_corpus, write_json_atomic
from grouped_sim.errors import InputError
from grouped_sim.models import build_chat_model, parse_spec
from grouped_sim.prompts import prompt_version
from grouped_sim.schemas import TERMINATION_TO_OUTCOME, Dialogue, Profile, TerminationReason, Turn
from grouped_sim.graphs.builder import GraphDeps, build_graph, failure, initial_state
from grouped_sim.graphs.manager import LightManager, LLMManager, Manager
from grouped_sim.graphs.resilience import retry_call
from grouped_sim.models.limits import limit_model
from grouped_sim.graphs.salesman import ChatModelSalesman, SalesmanAgent
from grouped_sim.graphs.state import SimState
from grouped_sim.sop_db.store import BehaviourChain, SOPStore


class SimProfile(BaseModel):
    """A profile to simulate, the domain of the call, and where it came from."""

    profile: Profile
    domain: str
    source: str = Field("", description="corpus dialogue id or file:line the profile came from")


class RunSettings(BaseModel):
    """The models and store of a run (recorded in run.json)."""

    salesman: str = DEFAULT_CHAT_SPEC
    customer: str = DEFAULT_CUSTOMER_SPEC
    manager: str = "light"
    sop_db: str | None = None


def sample_profiles(corpus: list[Dialogue], n: int, seed: int) -> list[SimProfile]:
    """N profiles from a corpus's real customers, archetypes in turn so a small N still covers them."""
    with_profile = [d for d in corpus if d.profile is not None]
    if not with_profile:
        raise InputError("the corpus has no dialogue with a profile to simulate; pass --profiles-file")
    rng = random.Random(seed)
    by_archetype: dict[str, list[Dialogue]] = {}
    for d in with_profile:
        by_archetype.setdefault(d.profile.archetype or "", []).append(d)  # type: ignore[union-attr]
    for group in by_archetype.values():
        rng.shuffle(group)
    order = sorted(by_archetype)
    picked: list[SimProfile] = []
    i = 0
    while len(picked) < n:
        group = by_archetype[order[i % len(order)]]
        d = group[(i // len(order)) % len(group)]
        picked.append(SimProfile(profile=d.profile, domain=d.domain, source=d.id))  # type: ignore[arg-type]
        i += 1
    return picked


def load_profiles_file(path: Path | str, default_domain: str = "food-delivery") -> list[SimProfile]:
    """JSONL, one profile per line: a Profile object, or {"profile": {...}, "domain": "..."}."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: profiles file not found")
    out: list[SimProfile] = []
    for line_no, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not text.strip():
            continue
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{line_no}: field '<json>': not valid JSON ({exc.msg})") from exc
        try:
            if isinstance(raw, dict) and "profile" in raw:
                profile = Profile.model_validate(raw["profile"])
                domain = raw.get("domain") or profile.domain or default_domain
            else:
                profile = Profile.model_validate(raw)
                domain = profile.domain or default_domain
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"])
            raise InputError(f"{path}:{line_no}: field '{field}': {first['msg']}") from exc
        out.append(SimProfile(profile=profile, domain=domain, source=f"{path.name}:{line_no}"))
    if not out:
        raise InputError(f"{path}: no profiles in file")
    return out


def dialogue_seed(run_seed: int, index: int) -> int:
    return int(hashlib.sha256(f"{run_seed}:{index}".encode()).hexdigest()[:8], 16)


def dialogue_id(item: SimProfile, seed: int, settings: RunSettings, config: SimulationConfig) -> str:
    """Content id: same profile, seed, models, config and prompts give the same id."""
    blob = json.dumps(
        {
            "profile": item.profile.model_dump(mode="json"),
            "domain": item.domain,
            "seed": seed,
            "salesman": settings.salesman,
            "customer": settings.customer,
            "manager": settings.manager,
            "config": config.digest(),
            "prompts": prompt_version(),
        },
        sort_keys=True,
    )
    return "sim-" + hashlib.sha256(blob.encode()).hexdigest()[:16]


def build_manager(spec: str, store: SOPStore | None, config: SimulationConfig) -> Manager | None:
    if config.mode is SimulatorMode.prompt_only:
        return None
    if spec == "light":
        return LightManager(store, config.manager)
    return LLMManager(build_chat_model(spec, config.salesman.model_copy(update={"temperature": 0.1, "top_p": 0.2, "max_new_tokens": 256})), store, config.manager)


def to_dialogue(state: dict[str, Any], item: SimProfile, settings: RunSettings, config: SimulationConfig) -> Dialogue:
    reason = TerminationReason(state.get("termination") or TerminationReason.max_turns.value)
    turns = [Turn.model_validate(t) for t in state.get("history", [])]
    error = state.get("error")
    if reason is not TerminationReason.error and not any(t.role == "customer" for t in turns):
        # A call the graph left without a single customer turn is a failure of the machinery,
        # recorded as such rather than crashing the run on the Dialogue contract.
        reason = TerminationReason.error
        error = {"who": "infrastructure", "type": "IncompleteDialogue", "message": "the call ended before the customer spoke"}
    return Dialogue(
        id=state["dialogue_id"],
        domain=item.domain,
        turns=turns or [Turn(role="salesman", text="")],
        outcome=TERMINATION_TO_OUTCOME[reason],
        profile=item.profile,
        termination_reason=reason,
        error=error,
        meta={
            "seed": state["seed"],
            "profile_source": item.source,
            "mode": config.mode.value,
            "salesman": settings.salesman,
            "customer": settings.customer,
            "manager": settings.manager,
            "retrieved": [c["id"] for c in state.get("chains", [])],
            "config_digest": config.digest(),
            "prompt_version": prompt_version(),
        },
    )


def _backend_key(spec: str) -> str:
    parsed = parse_spec(spec)
    return parsed.base_url or f"{parsed.backend}:{parsed.model}"


class Simulator:
    """Holds the models, store and compiled graph for a run; `run_one` simulates one profile.

    Chat models are wrapped in LimitedChatModel (calls in flight per backend, timeouts from
    `config.runtime`); the graph's nodes retry failing calls with backoff.
    """

    def __init__(self, settings: RunSettings, config: SimulationConfig, salesman: SalesmanAgent | None = None, customer_model: Any = None) -> None:
        from grouped_sim.graphs.adapters import build_salesman, check_salesman_spec

        if salesman is None:
            check_salesman_spec(settings.salesman)
        for spec in (settings.customer,) + (() if settings.manager == "light" else (settings.manager,)):
            parse_spec(spec)  # fail on a bad spec before loading anything
        self.settings = settings
        self.config = config
        runtime = config.runtime
        self.store = SOPStore(settings.sop_db) if settings.sop_db else None
        if config.mode is not SimulatorMode.prompt_only and self.store is None:
            raise InputError(f"mode '{config.mode.value}' needs an SOP store: pass --sop-db DIR (build it with grouped-sim sop build)")
        self.manager = build_manager(settings.manager, self.store, config)
        if customer_model is None:
            customer_model = limit_model(build_chat_model(settings.customer, config.customer), _backend_key(settings.customer), runtime)
        self.customer_model = customer_model
        if salesman is None:
            salesman = build_salesman(settings.salesman, config)
            if isinstance(salesman, ChatModelSalesman):
                salesman.model = limit_model(salesman.model, _backend_key(settings.salesman), runtime)
        self.salesman = salesman
        if isinstance(self.manager, LLMManager):
            self.manager.model = limit_model(self.manager.model, _backend_key(settings.manager), runtime)
        self.deps = GraphDeps(salesman=self.salesman, customer_model=self.customer_model, manager=self.manager, config=config)
        self.graph = build_graph(self.deps)

    def local_weights(self) -> list[Any]:
        """The distinct local (hf:) weights behind this run's chat models: what batching hooks onto."""
        models = [self.customer_model, getattr(self.salesman, "model", None), getattr(self.manager, "model", None)]
        found: dict[int, Any] = {}
        for model in models:
            loaded = getattr(model, "loaded", None)
            if loaded is not None and hasattr(loaded, "tokenizer"):
                found[id(loaded)] = loaded
        return list(found.values())

    def retrieve(self, item: SimProfile) -> list[BehaviourChain]:
        if self.store is None or self.config.mode is not SimulatorMode.full:
            return []
        # Ask for one extra so the profile's own source dialogue can be left out (no self-retrieval).
        chains = self.store.retrieve(item.profile.as_text(), k=self.config.manager.top_k + 1, domain=item.domain)
        return [c for c in chains if c.id != item.source][: self.config.manager.top_k]

    def _bind(self, did: str, item: SimProfile, index: int) -> None:
        bind = getattr(self.salesman, "bind", None)
        if bind is not None:  # replay adapter: which corpus script this dialogue follows
            bind(did, self.salesman.script_for(item.source, index))  # type: ignore[attr-defined]

    def _start(self, item: SimProfile, seed: int, index: int) -> tuple[str, SimState | None, dict[str, Any] | None]:
        """Phase 1 (retrieval) for one dialogue; a store failure becomes that dialogue's error."""
        did = dialogue_id(item, seed, self.settings, self.config)
        self._bind(did, item, index)
        try:
            chains = retry_call(lambda: self.retrieve(item), self.config.runtime)
        except Exception as exc:
            return did, None, failure("store", exc)
        return did, initial_state(did, item.profile, item.domain, chains, seed, self.manager), None

    def _graph_config(self, did: str) -> dict[str, Any]:
        return {"recursion_limit": 6 * self.config.max_turns + 10, "configurable": {"thread_id": did}}

    def run_one(self, item: SimProfile, seed: int, index: int = 0) -> Dialogue:
        """Simulate one profile, synchronously (no checkpointer)."""
        did, state, failed = self._start(item, seed, index)
        if state is None:
            return to_dialogue(_error_state(did, seed, failed), item, self.settings, self.config)
        try:
            final = self.graph.invoke(state, config=self._graph_config(did))
        except Exception as exc:  # outside any node: the graph machinery itself
            final = _error_state(did, seed, failure("infrastructure", exc))
        return to_dialogue(final, item, self.settings, self.config)

    async def arun_one(self, item: SimProfile, seed: int, index: int = 0, graph: Any = None) -> Dialogue:
        """Simulate one profile with LangGraph's async API; with a checkpointed `graph`, continue
        from the dialogue's last checkpoint when an interrupted run left one."""
        graph = graph or self.graph
        did = dialogue_id(item, seed, self.settings, self.config)
        cfg = self._graph_config(did)
        try:
            saved = await graph.aget_state(cfg) if graph.checkpointer is not None else None
            final = None
            if saved is not None and saved.values.get("dialogue_id") == did:
                self._bind(did, item, index)
                final = saved.values if not saved.next else await graph.ainvoke(None, config=cfg)
                if not final.get("termination"):
                    # A checkpoint taken at the wrong instant of a kill can leave a thread that does not
                    # run on to an end. Start the call again on a fresh thread: seeds are per dialogue
                    # and turn, so the restarted call says exactly what an uninterrupted one would.
                    final = None
                    cfg = {**cfg, "configurable": {"thread_id": f"{did}#restart-{uuid.uuid4().hex[:8]}"}}
            if final is None:
                did, state, failed = await asyncio.to_thread(self._start, item, seed, index)
                if state is None:
                    return to_dialogue(_error_state(did, seed, failed), item, self.settings, self.config)
                final = await graph.ainvoke(state, config=cfg)
        except Exception as exc:
            final = _error_state(did, seed, failure("infrastructure", exc))
        return to_dialogue(final, item, self.settings, self.config)


def _error_state(did: str, seed: int, update: dict[str, Any] | None) -> dict[str, Any]:
    return {"dialogue_id": did, "seed": seed, "history": [], "chains": [], **(update or {})}


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


# ---- the run folder: plan, output, resume -----------------------------------------------------

PLAN_FILE = "plan.json"
DIALOGUES_FILE = "dialogues.jsonl"
CHECKPOINT_FILE = "checkpoints.sqlite"


class RunPlan(BaseModel):
    """What a run simulates, written to plan.json before the first dialogue: `--resume DIR` needs
    nothing else. `config.runtime` may differ on resume (it never changes dialogue ids)."""

    settings: RunSettings
    config: SimulationConfig
    items: list[SimProfile]

    def ids(self) -> list[str]:
        return [dialogue_id(item, dialogue_seed(self.config.seed, i), self.settings, self.config) for i, item in enumerate(self.items)]


def load_plan(run_dir: Path | str) -> RunPlan:
    """The plan of an earlier run, or a clear error when the folder is not a run folder."""
    path = Path(run_dir) / PLAN_FILE
    if not Path(run_dir).is_dir():
        raise InputError(f"{run_dir}: no such run folder to resume")
    if not path.is_file():
        raise InputError(f"{run_dir}: not a run folder ({PLAN_FILE} missing); start a run with grouped-sim simulate --out {run_dir}")
    try:
        return RunPlan.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise InputError(f"{path}: field '{field}': {first['msg']}") from exc


def repair_and_read(path: Path) -> list[Dialogue]:
    """Dialogues already written; a last line cut short by a killed process is dropped from the file.

    Only the final line can be partial (each record is one flushed write), so anything wrong
    before it is real corruption and an error, not something to skip.
    """
    if not path.is_file():
        return []
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        cut = data.rfind(b"\n") + 1
        with path.open("r+b") as handle:
            handle.truncate(cut)
        data = data[:cut]
    dialogues: list[Dialogue] = []
    from grouped_sim.corpus import parse_line

    for line_no, line in enumerate(data.decode("utf-8").splitlines(), start=1):
        if line.strip():
            dialogues.append(parse_line(line, path, line_no))
    return dialogues


def run_simulation(
    items: list[SimProfile],
    settings: RunSettings,
    config: SimulationConfig,
    out_dir: Path | str,
    on_progress: Callable[[Dialogue], None] | None = None,
    simulator: Simulator | None = None,
    resume: bool = False,
) -> dict[str, Any]:
    """Simulate every profile, appending each dialogue to dialogues.jsonl as it finishes; write run.json.

    `config.runtime.concurrency` dialogues run at once (asyncio + LangGraph's `ainvoke`). A run
    folder that already holds this plan is finished rather than redone: dialogues written are kept
    and skipped, unfinished ones continue from their SQLite checkpoint. A folder holding a
    different plan is refused unless it is empty.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: the run folder is a file")
    plan = RunPlan(settings=settings, config=config, items=items)
    plan_path = out / PLAN_FILE
    if plan_path.is_file():
        previous = load_plan(out)
        if previous.ids() != plan.ids():
            raise InputError(
                f"{out}: holds a different run (other profiles, models, seed or config); "
                f"use a new --out folder, or --resume {out} to finish that run"
            )
    elif resume:
        load_plan(out)  # raises the clear not-a-run-folder error
    elif (out / DIALOGUES_FILE).is_file() and (out / DIALOGUES_FILE).stat().st_size:
        raise InputError(f"{out}: already has {DIALOGUES_FILE} from another run; use a new --out folder")
    started = time.time()
    written = repair_and_read(out / DIALOGUES_FILE) if plan_path.is_file() else []
    done_ids = {d.id for d in written}
    todo = [(i, item) for i, item in enumerate(items) if dialogue_id(item, dialogue_seed(config.seed, i), settings, config) not in done_ids]
    # Models load only when something is left to run; specs and the store are checked before writing.
    sim = simulator or (Simulator(settings, config) if todo else None)
    load_seconds = time.time() - started
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(plan_path, plan.model_dump(mode="json"))
    planned = set(plan.ids())
    for d in written:
        if on_progress and d.id in planned:
            on_progress(d)
    new = asyncio.run(_run_all(sim, todo, config, out, on_progress)) if todo and sim is not None else []
    everything = written + new
    summary = {
        "models": settings.model_dump(),
        "seed": config.seed,
        "config": config.model_dump(mode="json"),
        "config_digest": config.digest(),
        "prompt_version": prompt_version(),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "wall_seconds": round(time.time() - started, 1),
        "load_seconds": round(load_seconds, 1),
        "resumed": {"kept": len(written), "ran": len(new)} if written else None,
        "concurrency": config.runtime.concurrency,
        **summarise(everything),
    }
    write_json_atomic(out / "run.json", summary)
    return summary


async def _run_all(sim: Simulator, todo: list[tuple[int, SimProfile]], config: SimulationConfig, out: Path, on_progress: Callable[[Dialogue], None] | None) -> list[Dialogue]:
    runtime = config.runtime
    loop = asyncio.get_running_loop()
    # Sync nodes run in the loop's default executor: give every dialogue in flight a thread.
    executor = ThreadPoolExecutor(max_workers=runtime.concurrency + 4, thread_name_prefix="gs-node")
    loop.set_default_executor(executor)
    batched = []
    if runtime.concurrency > 1 and runtime.batch_local:
        from grouped_sim.models.batching import enable_batching

        batched = sim.local_weights()
        for weights in batched:
            enable_batching(weights, max_batch=runtime.max_batch)
    gate = asyncio.Semaphore(runtime.concurrency)
    new: list[Dialogue] = []
    try:
        async with _checkpointer(out, runtime.checkpoint) as saver:
            graph = build_graph(sim.deps, checkpointer=saver) if saver is not None else sim.graph
            with JsonlAppender(out / DIALOGUES_FILE) as sink:

                async def one(index: int, item: SimProfile) -> None:
                    async with gate:
                        dialogue = await sim.arun_one(item, dialogue_seed(config.seed, index), index, graph=graph)
                        sink.write_dialogue(dialogue)  # one flushed line: the dialogue is safe from here
                        new.append(dialogue)
                        if saver is not None:
                            await saver.adelete_thread(dialogue.id)
                        if on_progress:
                            on_progress(dialogue)

                await asyncio.gather(*(one(i, item) for i, item in todo))
    finally:
        if batched:
            from grouped_sim.models.batching import disable_batching

            for weights in batched:
                disable_batching(weights)
    return new


@asynccontextmanager
async def _checkpointer(out: Path, enabled: bool) -> AsyncIterator[Any]:
    """LangGraph's async SQLite checkpointer in the run folder (None when disabled)."""
    if not enabled:
        yield None
        return
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    async with AsyncSqliteSaver.from_conn_string(str(out / CHECKPOINT_FILE)) as saver:
        yield saver


__all__ = [
    "RunPlan",
    "RunSettings",
    "load_plan",
    "SimProfile",
    "Simulator",
    "dialogue_id",
    "dialogue_seed",
    "load_profiles_file",
    "read_corpus",
    "run_simulation",
    "sample_profiles",
    "summarise",
]
