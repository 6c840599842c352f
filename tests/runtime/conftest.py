"""Fixtures for the runtime tests: a fast config, profiles file, and subprocess environment.

Generation is kept to a few tokens per turn and the salesman is a scripted Python callable
(through the real `python:` adapter), so runs exercise the real model, graph and I/O in seconds.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import yaml

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
CLI = [sys.executable, "-c", "from grouped_sim.cli.app import main; main()"]
SCRIPTED = f"python:{HERE / 'agents.py'}:scripted"


def fast_config_dict() -> dict:
    return {
        "max_turns": 2,
        "customer": {"max_new_tokens": 8},
        "salesman": {"max_new_tokens": 8},
        "role_guard_retries": 0,
        "best_of": {"n": 1},
        "runtime": {"backoff_seconds": 0.01, "backoff_max_seconds": 0.02},
    }


@pytest.fixture(scope="session")
def fast_config_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cfg") / "fast.yaml"
    path.write_text(yaml.safe_dump(fast_config_dict()), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def fast_config():
    from grouped_sim.config import SimulationConfig, SimulatorMode

    return SimulationConfig.model_validate({**fast_config_dict(), "mode": SimulatorMode.prompt_only.value})


@pytest.fixture(scope="session")
def sub_env() -> dict[str, str]:
    """Subprocess environment: offline, and one torch thread (2 shared cores oversubscribe badly)."""
    env = dict(os.environ)
    env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)})
    return env


@pytest.fixture(scope="session")
def items(corpus):
    from grouped_sim.graphs.plan import sample_profiles

    return sample_profiles(corpus, 4, seed=3)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One intra-op thread while these tests run: on 2 shared cores, 2 threads per process
    oversubscribe and generation gets several times slower (measured 3-10x under load)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
