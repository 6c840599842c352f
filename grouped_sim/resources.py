"""The one loader for the data grouped-sim ships: prompts, lexical cues, presets, taxonomy, dynamics.

Every data file lives inside the installed package (read through importlib.resources, so it
travels with the wheel) and is parsed once per process. A user's own file of the same kind (a
taxonomy, presets) goes through `load_user_yaml`, which turns every way it can be unreadable into an
InputError naming the file.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from grouped_sim.errors import InputError


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


def load_user_yaml(path: Path | str, what: str) -> Any:
    """A YAML file the user gave (`what` names its kind in errors); never a traceback."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: {what} not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: {what} is not UTF-8 text (byte {exc.start})") from exc
    except OSError as exc:
        raise InputError(f"{path}: cannot read the {what}: {exc.strerror}") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise InputError(f"{where}: {what} is not valid YAML ({getattr(exc, 'problem', None) or exc})") from exc
