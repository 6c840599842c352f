"""The grouped-sim pytest plugin: gate a sales agent in a team's own test suite.

Installed with grouped-sim (entry point `pytest11`), it gives every test suite in the environment
two fixtures:

- `sales_scorecard`: a function that simulates an agent (any salesman spec: python:MODULE:FUNCTION,
  endpoint:MODEL@URL, webhook:URL, a model spec) against real customer profiles of the named
  archetypes, on the embedded CPU models, and returns its `Scorecard`:

      def test_my_agent(sales_scorecard):
          card = sales_scorecard("python:my_agent:respond", archetypes=["price-sensitive"], customers=10)
          assert card.conversion("price-sensitive").low > 0.2

  Keyword arguments: customers (per archetype, default 2), trials (default 1), max_turns (4),
  seed (0), customer (a customer model spec), corpus (where the profiles come from: default the
  sample corpus), config (SimulationConfig fields, e.g. {"customer": {"max_new_tokens": 16}}).
  The same call twice in a session simulates once.
- `grouped_sim_sop_db`: the SOP store those customers use. By default one built from the sample
  corpus the first time it is needed and kept in pytest's cache folder (.pytest_cache) across
  sessions; set the ini option `grouped_sim_sop_db = PATH` to use your own (`grouped-sim sop
  build` or `fit`), or override the fixture in a conftest.py.

Importing this module costs nothing but pytest: models load inside the fixtures, so suites that
never ask for them pay nothing. Nothing is fetched from a network.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any, Callable

import pytest

STORE_FORMAT = "1"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "grouped_sim_sop_db",
        "SOP store (a folder from `grouped-sim sop build`) for the sales_scorecard fixture's customers "
        "(default: one built from the sample corpus, cached in .pytest_cache)",
        default="",
    )


def _offline() -> None:
    for key, value in (("HF_HUB_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1"), ("TOKENIZERS_PARALLELISM", "false"), ("ANONYMIZED_TELEMETRY", "False")):
        os.environ.setdefault(key, value)


def build_sample_store(root: Path) -> Path:
    """A store from the sample corpus under `root`, built once; rebuilt when the corpus changed."""
    from grouped_sim.corpus import read_corpus
    from grouped_sim.data import sample_corpus_path
    from grouped_sim.sop_db.store import SOPStore

    corpus = sample_corpus_path()
    stamp = STORE_FORMAT + ":" + hashlib.sha256(corpus.read_bytes()).hexdigest()[:16]
    db, marker = root / "sample-sop-db", root / "sample-sop-db.built"
    if marker.is_file() and marker.read_text(encoding="utf-8") == stamp and db.is_dir():
        return db
    if db.exists():
        shutil.rmtree(db)
    SOPStore(db, create=True).upsert_dialogues(read_corpus(corpus))
    marker.write_text(stamp, encoding="utf-8")
    return db


@pytest.fixture(scope="session")
def grouped_sim_sop_db(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The SOP store of the simulated customers (see the module docstring)."""
    _offline()
    configured = request.config.getini("grouped_sim_sop_db")
    if configured:
        path = Path(configured)
        if not path.is_dir():
            raise pytest.UsageError(f"grouped_sim_sop_db = {configured}: no such folder (build one with grouped-sim sop build --db {configured})")
        return path
    cache = getattr(request.config, "cache", None)
    root = Path(cache.mkdir("grouped-sim")) if cache is not None else tmp_path_factory.mktemp("grouped-sim")
    return build_sample_store(root)


@pytest.fixture(scope="session")
def _grouped_sim_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("grouped-sim-runs")


@pytest.fixture
def sales_scorecard(grouped_sim_sop_db: Path, _grouped_sim_runs: Path) -> Callable[..., Any]:
    """Simulate an agent against named archetypes and return its Scorecard (see the module docstring)."""

    def run(agent: str, archetypes: list[str] | tuple[str, ...] = ("price-sensitive",), **options: Any) -> Any:
        _offline()
        from grouped_sim.app.scoring import score_agent

        options.setdefault("sop_db", grouped_sim_sop_db)
        return score_agent(agent, out_dir=_grouped_sim_runs, archetypes=list(archetypes), **options)

    return run
