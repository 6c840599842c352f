"""graphs/ray_map.py on the session's local Ray instance (tests/conftest.py `ray_runtime`): a
recipe's mapper over chunks on two worker actors, results handed on in chunk order, a worker
killed mid-chunk retried by Ray with nothing lost or repeated, and a worker dead past its
restarts stopping the map with what came before it kept."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from grouped_sim.errors import GroupedSimError
from tests.runtime.fakes import DIE_FLAG_ENV, DyingSquares


def _map(recipe: DyingSquares, chunks: list[list[int]], **settings) -> list[list[tuple[int, int]]]:
    from grouped_sim.graphs.ray_executor import RaySettings
    from grouped_sim.graphs.ray_map import ray_map

    return list(ray_map(recipe, chunks, RaySettings(workers=2, **settings)))


CHUNKS = [[i, i + 100] for i in range(12)]


def test_results_come_back_in_chunk_order_from_both_workers(ray_runtime) -> None:
    results = _map(DyingSquares(), CHUNKS)
    assert [[x for x, _ in r] for r in results] == [[i * i, (i + 100) ** 2] for i in range(12)]
    assert len({pid for r in results for _, pid in r}) == 2, "one worker did all the work: nothing ran in parallel"


def _arm() -> Path:
    flag = Path(os.environ[DIE_FLAG_ENV])
    flag.write_text("armed", encoding="utf-8")
    return flag


def _taken(flag: Path) -> int:
    taken = Path(f"{flag}.taken")
    assert not flag.exists() and taken.is_file(), "no worker died"
    pid = int(taken.read_text(encoding="utf-8"))
    taken.unlink()
    return pid


def test_a_worker_killed_mid_chunk_is_restarted_and_its_chunk_sent_again(ray_runtime) -> None:
    flag = _arm()
    results = _map(DyingSquares(die=True), CHUNKS, max_restarts=2)
    dead = _taken(flag)
    assert [[x for x, _ in r] for r in results] == [[i * i, (i + 100) ** 2] for i in range(12)]  # all 12, once each, in order
    pids = {pid for r in results for _, pid in r}
    # The survivor and the dead worker's restart (a third process) delivered the rest; the dead one
    # delivered at most its first chunk (Ray resends a finished chunk whose reply it had not received).
    assert len(pids | {dead}) == 3


def test_a_worker_dead_past_its_restarts_stops_the_map_after_the_chunks_before_it(ray_runtime) -> None:
    flag = _arm()
    got: list[list[tuple[int, int]]] = []
    from grouped_sim.graphs.ray_executor import RaySettings
    from grouped_sim.graphs.ray_map import ray_map

    with pytest.raises(GroupedSimError, match="died past its 0 restarts while on chunk [0-9]+; what was written before it is kept: run the same command again to resume"):
        for result in ray_map(DyingSquares(die=True), CHUNKS, RaySettings(workers=2, max_restarts=0)):
            got.append(result)
    _taken(flag)
    assert [[x for x, _ in r] for r in got] == [[i * i, (i + 100) ** 2] for i in range(len(got))]  # a prefix, in order
    assert len(got) < len(CHUNKS)
