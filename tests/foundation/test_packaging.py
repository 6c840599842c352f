"""The wheel installs one import package, `grouped_sim`, holding every module and data file we ship.

The repository keeps graphs/, sop_db/, profiles/ and discriminator/ at the top (the design card);
setuptools' package-dir maps them under grouped_sim. A forgotten subpackage or data file would only
show up on a user's machine, so the wheel is built and read here.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCE_FOLDERS = {"grouped_sim": "grouped_sim", "graphs": "grouped_sim/graphs", "sop_db": "grouped_sim/sop_db", "profiles": "grouped_sim/profiles", "discriminator": "grouped_sim/discriminator"}
SHIPPED_DATA = ("*.yaml", "*.jsonl", "*.safetensors", "adapter_config.json", "*.npz", "coherence.json")


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    # Build from a clean copy: setuptools reuses ./build, and a stale one would hide a missing package.
    source = tmp_path_factory.mktemp("source") / "grouped-sim"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", ".venv", "runs", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache"))
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(source)],
        check=True,
        capture_output=True,
        cwd=out,
    )
    (wheel,) = out.glob("grouped_sim-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def expected_paths(patterns: tuple[str, ...]) -> set[str]:
    """Where each source file of the five folders must land in the wheel."""
    found = set()
    for folder, target in SOURCE_FOLDERS.items():
        for pattern in patterns:
            for path in (ROOT / folder).rglob(pattern):
                if "__pycache__" in path.parts:
                    continue
                found.add(f"{target}/{path.relative_to(ROOT / folder).as_posix()}")
    return found


def test_the_only_top_level_import_name_is_grouped_sim(wheel_names: set[str]) -> None:
    top = {name.split("/")[0] for name in wheel_names if not name.split("/")[0].endswith((".dist-info", ".data"))}
    assert top == {"grouped_sim"}


def test_every_module_of_the_five_folders_is_in_the_wheel(wheel_names: set[str]) -> None:
    missing = sorted(p for p in expected_paths(("*.py",)) if p not in wheel_names)
    assert missing == []


def test_shipped_data_files_are_in_the_wheel(wheel_names: set[str]) -> None:
    missing = sorted(p for p in expected_paths(SHIPPED_DATA) if p not in wheel_names)
    assert missing == []
