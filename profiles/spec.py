"""Constraints for profile generation: one profile's constraints, and a population spec.

A user states what they want in one of three ways, all ending as a `PopulationSpec`:

- plain language: ``"price-sensitive restaurant owner, 50s, already on a competitor's platform"``
  or ``"40% price-sensitive, ages 25-65, food delivery"`` (`parse_constraints_text`);
- an archetype name (`--archetype`), which is a one-line population;
- a YAML/JSON spec file with the fields of `PopulationSpec` (`load_spec_file`).

`PopulationSpec.sample(n)` turns the mix into N concrete `ProfileConstraints` by quota (largest
remainder), not by independent draws, so a small N still meets the requested shares as closely as
integers allow; ages are drawn uniformly in the range.
"""

from __future__ import annotations

import math
import random
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from grouped_sim.errors import InputError
from grouped_sim.io import load_user_yaml, read_json
from grouped_sim.profiles.presets import Presets, load_presets, normalise

ROLE_NOUNS = (
    "owner", "manager", "director", "founder", "landlord", "accountant", "chef", "homeowner", "tenant",
    "freelancer", "retiree", "pensioner", "student", "partner", "officer", "buyer", "administrator", "head",
)


class ProfileConstraints(BaseModel):
    """What one generated profile must satisfy; the rule check reads exactly these fields."""

    model_config = ConfigDict(extra="forbid")

    archetype: str | None = None
    tier: str | None = None
    domain: str | None = None
    age_min: int | None = Field(None, ge=16, le=100)
    age_max: int | None = Field(None, ge=16, le=100)
    age: int | None = Field(None, ge=16, le=100, description="the drawn age the generator writes into the profile")
    role: str | None = None
    must_have: list[str] = Field(default_factory=list)

    def describe(self) -> str:
        """The constraints as one line (shown to chat models and the judge, and in reports)."""
        parts = []
        if self.archetype:
            parts.append(f"archetype {self.archetype}")
        if self.tier:
            parts.append(f"difficulty {self.tier}")
        if self.domain:
            parts.append(f"domain {self.domain}")
        if self.age is not None:
            parts.append(f"age {self.age}")
        elif self.age_min is not None or self.age_max is not None:
            parts.append(f"age {self.age_min or ''}-{self.age_max or ''}")
        if self.role:
            parts.append(f"role: {self.role}")
        if self.must_have:
            parts.append("must have: " + "; ".join(self.must_have))
        return "; ".join(parts)


class PopulationSpec(BaseModel):
    """A mix of customers. Weights need not sum to 1: named shares are kept, the rest is split evenly.

    ``archetypes: {price-sensitive: 0.4}`` means 40 % price-sensitive and the other 60 % spread over
    the other archetypes; an empty mapping means all archetypes equally. Tiers default to the presets'
    weights, domains to all domains equally.
    """

    model_config = ConfigDict(extra="forbid")

    archetypes: dict[str, float] = Field(default_factory=dict)
    tiers: dict[str, float] = Field(default_factory=dict)
    domains: dict[str, float] = Field(default_factory=dict)
    age_min: int | None = Field(None, ge=16, le=100)
    age_max: int | None = Field(None, ge=16, le=100)
    role: str | None = None
    must_have: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> PopulationSpec:
        for name, weights in (("archetypes", self.archetypes), ("tiers", self.tiers), ("domains", self.domains)):
            for key, value in weights.items():
                if value < 0:
                    raise ValueError(f"{name}.{key}: a share cannot be negative ({value})")
        if self.age_min is not None and self.age_max is not None and self.age_min > self.age_max:
            raise ValueError(f"age_min {self.age_min} is above age_max {self.age_max}")
        return self

    def resolved(self, presets: Presets | None = None) -> PopulationSpec:
        """Names mapped to preset ids (aliases, case, spacing); unknown names are an InputError."""
        presets = presets or load_presets()
        archetypes: dict[str, float] = {}
        for name, weight in self.archetypes.items():
            key = presets.resolve_archetype(name)
            if key is None:
                raise InputError(f"archetype {name!r}: unknown; expected one of {', '.join(presets.archetypes)}")
            archetypes[key] = archetypes.get(key, 0.0) + weight
        tiers: dict[str, float] = {}
        for name, weight in self.tiers.items():
            tiers[presets.tier(name).id] = tiers.get(presets.tier(name).id, 0.0) + weight
        domains: dict[str, float] = {}
        for name, weight in self.domains.items():
            key = presets.resolve_domain(name) or normalise(name)
            domains[key] = domains.get(key, 0.0) + weight
        return self.model_copy(update={"archetypes": archetypes, "tiers": tiers, "domains": domains})

    def target_shares(self, presets: Presets | None = None) -> dict[str, dict[str, float]]:
        """The shares each dimension should realise, after filling the unnamed rest."""
        presets = presets or load_presets()
        spec = self.resolved(presets)
        tier_weights = spec.tiers or {k: v for k, v in presets.defaults.tier_weights.items() if k in presets.tiers}
        return {
            "archetype": complete_shares(spec.archetypes, list(presets.archetypes)),
            "tier": complete_shares(tier_weights, list(presets.tiers)),
            "domain": complete_shares(spec.domains, list(presets.domains)),
        }

    def age_range(self, presets: Presets | None = None) -> tuple[int, int]:
        presets = presets or load_presets()
        low = self.age_min if self.age_min is not None else presets.defaults.age_min
        high = self.age_max if self.age_max is not None else max(low, presets.defaults.age_max)
        return low, high

    def sample(self, n: int, seed: int = 0, presets: Presets | None = None) -> list[ProfileConstraints]:
        """N concrete constraints: quotas per dimension, shuffled independently, ages uniform."""
        if n < 1:
            raise InputError(f"-n {n}: need at least one profile")
        presets = presets or load_presets()
        shares = self.target_shares(presets)
        rng = random.Random(seed)
        columns = {dim: quota_list(share, n, rng) for dim, share in shares.items()}
        low, high = self.age_range(presets)
        out = []
        for i in range(n):
            out.append(
                ProfileConstraints(
                    archetype=columns["archetype"][i],
                    tier=columns["tier"][i],
                    domain=columns["domain"][i],
                    age_min=low,
                    age_max=high,
                    age=rng.randint(low, high),
                    role=self.role,
                    must_have=list(self.must_have),
                )
            )
        return out


def complete_shares(named: dict[str, float], universe: list[str]) -> dict[str, float]:
    """Normalised shares over `universe`: named ones as given, the remainder split over the unnamed."""
    if not named:
        return {k: 1.0 / len(universe) for k in universe}
    total = sum(named.values())
    rest = [k for k in universe if k not in named]
    shares = dict(named)
    if total < 1.0 - 1e-9 and rest:
        for k in rest:
            shares[k] = (1.0 - total) / len(rest)
        total = 1.0
    if total <= 0:
        raise InputError("the shares of a population spec add up to zero")
    return {k: v / total for k, v in shares.items() if v > 0}


def quota_list(shares: dict[str, float], n: int, rng: random.Random) -> list[str]:
    """Largest-remainder quotas for N items (ties broken at random), shuffled."""
    keys = list(shares)
    exact = {k: shares[k] * n for k in keys}
    counts = {k: math.floor(exact[k]) for k in keys}
    left = n - sum(counts.values())
    order = sorted(keys, key=lambda k: (-(exact[k] - counts[k]), rng.random()))
    for k in order[:left]:
        counts[k] += 1
    items = [k for k in keys for _ in range(counts[k])]
    rng.shuffle(items)
    return items


# ---- plain language ------------------------------------------------------------------------

_PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s*%\s*(?:of\s+them\s+|are\s+)?(.+)")
_AGE_RANGE = re.compile(r"\b(?:ages?d?\s*)?(\d{2})\s*(?:-|–|—|to)\s*(\d{2})\b")
_DECADE = re.compile(r"\b(?:in\s+(?:their|his|her)\s+)?(\d)0s\b")
_OVER = re.compile(r"\b(?:over|older than|above)\s+(\d{2})\b")
_UNDER = re.compile(r"\b(?:under|younger than|below)\s+(\d{2})\b")
_AGE_ONE = re.compile(r"\b(?:age|aged)\s+(\d{2})\b")
_TIER = re.compile(r"\b(very[\s-]hard|adversarial|easy|medium|hard)\b")


def _find_archetypes(text: str, presets: Presets) -> list[tuple[str, str]]:
    """(archetype id, matched words) for every archetype named in `text`, longest names first."""
    found: list[tuple[str, str]] = []
    lowered = text.lower()
    for aid, arch in presets.archetypes.items():
        names = sorted({aid, aid.replace("-", " "), *[a.lower() for a in arch.aliases]}, key=len, reverse=True)
        for name in names:
            if re.search(r"(?<![a-z])" + re.escape(name) + r"(?![a-z])", lowered):
                found.append((aid, name))
                break
    return found


def _find_domain(text: str, presets: Presets) -> tuple[str, str] | None:
    lowered = text.lower()
    for did, aliases in presets.domains.items():
        for name in sorted({did, did.replace("-", " "), *[a.lower() for a in aliases]}, key=len, reverse=True):
            if re.search(r"(?<![a-z])" + re.escape(name) + r"(?![a-z])", lowered):
                return did, name
    return None


def parse_constraints_text(text: str, presets: Presets | None = None) -> PopulationSpec:
    """Read plain-language constraints into a population spec.

    Comma/semicolon clauses are read one by one: percentages ("40% price-sensitive"), archetype and
    tier words, domains (and their aliases such as "restaurant"), ages ("50s", "25-65", "over 60"),
    a role ("restaurant owner"); a clause that names none of these is kept as a must-have trait.
    """
    presets = presets or load_presets()
    if not text or not text.strip():
        raise InputError("--constraints: empty text")
    spec: dict[str, Any] = {"archetypes": {}, "tiers": {}, "domains": {}, "must_have": []}
    for clause in [c.strip() for c in re.split(r"[,;\n]+", text) if c.strip()]:
        lowered = clause.lower()
        consumed = False
        share = None
        m = _PERCENT.search(lowered)
        if m:
            share = float(m.group(1)) / 100.0
            lowered = m.group(2)
        archetypes = _find_archetypes(lowered, presets)
        for aid, name in archetypes:
            spec["archetypes"][aid] = share if share is not None else 1.0
            lowered = lowered.replace(name, " ")
            consumed = True
        tier = _TIER.search(lowered)
        if tier and (share is None or not archetypes):
            tid = normalise(tier.group(1))
            spec["tiers"][tid] = share if share is not None else 1.0
            lowered = lowered.replace(tier.group(0), " ")
            consumed = True
        domain = _find_domain(lowered, presets)
        if domain:
            did, name = domain
            if share is not None and not archetypes and not tier:
                spec["domains"][did] = share
            else:
                spec["domains"].setdefault(did, 1.0)
            consumed = True
        if (r := _AGE_RANGE.search(lowered)) is not None:
            spec["age_min"], spec["age_max"] = sorted((int(r.group(1)), int(r.group(2))))
            consumed = True
        elif (d := _DECADE.search(lowered)) is not None:
            spec["age_min"], spec["age_max"] = int(d.group(1)) * 10, int(d.group(1)) * 10 + 9
            consumed = True
        elif (o := _OVER.search(lowered)) is not None:
            spec["age_min"] = int(o.group(1)) + 1
            consumed = True
        elif (u := _UNDER.search(lowered)) is not None:
            spec["age_max"] = int(u.group(1)) - 1
            consumed = True
        elif (a := _AGE_ONE.search(lowered)) is not None:
            spec["age_min"] = spec["age_max"] = int(a.group(1))
            consumed = True
        words = re.findall(r"[a-z][a-z'\-]*", lowered)
        noun = next((i for i, w in enumerate(words) if w.rstrip("s") in ROLE_NOUNS), None)
        if noun is not None and not spec.get("role"):
            # The role is the original clause minus the archetype and tier words, e.g. "restaurant owner".
            role_words = [w for w in words[: noun + 1] if w not in {"a", "an", "the", "tier", "difficulty", "ages", "aged", "age"}]
            spec["role"] = " ".join(role_words[-4:])
            consumed = True
        if re.search(r"\bweighted\b", lowered) and "tier" in lowered:
            consumed = True  # "tiers weighted": the default tier weights
        if not consumed:
            trait = re.sub(r"^(?:must[\s-]have:?|with|who)\s+", "", clause.strip(), flags=re.I)
            spec["must_have"].append(trait)
    try:
        return PopulationSpec.model_validate(spec).resolved(presets)
    except ValidationError as exc:
        raise InputError.from_validation(exc, "--constraints", whole="<constraints>") from exc


def spec_for_archetype(name: str, presets: Presets | None = None) -> PopulationSpec:
    presets = presets or load_presets()
    return PopulationSpec(archetypes={presets.archetype(name).id: 1.0})


def load_spec_file(path: Path | str, presets: Presets | None = None) -> PopulationSpec:
    """A YAML or JSON file with PopulationSpec fields; a bad field names the file and the field."""
    path = Path(path)
    raw = read_json(path, "spec file") if path.suffix == ".json" else load_user_yaml(path, "spec file")
    if not isinstance(raw, dict):
        raise InputError(f"{path}: expected a mapping of spec fields (archetypes, tiers, domains, age_min, age_max, role, must_have)")
    if "age" in raw and isinstance(raw["age"], dict):
        age = raw.pop("age")
        raw.setdefault("age_min", age.get("min"))
        raw.setdefault("age_max", age.get("max"))
    try:
        spec = PopulationSpec.model_validate(raw)
    except ValidationError as exc:
        raise InputError.from_validation(exc, str(path), whole="<spec>") from exc
    try:  # names and shares are checked against the presets here, so their errors name this file
        resolved = spec.resolved(presets)
        resolved.target_shares(presets)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from exc
    return resolved
