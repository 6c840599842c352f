"""A run's dialogues on Ray actors: `simulate --executor ray` (the optional extra grouped-sim[ray]).

Why Ray: scale-out should run on a distributed engine the field already operates (vLLM's multi-node
runtime is Ray), not on one of our own. Ray is imported only here, and only when asked for.

- **Workers own their models.** One actor per worker slot builds the run's participants once, from
  the run's *recipe* (spec strings, settings, config and a module-level build function, resolved by
  import on the worker), never from built participants: loaded weights do not travel through the
  object store, and each actor loads its local model (llama.cpp, transformers) or API clients
  itself, with the CPUs and GPUs Ray reserved for it.
- **One writer.** A worker returns each finished dialogue (a JSON dict) to the driver; the driver
  (graphs/batch.py) appends it to the run folder it holds the lock of, dropping any repeat of an
  id. Workers never touch the run folder, so they need no shared disk and take no checkpoints: a
  dialogue cut off on a worker reruns from its start, with the same per-turn seeds.
- **Nothing lost.** A worker process that dies is restarted by Ray (`max_restarts`) and the
  dialogues it had in flight are sent again (`max_task_retries`): Ray's own retries, not ours. A
  dialogue whose retries are spent is written as an `infrastructure` error naming the worker, and
  `--resume --retry-failed` runs it again.
- The driver feeds each worker at most `runtime.concurrency` dialogues at a time (an async actor
  runs them as asyncio tasks, as a local run does), the next one going to whichever worker frees a
  slot first, so a slow worker never holds a queue of its own.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import sys
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from grouped_sim.config import SimulationConfig
from grouped_sim.errors import GroupedSimError, InputError
from grouped_sim.graphs.batch import Deliver, DialogueExecutor, PlannedDialogue, dialogue_meta, engines_used
from grouped_sim.graphs.graph import SimDeps, build_graph, failure
from grouped_sim.graphs.plan import RunPlan, RunSettings, SimProfile
from grouped_sim.graphs.simulation import error_state, run_dialogue, to_dialogue
from grouped_sim.runfolder import RunFolder
from grouped_sim.schemas import Dialogue

INSTALL_HINT = "pip install 'grouped-sim[ray]'"
# Settings of this process a worker on another machine should see too (only those that are set).
FORWARDED_ENV = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "TOKENIZERS_PARALLELISM", "ANONYMIZED_TELEMETRY")


# Ray's switch between a single-node instance on loopback (0; its default on macOS and Windows)
# and a cluster node on the machine's network address (1; its default on Linux). Ray reads it once,
# when `ray` is imported; `_node_ip_address="127.0.0.1"` alone is swapped for the network address
# (ray/_private/services.py resolve_ip_for_localhost) while it is 1. See docs/scale.md.
LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def starts_local_instance(settings: RaySettings) -> bool:
    """Whether a run with these settings starts its own Ray instance (no --ray-address, no $RAY_ADDRESS)."""
    return not (settings.address or os.environ.get("RAY_ADDRESS"))


def import_ray(loopback: bool = False) -> Any:
    """The ray module, or an InputError saying how to install it. With `loopback` (this process
    will start its own instance) and ray not yet imported, the instance is kept on 127.0.0.1: no
    port of it listens on the network, and nothing off this machine can join it. A user's own
    RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER wins (1: a head node others may join)."""
    if loopback and "ray" not in sys.modules:
        os.environ.setdefault(LOOPBACK_ENV, "0")
    try:
        import ray
    except ImportError as exc:
        raise InputError(f"--executor ray needs Ray, which is not installed here: {INSTALL_HINT} (or run with --executor local)") from exc
    return ray


class RaySettings(BaseModel):
    """Where the workers run and what each one reserves (simulate --ray-*; none of it changes a dialogue)."""

    address: str | None = Field(None, description="a Ray cluster (ray://HOST:10001, HOST:6379, auto); None: $RAY_ADDRESS, else a new local Ray instance on this machine")
    workers: int = Field(2, ge=1, description="actors, each with the run's participants loaded once")
    cpus_per_worker: float = Field(1.0, ge=0)
    gpus_per_worker: float = Field(0.0, ge=0)
    max_restarts: int = Field(3, ge=0, description="times Ray restarts a worker that died; its dialogues in flight are sent again each time")
    start_timeout_seconds: float = Field(900.0, gt=0, description="how long the workers may take to be placed and load their models")


class DepsRecipe(BaseModel):
    """How a worker builds the run's participants: a module-level function (grouped_sim.app.build
    .build_deps for the CLI), called on the worker as build(settings, config, items=items). The
    function travels by reference (its module is imported on the worker), never a built model."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    build: Callable[..., SimDeps]
    settings: RunSettings
    config: SimulationConfig
    items: list[SimProfile] = Field(default_factory=list, description="the profiles to simulate: the store is checked against their domains")

    def deps(self) -> SimDeps:
        return self.build(self.settings, self.config, items=self.items)


class WorkerInfo(BaseModel):
    """A worker as error records and run.json name it."""

    name: str
    actor_id: str
    node: str
    pid: int
    engines: dict[str, str] = Field(default_factory=dict)


class SimulationWorker:
    """One worker slot (a Ray actor): the run's participants, built once, and the graph (no
    checkpointer: the run folder is the driver's). A failed build is kept and raised by every
    call, so `ready` reports it to the driver as the error it was (a bad store path is an InputError)."""

    def __init__(self, recipe: DepsRecipe) -> None:
        import ray

        context = ray.get_runtime_context()
        actor_id, node, pid = context.get_actor_id() or "?", ray.util.get_node_ip_address(), os.getpid()
        self.info = WorkerInfo(name=f"ray actor {actor_id[:12]} on {node} (pid {pid})", actor_id=actor_id, node=node, pid=pid)
        self.concurrency = recipe.config.runtime.concurrency
        self.failed: Exception | None = None
        self.deps: SimDeps | None = None
        try:
            self.deps = recipe.deps()
        except Exception as exc:  # raised again by ready(), with its type, to the driver
            self.failed = exc
        self.info.engines = engines_used(self.deps)
        self.graph = build_graph(checkpointer=None)
        self.threads: ThreadPoolExecutor | None = None

    def _usable(self) -> SimDeps:
        if self.failed is not None:
            raise self.failed
        return self.deps  # type: ignore[return-value]

    async def ready(self) -> dict[str, Any]:
        self._usable()
        return self.info.model_dump()

    async def run(self, planned: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
        """One dialogue from its plan record, as a JSON dict; a failure is named with this worker."""
        deps = self._usable()
        if self.threads is None:  # sync nodes run in the loop's default executor, as in a local run
            self.threads = ThreadPoolExecutor(max_workers=self.concurrency + 4, thread_name_prefix="gs-node")
            asyncio.get_running_loop().set_default_executor(self.threads)
        p = PlannedDialogue.model_validate(planned)
        dialogue = await run_dialogue(self.graph, deps, p.item, p.seed, p.id, p.index, meta)
        if dialogue.error is not None:
            dialogue = dialogue.model_copy(update={"error": {**dialogue.error, "worker": self.info.name}})
        return dialogue.model_dump(mode="json")


class WorkerSlots:
    """Dialogues in flight per worker, and which workers are gone: the next dialogue goes to the
    live worker with the fewest in flight, below `per_worker`."""

    def __init__(self, workers: int, per_worker: int) -> None:
        self.load = [0] * workers
        self.per_worker = per_worker
        self.dead: set[int] = set()

    def free(self) -> int | None:
        live = [k for k in range(len(self.load)) if k not in self.dead and self.load[k] < self.per_worker]
        return min(live, key=lambda k: self.load[k]) if live else None

    def take(self, k: int) -> None:
        self.load[k] += 1

    def give_back(self, k: int) -> None:
        self.load[k] -= 1

    def retire(self, k: int) -> None:
        self.dead.add(k)


def worker_config(config: SimulationConfig, cpus: float) -> SimulationConfig:
    """The config a worker builds with: llama.cpp's "one thread per core" (threads 0) becomes one
    per CPU the worker reserved, so workers that share a machine do not each take every core.
    (Runtime settings never change a dialogue's id or text.)"""
    llama = config.runtime.llama
    if llama.threads != 0 or cpus < 1:
        return config
    runtime = config.runtime.model_copy(update={"llama": llama.model_copy(update={"threads": int(cpus)})})
    return config.model_copy(update={"runtime": runtime})


def forwarded_env(settings: RunSettings | None = None) -> dict[str, str]:
    """Environment a worker on another machine needs: offline flags, and the endpoint salesman's
    key under the name the user gave it (--salesman-key-env; sent to the workers, nowhere else)."""
    key = settings.salesman_key_env if settings is not None else None
    names = list(FORWARDED_ENV) + ([key] if key else [])
    return {name: os.environ[name] for name in names if os.environ.get(name)}


def connect(ray: Any, settings: RaySettings) -> bool:
    """Join the cluster the settings (or $RAY_ADDRESS) name, else start a local instance with CPUs
    enough for the workers asked for (on 127.0.0.1 when ray was imported by `import_ray(loopback=
    True)`, behind Ray's token authentication; it stops with the run). True when this call connected; a process already
    connected (a notebook, a test, a `ray_session`) keeps its connection, and its owner ends it."""
    if ray.is_initialized():
        return False
    address = None if starts_local_instance(settings) else settings.address or os.environ["RAY_ADDRESS"]
    quiet = {"log_to_driver": False, "logging_level": logging.WARNING}
    try:
        if address:
            ray.init(address=address, **quiet)
        else:
            needed = math.ceil(settings.workers * settings.cpus_per_worker)
            ray.init(address="local", num_cpus=max(os.cpu_count() or 1, needed), include_dashboard=False, **quiet)
    except ConnectionError as exc:
        raise InputError(f"--ray-address {address}: cannot connect to a Ray cluster there ({exc}); start one with `ray start --head`") from exc
    return True


@contextmanager
def ray_session(settings: RaySettings) -> Iterator[None]:
    """One connection for a command that runs several runs (probe: one per variant): a local Ray
    instance starts once, not once a run (seconds each); each run's executor keeps it and only
    stops its own workers. Left when the command ends."""
    ray = import_ray(loopback=starts_local_instance(settings))
    connected = connect(ray, settings)
    try:
        yield
    finally:
        if connected:
            ray.shutdown()


def wait_ready(ray: Any, actors: list[Any], settings: RaySettings, what: str) -> list[Any]:
    """What each actor's `ready()` returns, once every worker has built `what` (its models); a
    worker's build error as raised (a bad spec is an InputError), and an InputError naming the
    resources asked for when the cluster cannot place them all in time."""
    try:
        return list(ray.get([a.ready.remote() for a in actors], timeout=settings.start_timeout_seconds))
    except ray.exceptions.GetTimeoutError:
        s = settings
        raise InputError(
            f"{s.workers} Ray workers of {s.cpus_per_worker:g} CPUs and {s.gpus_per_worker:g} GPUs each were not all up within "
            f"{s.start_timeout_seconds:g} s (the cluster has {ray.cluster_resources()}); lower --ray-workers or the resources per worker"
        ) from None
    except ray.exceptions.RayTaskError as exc:
        if isinstance(exc.cause, GroupedSimError):
            raise exc.cause from None
        raise
    except ray.exceptions.RayActorError as exc:
        raise GroupedSimError(f"a Ray worker died while building {what}: {exc}") from exc


def actor_options(settings: RaySettings, env: dict[str, str], concurrency: int = 1) -> dict[str, Any]:
    """The Ray options of one worker actor: what it reserves, and Ray's own retries (a dead worker
    is restarted `max_restarts` times and the calls it had in flight are sent again)."""
    options: dict[str, Any] = {
        "num_cpus": settings.cpus_per_worker,
        "num_gpus": settings.gpus_per_worker,
        "max_restarts": settings.max_restarts,
        "max_task_retries": settings.max_restarts,
        "max_concurrency": concurrency,
    }
    if env:
        options["runtime_env"] = {"env_vars": env}
    return options


class RayExecutor(DialogueExecutor):
    """The run's dialogues on `settings.workers` Ray actors; see the module docstring."""

    def __init__(self, recipe: DepsRecipe, settings: RaySettings) -> None:
        self.recipe = recipe.model_copy(update={"config": worker_config(recipe.config, settings.cpus_per_worker)})
        self.settings = settings
        self.workers: list[WorkerInfo] = []
        self.actors: list[Any] = []
        self.connected = False

    def start(self) -> None:
        if self.actors:
            return
        ray = import_ray(loopback=starts_local_instance(self.settings))
        self.connected = connect(ray, self.settings)
        options = actor_options(self.settings, forwarded_env(self.recipe.settings), self.recipe.config.runtime.concurrency + 1)
        worker = ray.remote(SimulationWorker)
        self.actors = [worker.options(**options).remote(self.recipe) for _ in range(self.settings.workers)]
        self.workers = self._ready(ray)

    def _ready(self, ray: Any) -> list[WorkerInfo]:
        return [WorkerInfo.model_validate(info) for info in wait_ready(ray, self.actors, self.settings, "the run's participants")]

    def run(self, todo: list[PlannedDialogue], plan: RunPlan, folder: RunFolder, deliver: Deliver) -> None:
        """Feed each live worker up to `runtime.concurrency` dialogues; deliver each as it comes back.
        A worker Ray gave up on (dead past its restarts) gets no more; when none is left, the run
        stops with what is written kept, for --resume."""
        if self.recipe.config.digest() != plan.config.digest() or self.recipe.settings != plan.settings:
            raise ValueError("the workers' recipe is not this plan's: its dialogues would not match their ids")
        ray = import_ray()
        self.start()
        meta = dialogue_meta(plan.settings, plan.config)
        queue, slots = deque(todo), WorkerSlots(len(self.actors), plan.config.runtime.concurrency)
        in_flight: dict[Any, tuple[PlannedDialogue, int]] = {}
        while queue or in_flight:
            while queue and (k := slots.free()) is not None:
                p = queue.popleft()
                in_flight[self.actors[k].run.remote(p.model_dump(mode="json"), meta)] = (p, k)
                slots.take(k)
            if not in_flight:
                raise GroupedSimError(
                    f"every Ray worker died (after {self.settings.max_restarts} restarts each); {len(queue)} dialogues did not run. "
                    f"Written ones are kept: grouped-sim simulate --resume {folder.root}"
                )
            done, _ = ray.wait(list(in_flight), num_returns=1)
            for ref in done:
                p, k = in_flight.pop(ref)
                slots.give_back(k)
                dialogue, died = self._result(ray, ref, p, self.workers[k], meta)
                if died:
                    slots.retire(k)
                deliver(dialogue)

    def _result(self, ray: Any, ref: Any, p: PlannedDialogue, worker: WorkerInfo, meta: dict[str, Any]) -> tuple[Dialogue, bool]:
        """The dialogue a worker returned, and whether the worker is gone for good. When it died
        past its retries (or failed outside the graph), an `infrastructure` error record naming it,
        as a local run records a failure outside the nodes."""
        try:
            return Dialogue.model_validate(ray.get(ref)), False
        except (ray.exceptions.RayActorError, ray.exceptions.RayTaskError) as exc:
            cause = exc.cause if isinstance(exc, ray.exceptions.RayTaskError) and isinstance(exc.cause, Exception) else exc
            update = failure("infrastructure", cause)
            update["error"]["worker"] = worker.name
            return to_dialogue(error_state(p.id, p.seed, update), p.item, meta), isinstance(exc, ray.exceptions.ActorDiedError)

    def describe(self) -> dict[str, Any]:
        s = self.settings
        executor = {"kind": "ray", "address": s.address, "workers": [w.name for w in self.workers], "cpus_per_worker": s.cpus_per_worker, "gpus_per_worker": s.gpus_per_worker}
        return {"executor": executor, "engines": self.workers[0].engines if self.workers else {}}

    def close(self) -> None:
        """Stop the workers (they hold CPUs, GPUs and models) and leave the Ray instance we started."""
        if not self.actors and not self.connected:
            return
        ray = import_ray()
        for actor in self.actors:
            ray.kill(actor)
        self.actors = []
        if self.connected:
            ray.shutdown()
            self.connected = False


def ray_executor(build: Callable[..., SimDeps], settings: RunSettings, config: SimulationConfig, items: Sequence[SimProfile], ray: RaySettings) -> RayExecutor:
    """The executor of a run on Ray: its workers build participants with `build` (see DepsRecipe)."""
    import_ray(loopback=starts_local_instance(ray))  # fail now, before anything is planned or written, when Ray is missing
    return RayExecutor(DepsRecipe(build=build, settings=settings, config=config, items=list(items)), ray)
