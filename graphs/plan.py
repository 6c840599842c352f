"""What a run simulates: plan items, the models and store of the run, and content ids.

A dialogue's id is a hash of everything that shapes it (profile, domain, seed, model specs, config,
prompt version), so the same job names the same dialogues: a rerun or `--resume` skips what is
written, and two runs of different agents on the same plan pair their dialogues by customer.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

from typing import Any

from pydantic import BaseModel, Field, ValidationError

from grouped_sim.config import DEFAULT_CHAT_SPEC, DEFAULT_CUSTOMER_SPEC, SimulationConfig
from grouped_sim.errors import InputError
from grouped_sim.io import iter_jsonl
from grouped_sim.prompts import prompt_version
from grouped_sim.schemas import Dialogue, Profile


class SimProfile(BaseModel):
    """A profile to simulate, the domain of the call, and where it came from."""

    profile: Profile
    domain: str
    source: str = Field("", description="corpus dialogue id or file:line the profile came from")
    trial: int = Field(0, ge=0, description="which of the customer's seeded repeats this is (simulate --trials N)")
    customer: int | None = Field(None, ge=0, description="the customer's position in the plan before trials were repeated")


class RunSettings(BaseModel):
    """The models and store of a run (recorded in run.json)."""

    salesman: str = DEFAULT_CHAT_SPEC
    customer: str = DEFAULT_CUSTOMER_SPEC
    manager: str = Field("light", description="light (fitted dynamics when the run has a sim folder, else the hand-set rules), prior (the hand-set rules), or a model spec for an LLM manager")
    sop_db: str | None = None
    sim: str | None = Field(None, description="a sim folder from `grouped-sim fit` (absolute path): its store, taxonomy and fitted dynamics")
    sim_digest: str | None = Field(None, description="the fit's identity, so a refitted folder never reuses old dialogue ids")
    salesman_key_env: str | None = Field(None, description="env var holding the endpoint: salesman's Bearer key (its name only, never the key)")
    plan_from: str | None = Field(None, description="the run whose customers and seeds this run repeats (simulate --plan-from)")


def with_trials(items: list[SimProfile], trials: int) -> list[SimProfile]:
    """Each customer `trials` times, trial-major: trial 0 keeps the positions (so the seeds and
    dialogue ids) of a single-trial run; trial t of customer i sits at t * len(items) + i, so its
    seed, and with it its dialogue id, differs."""
    if trials < 1:
        raise InputError(f"--trials {trials}: expected 1 or more")
    return [item.model_copy(update={"trial": t, "customer": i}) for t in range(trials) for i, item in enumerate(items)]


def sample_profiles(corpus: list[Dialogue], n: int, seed: int) -> list[SimProfile]:
    """N profiles from a corpus's real customers, archetypes in turn so a small N still covers them."""
    with_profile = [d for d in corpus if d.profile is not None]
    if not with_profile:
        raise InputError("the corpus has no dialogue with a profile to simulate; pass --profiles-file")
    rng = random.Random(seed)
    by_archetype: dict[str, list[Dialogue]] = {}
    for d in with_profile:
        by_archetype.setdefault(d.profile.archetype or "", []).append(d)  # type: ignore[union-attr]
    for group in by_archetype.values():
        rng.shuffle(group)
    order = sorted(by_archetype)
    picked: list[SimProfile] = []
    i = 0
    while len(picked) < n:
        group = by_archetype[order[i % len(order)]]
        d = group[(i // len(order)) % len(group)]
        picked.append(SimProfile(profile=d.profile, domain=d.domain, source=d.id))  # type: ignore[arg-type]
        i += 1
    return picked


def profile_item(raw: dict[str, Any], where: str, default_domain: str, source: str) -> SimProfile:
    """A plan item from a profile object, or from {"profile": {...}, "domain": "..."}."""
    nested = raw.get("profile")
    try:
        profile = Profile.model_validate(nested if "profile" in raw else raw)
    except ValidationError as exc:
        raise InputError.from_validation(exc, where) from exc
    domain = (raw.get("domain") if "profile" in raw else None) or profile.domain or default_domain
    if not isinstance(domain, str):
        raise InputError(f"{where}: field 'domain': expected a string, got {type(domain).__name__}")
    return SimProfile(profile=profile, domain=domain, source=source)


def load_profiles_file(path: Path | str, default_domain: str = "food-delivery") -> list[SimProfile]:
    """JSONL, one profile per line: a Profile object, or {"profile": {...}, "domain": "..."}."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: profiles file not found")
    out: list[SimProfile] = []
    for line_no, raw in iter_jsonl(path):
        out.append(profile_item(raw, f"{path}:{line_no}", default_domain, source=f"{path.name}:{line_no}"))
    if not out:
        raise InputError(f"{path}: no profiles in file")
    return out


def dialogue_seed(run_seed: int, index: int) -> int:
    """The seed of the index-th dialogue of a run: every sampling call of that call derives from it."""
    return int(hashlib.sha256(f"{run_seed}:{index}".encode()).hexdigest()[:8], 16)


def dialogue_id(item: SimProfile, seed: int, settings: RunSettings, config: SimulationConfig) -> str:
    """Content id: same profile, seed, models, config and prompts give the same id."""
    blob = json.dumps(
        {
            "profile": item.profile.model_dump(mode="json"),
            "domain": item.domain,
            "seed": seed,
            "salesman": settings.salesman,
            "customer": settings.customer,
            "manager": settings.manager,
            "config": config.digest(),
            "prompts": prompt_version(),
        },
        sort_keys=True,
    )
    return "sim-" + hashlib.sha256(blob.encode()).hexdigest()[:16]


class RunPlan(BaseModel):
    """What a run simulates, written to plan.json before the first dialogue: `--resume DIR` needs
    nothing else. `config.runtime` may differ on resume (it never changes dialogue ids).

    A `python:` salesman is code that `--resume` runs again: `salesman_code` records its file and
    content hash when the run began, and a resume refuses a file that changed since."""

    settings: RunSettings
    config: SimulationConfig
    items: list[SimProfile]
    salesman_code: dict[str, str] | None = Field(None, description="{'file', 'sha256'} of a python: salesman's source file")

    def seeds(self) -> list[int]:
        return [dialogue_seed(self.config.seed, i) for i in range(len(self.items))]

    def ids(self) -> list[str]:
        return [dialogue_id(item, seed, self.settings, self.config) for item, seed in zip(self.items, self.seeds())]
