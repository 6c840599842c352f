"""A model mapped over chunks of a corpus on Ray actors: `sop mine` and `discriminator data` with
`--executor ray` (the dialogues of `simulate` and `probe` run on graphs/ray_executor.py, whose
connection, options and start-up this shares).

- **Workers own their models.** One actor per worker builds its mapper once from a *recipe*
  (spec strings and settings, a pydantic model whose `mapper()` loads the model): weights never
  travel through the object store, and each actor loads its model with the CPUs and GPUs Ray
  reserved for it.
- **One writer, input order.** Chunks go to whichever worker has a free slot; their results come
  back to the driver, which hands them on strictly in chunk order, so the caller writes the same
  file a local run writes, line for line, and a resume finds the same prefix done.
- **Nothing lost, nothing twice.** A worker that dies is restarted by Ray (`max_restarts`) and the
  chunks it held are sent again (`max_task_retries`); Ray returns each chunk's result once. A chunk
  whose retries are spent stops the run with what was handed on before it kept (both commands
  resume from their output file).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

from grouped_sim.errors import GroupedSimError
from grouped_sim.graphs.ray_executor import RaySettings, WorkerSlots, actor_options, connect, forwarded_env, import_ray, starts_local_instance, wait_ready

IN_FLIGHT_PER_WORKER = 2  # one chunk running, one waiting: a worker never idles on the round trip


class MapRecipe(Protocol):
    """What a worker builds its model from (picklable: specs and settings, never a loaded model)."""

    def mapper(self) -> Callable[[Any], Any]:
        """Load the model and return the function of one chunk (called on the worker, once)."""
        ...


class ChunkWorker:
    """One worker (a Ray actor): the recipe's mapper, built once. A failed build is kept and raised
    by every call, so `ready` reports it to the driver as the error it was (a bad spec is an InputError)."""

    def __init__(self, recipe: MapRecipe) -> None:
        self.failed: Exception | None = None
        self.fn: Callable[[Any], Any] | None = None
        try:
            self.fn = recipe.mapper()
        except Exception as exc:  # raised again by ready(), with its type, to the driver
            self.failed = exc

    def _usable(self) -> Callable[[Any], Any]:
        if self.failed is not None:
            raise self.failed
        return self.fn  # type: ignore[return-value]

    def ready(self) -> bool:
        self._usable()
        return True

    def run(self, chunk: Any) -> Any:
        return self._usable()(chunk)


class InOrder:
    """Results that came back out of order, held until every chunk before them is handed on."""

    def __init__(self) -> None:
        self.held: dict[int, Any] = {}
        self.next = 0

    def put(self, index: int, result: Any) -> Iterator[Any]:
        self.held[index] = result
        while self.next in self.held:
            yield self.held.pop(self.next)
            self.next += 1


def ray_map(recipe: MapRecipe, chunks: Sequence[Any], settings: RaySettings) -> Iterator[Any]:
    """The mapper's result of each chunk, in chunk order, computed on `settings.workers` actors
    (see the module docstring). The workers start at the first `next()` and stop when the
    iterator is exhausted or closed."""
    ray = import_ray(loopback=starts_local_instance(settings))
    connected = connect(ray, settings)
    actors: list[Any] = []
    try:
        worker = ray.remote(ChunkWorker).options(**actor_options(settings, forwarded_env()))
        actors = [worker.remote(recipe) for _ in range(settings.workers)]
        wait_ready(ray, actors, settings, "its model")
        yield from _feed(ray, actors, chunks, settings)
    finally:
        for actor in actors:
            ray.kill(actor)
        if connected:
            ray.shutdown()


def _feed(ray: Any, actors: list[Any], chunks: Sequence[Any], settings: RaySettings) -> Iterator[Any]:
    """Keep each worker `IN_FLIGHT_PER_WORKER` chunks busy, and no more than a window of chunks
    ahead of the one the caller waits for (a slow chunk never makes the driver hold the corpus)."""
    slots, order = WorkerSlots(len(actors), IN_FLIGHT_PER_WORKER), InOrder()
    window = len(actors) * IN_FLIGHT_PER_WORKER * 2
    in_flight: dict[Any, tuple[int, int]] = {}
    sent = 0
    while order.next < len(chunks):
        while sent < len(chunks) and sent < order.next + window and (k := slots.free()) is not None:
            in_flight[actors[k].run.remote(chunks[sent])] = (sent, k)
            slots.take(k)
            sent += 1
        (ref,), _ = ray.wait(list(in_flight), num_returns=1)
        index, k = in_flight.pop(ref)
        slots.give_back(k)
        yield from order.put(index, _result(ray, ref, index, settings))


def _result(ray: Any, ref: Any, index: int, settings: RaySettings) -> Any:
    """A chunk's result; the error a mapper raised, as raised; a worker dead past its retries as a
    GroupedSimError (what was handed on before the chunk is written: the command resumes)."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        if isinstance(exc.cause, Exception):
            raise exc.cause from None
        raise
    except ray.exceptions.RayActorError as exc:
        raise GroupedSimError(
            f"a Ray worker died past its {settings.max_restarts} restarts while on chunk {index + 1}; what was written "
            f"before it is kept: run the same command again to resume. Ray said: {exc}"
        ) from exc
