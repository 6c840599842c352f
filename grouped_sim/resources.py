"""The one loader for the data grouped-sim ships: prompts, lexical cues, presets, taxonomy, dynamics.

Every data file lives inside the installed package (read through importlib.resources, so it
travels with the wheel) and is parsed once per process. A user's own file of the same kind (a
taxonomy, presets) goes through `grouped_sim.io.load_user_yaml`, the one reader of user files.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml


@lru_cache(maxsize=None)
def resource_text(package: str, relpath: str) -> str:
    """The text of a data file shipped in `package` (e.g. "grouped_sim", "data/cues.yaml")."""
    return resources.files(package).joinpath(relpath).read_text(encoding="utf-8")


@lru_cache(maxsize=None)
def load_resource(package: str, relpath: str) -> Any:
    """A shipped YAML data file, parsed once. Callers must not mutate the result."""
    return yaml.safe_load(resource_text(package, relpath))


def resource_digest(package: str, relpaths: list[str] | tuple[str, ...]) -> str:
    """A short content hash of shipped files: changes exactly when one of their bytes does."""
    blob = hashlib.sha256()
    for relpath in sorted(relpaths):
        blob.update(relpath.encode() + b"\0" + resource_text(package, relpath).encode() + b"\0")
    return blob.hexdigest()[:12]
