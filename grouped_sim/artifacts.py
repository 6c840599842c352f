"""Files grouped-sim wrote and reads back, validated on read: the one mechanism for all of them.

Scorer heads and cards, sim folders, SOP stores, plans, run summaries and reports are written by
one command and read by another, often much later, on another machine or by another version. On
the way they can be cut short (a full disk, a copy interrupted), edited by hand, or replaced by a
file of the same name from elsewhere. Trusting them turns that into a traceback from deep inside
numpy, zipfile or sqlite, or, worse, into figures computed from half a file.

So a reader of an artifact does not parse it bare: it names the artifact (`Artifact`: what it is,
and the command that writes it again) and parses inside `artifact.reading(path)`. Whatever goes
wrong in there, a parse error of any library or a clear InputError of our own readers, leaves as
one `ArtifactError` (exit 2): "PATH: what is wrong; rebuild it: COMMAND". Checks of meaning (a
head whose weights do not match its standardisation, a split whose halves overlap) use
`artifact.require(ok, path, problem)` and give the same error.
"""

from __future__ import annotations

import sqlite3
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from grouped_sim.errors import InputError, validation_detail
from grouped_sim.io import read_json

M = TypeVar("M", bound=BaseModel)

# What libraries raise on a damaged or foreign file: truncated or non-zip archives (numpy's .npz),
# bad compressed data, a database that is not one, missing keys, wrong types, wrong shapes. A bug
# of ours (AttributeError, NameError, ...) is deliberately not here: it must stay a traceback.
PARSE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    EOFError,
    ValueError,  # includes json.JSONDecodeError, UnicodeDecodeError, pydantic's ValidationError
    KeyError,
    IndexError,
    TypeError,
    zipfile.BadZipFile,
    zlib.error,
    sqlite3.DatabaseError,
)


class ArtifactError(InputError):
    """A file grouped-sim wrote is damaged, foreign or from another version: exit 2, with the
    command that rebuilds it. Nothing was written when it is raised."""


@dataclass(frozen=True)
class Artifact:
    """One kind of file or folder we write and read back: what it is, and how to make it again.

    `rebuild` is shown to the user as is: a command (`grouped-sim coherence train --out DIR`) or a
    step ("remove DIR, then rerun grouped-sim fit ..."), filled in by whoever knows the folder.
    """

    kind: str
    rebuild: str

    def error(self, path: Path | str, problem: str) -> ArtifactError:
        return ArtifactError(f"{path}: {problem}; rebuild it: {self.rebuild}")

    def require(self, ok: bool, path: Path | str, problem: str) -> None:
        """An ArtifactError about `path` unless `ok`: a check of meaning, not of syntax."""
        if not ok:
            raise self.error(path, problem)

    @contextmanager
    def reading(self, path: Path | str, also: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
        """Parse `path` inside this block: any failure leaves as one ArtifactError naming it.
        `also`: a library's own error types for a damaged file (Chroma's, for a store)."""
        try:
            yield
        except ArtifactError:
            raise
        except InputError as exc:  # our own readers' clear message (file, line, field): keep it, add the way out
            raise ArtifactError(f"{exc}; rebuild it: {self.rebuild}") from exc
        except ValidationError as exc:
            raise self.error(path, f"not the {self.kind} this grouped-sim writes ({validation_detail(exc, '<file>')})") from exc
        except PARSE_ERRORS + also as exc:
            raise self.error(path, f"damaged or foreign, cannot be read as the {self.kind} ({describe(exc)})") from exc

    def read_json(self, path: Path | str) -> Any:
        """A JSON artifact, parsed (any JSON value)."""
        with self.reading(path):
            return read_json(path, self.kind)

    def read_model(self, path: Path | str, model: type[M]) -> M:
        """A JSON artifact validated as `model`: its fields are what a reader may rely on."""
        with self.reading(path):
            return model.model_validate(read_json(path, self.kind))


def describe(exc: BaseException) -> str:
    """A library exception in a few words: its type when its message alone says little."""
    if isinstance(exc, FileNotFoundError):
        return "file missing"
    if isinstance(exc, KeyError):
        return f"no entry {exc.args[0]!r}" if exc.args else "an entry is missing"
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."
