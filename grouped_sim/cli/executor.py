"""`--executor local|ray` and the `--ray-*` options: where a batch command's dialogues run.

Local runs them as asyncio tasks in this process; ray runs them on Ray actors that each load the
participants once (grouped_sim/graphs/ray_executor.py), while this process stays the one writer of
the run folder. Ray is an optional extra, imported only when `--executor ray` is asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any, Optional

import typer

from grouped_sim.errors import InputError

EXECUTORS = ("local", "ray")

ExecutorOption = Annotated[
    str,
    typer.Option(
        "--executor",
        help="Where dialogues run: local (asyncio tasks in this process) or ray (Ray actors, each loading the models once; this process still writes the run folder). Ray is an optional extra: pip install 'grouped-sim\\[ray]'.",
    ),
]
RayAddressOption = Annotated[
    Optional[str],
    typer.Option("--ray-address", help="With --executor ray: the Ray cluster to join (HOST:6379, ray://HOST:10001, auto). Default: $RAY_ADDRESS, else a new local Ray instance for this run."),
]
RayWorkersOption = Annotated[
    Optional[int],
    typer.Option("--ray-workers", min=1, help="With --executor ray: Ray actors (default 2); each builds the participants once and runs --concurrency dialogues at a time."),
]
RayCpusOption = Annotated[Optional[float], typer.Option("--ray-cpus-per-worker", min=0, help="With --executor ray: CPUs Ray reserves for each worker (default 1; llama.cpp then uses that many threads).")]
RayGpusOption = Annotated[Optional[float], typer.Option("--ray-gpus-per-worker", min=0, help="With --executor ray: GPUs Ray reserves for each worker (default 0; 0.5 lets two workers share one).")]


def ray_settings(executor: str, address: str | None, workers: int | None, cpus: float | None, gpus: float | None) -> Any:
    """The RaySettings of `--executor ray`, None for local; an InputError for an unknown executor,
    or for --ray-* options given to a local run (they would be silently ignored)."""
    if executor not in EXECUTORS:
        raise InputError(f"--executor {executor!r}: expected local or ray")
    given = {"--ray-address": address, "--ray-workers": workers, "--ray-cpus-per-worker": cpus, "--ray-gpus-per-worker": gpus}
    if executor == "local":
        stray = [flag for flag, value in given.items() if value is not None]
        if stray:
            raise InputError(f"{', '.join(stray)}: only with --executor ray (this run is local)")
        return None
    from grouped_sim.graphs.ray_executor import RaySettings

    chosen = {"address": address, "workers": workers, "cpus_per_worker": cpus, "gpus_per_worker": gpus}
    return RaySettings(**{k: v for k, v in chosen.items() if v is not None})


def dialogue_executor(ray: Any, build: Callable[..., Any], settings: Any, config: Any, items: Sequence[Any], local: Callable[[], Any]) -> Any:
    """What runs the dialogues: `local` (a function building the participants here) for a local
    run, else Ray workers that each build them with `build` (a module-level function)."""
    if ray is None:
        return local
    from grouped_sim.graphs.ray_executor import ray_executor

    return ray_executor(build, settings, config, items, ray)


@contextmanager
def executor_session(ray: Any) -> Iterator[None]:
    """For a command that runs several runs (probe's variants): with --executor ray, one Ray
    connection for all of them (a local instance starts once); nothing for a local run."""
    if ray is None:
        yield
        return
    from grouped_sim.graphs.ray_executor import ray_session

    with ray_session(ray):
        yield


def chunk_map(ray: Any) -> Callable[[Any, Sequence[Any]], Iterator[Any]] | None:
    """None for a local run; with --executor ray, a function (recipe, chunks) mapping the recipe's
    model over the chunks on Ray workers, each result in chunk order (grouped_sim/graphs/ray_map.py).
    Ray is imported now: where it is missing, the command fails before anything is written."""
    if ray is None:
        return None
    from grouped_sim.graphs.ray_executor import import_ray, starts_local_instance
    from grouped_sim.graphs.ray_map import ray_map

    import_ray(loopback=starts_local_instance(ray))
    return lambda recipe, chunks: ray_map(recipe, chunks, ray)
