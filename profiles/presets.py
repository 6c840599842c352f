"""The built-in archetypes, difficulty tiers and domains, loaded from `data/presets.yaml`.

Kept as data so a team can add its own archetype (with its description and cue words) or change a
tier's buy propensity without touching code; `--presets FILE` swaps the whole file.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from grouped_sim.errors import InputError
from grouped_sim.io import load_user_yaml
from grouped_sim.resources import load_resource

class Archetype(BaseModel):
    id: str
    description: str
    cues: list[str] = Field(..., min_length=1, description="words the model-written text must use at least one of")
    aliases: list[str] = Field(default_factory=list)

    @property
    def brief(self) -> str:
        """The first sentence of the description: one line for prompts that list every archetype."""
        text = " ".join(self.description.split())
        end = re.search(r"[.!?](?:\s|$)", text)
        return text[: end.start() + 1] if end else text

    def cue_hits(self, text: str) -> list[str]:
        """Which cue words occur in `text` (whole words, case-insensitive)."""
        lowered = text.lower()
        return [c for c in self.cues if re.search(r"(?<![a-z])" + re.escape(c.lower()) + r"(?![a-z])", lowered)]


class Tier(BaseModel):
    id: str
    buy_propensity: float = Field(..., ge=0.0, le=1.0)
    style: str


class Defaults(BaseModel):
    age_min: int = Field(22, ge=16, le=100)
    age_max: int = Field(75, ge=16, le=100)
    tier_weights: dict[str, float] = Field(default_factory=dict)


class Presets(BaseModel):
    """Everything the spec parser, the generator and the rule check need to know about the vocabulary."""

    archetypes: dict[str, Archetype]
    tiers: dict[str, Tier]
    domains: dict[str, list[str]]
    defaults: Defaults = Defaults()

    def archetype(self, name: str) -> Archetype:
        key = self.resolve_archetype(name)
        if key is None:
            raise InputError(f"archetype {name!r}: unknown; expected one of {', '.join(self.archetypes)}")
        return self.archetypes[key]

    def tier(self, name: str) -> Tier:
        key = normalise(name)
        if key not in self.tiers:
            raise InputError(f"difficulty tier {name!r}: unknown; expected one of {', '.join(self.tiers)}")
        return self.tiers[key]

    def resolve_archetype(self, name: str) -> str | None:
        key = normalise(name)
        if key in self.archetypes:
            return key
        for aid, arch in self.archetypes.items():
            if key in {normalise(a) for a in arch.aliases}:
                return aid
        return None

    def resolve_domain(self, name: str) -> str | None:
        key = normalise(name)
        if key in self.domains:
            return key
        for did, aliases in self.domains.items():
            if key in {normalise(a) for a in aliases}:
                return did
        return None


def normalise(name: str) -> str:
    """'Price Sensitive' and 'price_sensitive' name the same archetype as 'price-sensitive'."""
    return re.sub(r"[\s_]+", "-", name.strip().lower())


def _build(raw: Any, where: str) -> Presets:
    if not isinstance(raw, dict):
        raise InputError(f"{where}: expected a mapping with archetypes, tiers and domains")
    for key in ("archetypes", "tiers", "domains", "defaults"):
        if not isinstance(raw.get(key) or {}, dict):
            raise InputError(f"{where}: field '{key}': expected a mapping, got {type(raw[key]).__name__}")
    for key in ("archetypes", "tiers"):
        for name, value in (raw.get(key) or {}).items():
            if not isinstance(value, dict):
                raise InputError(f"{where}: field '{key}.{name}': expected a mapping, got {type(value).__name__}")
    try:
        archetypes = {k: Archetype(id=k, **v) for k, v in (raw.get("archetypes") or {}).items()}
        tiers = {k: Tier(id=k, **v) for k, v in (raw.get("tiers") or {}).items()}
        return Presets(archetypes=archetypes, tiers=tiers, domains=raw.get("domains") or {}, defaults=Defaults(**(raw.get("defaults") or {})))
    except (TypeError, ValidationError) as exc:
        raise InputError(f"{where}: not a valid presets file: {exc}") from exc


@lru_cache(maxsize=1)
def _builtin() -> Presets:
    return _build(load_resource("grouped_sim.profiles", "data/presets.yaml"), "profiles/data/presets.yaml")


def load_presets(path: Path | str | None = None) -> Presets:
    """The built-in presets, or a YAML file of the same shape."""
    if path is None:
        return _builtin()
    return _build(load_user_yaml(path, "presets file"), str(path))

