"""The plugin's example runs on the suite's shared SOP store instead of building its own."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def grouped_sim_sop_db(store_dir: Path) -> Path:
    return store_dir
