"""The batch layer around the pure turn loop: profiles in, dialogues appended as they finish.

Each dialogue gets a content id (hash of profile, seed, model specs, config and prompt version) so
a rerun of the same job names the same dialogues, and `--resume` can skip the finished ones.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from grouped_sim.config import DEFAULT_CHAT_SPEC, SimulationConfig, SimulatorMode
from grouped_sim.corpus import JsonlAppender, read_corpus, write_json_atomic
from grouped_sim.errors import InputError
from grouped_sim.models import build_chat_model, parse_spec
from grouped_sim.prompts import prompt_version
from grouped_sim.schemas import TERMINATION_TO_OUTCOME, Dialogue, Profile, TerminationReason, Turn
from graphs.builder import GraphDeps, build_graph, initial_state
from graphs.manager import LightManager, LLMManager, Manager
from graphs.salesman import ChatModelSalesman, SalesmanAgent
from sop_db.store import BehaviourChain, SOPStore


class SimProfile(BaseModel):
    """A profile to simulate, the domain of the call, and where it came from."""

    profile: Profile
    domain: str
    source: str = Field("", description="corpus dialogue id or file:line the profile came from")


class RunSettings(BaseModel):
    """The models and store of a run (recorded in run.json)."""

    salesman: str = DEFAULT_CHAT_SPEC
    customer: str = DEFAULT_CHAT_SPEC
    manager: str = "light"
    sop_db: str | None = None


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


def load_profiles_file(path: Path | str, default_domain: str = "food-delivery") -> list[SimProfile]:
    """JSONL, one profile per line: a Profile object, or {"profile": {...}, "domain": "..."}."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: profiles file not found")
    out: list[SimProfile] = []
    for line_no, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not text.strip():
            continue
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{line_no}: field '<json>': not valid JSON ({exc.msg})") from exc
        try:
            if isinstance(raw, dict) and "profile" in raw:
                profile = Profile.model_validate(raw["profile"])
                domain = raw.get("domain") or profile.domain or default_domain
            else:
                profile = Profile.model_validate(raw)
                domain = profile.domain or default_domain
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"])
            raise InputError(f"{path}:{line_no}: field '{field}': {first['msg']}") from exc
        out.append(SimProfile(profile=profile, domain=domain, source=f"{path.name}:{line_no}"))
    if not out:
        raise InputError(f"{path}: no profiles in file")
    return out


def dialogue_seed(run_seed: int, index: int) -> int:
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


def build_manager(spec: str, store: SOPStore | None, config: SimulationConfig) -> Manager | None:
    if config.mode is SimulatorMode.prompt_only:
        return None
    if spec == "light":
        return LightManager(store, config.manager)
    return LLMManager(build_chat_model(spec, config.salesman.model_copy(update={"temperature": 0.1, "top_p": 0.2, "max_new_tokens": 256})), store, config.manager)


def to_dialogue(state: dict[str, Any], item: SimProfile, settings: RunSettings, config: SimulationConfig) -> Dialogue:
    reason = TerminationReason(state.get("termination") or TerminationReason.max_turns.value)
    turns = [Turn.model_validate(t) for t in state.get("history", [])]
    return Dialogue(
        id=state["dialogue_id"],
        domain=item.domain,
        turns=turns or [Turn(role="salesman", text="")],
        outcome=TERMINATION_TO_OUTCOME[reason],
        profile=item.profile,
        termination_reason=reason,
        error=state.get("error"),
        meta={
            "seed": state["seed"],
            "profile_source": item.source,
            "mode": config.mode.value,
            "salesman": settings.salesman,
            "customer": settings.customer,
            "manager": settings.manager,
            "retrieved": [c["id"] for c in state.get("chains", [])],
            "config_digest": config.digest(),
            "prompt_version": prompt_version(),
        },
    )


class Simulator:
    """Holds the models, store and compiled graph for a run; `run_one` simulates one profile."""

    def __init__(self, settings: RunSettings, config: SimulationConfig, salesman: SalesmanAgent | None = None, customer_model: Any = None) -> None:
        for spec in (settings.salesman, settings.customer) + (() if settings.manager == "light" else (settings.manager,)):
            parse_spec(spec)  # fail on a bad spec before loading anything
        self.settings = settings
        self.config = config
        self.store = SOPStore(settings.sop_db) if settings.sop_db else None
        if config.mode is not SimulatorMode.prompt_only and self.store is None:
            raise InputError(f"mode '{config.mode.value}' needs an SOP store: pass --sop-db DIR (build it with grouped-sim sop build)")
        self.manager = build_manager(settings.manager, self.store, config)
        self.customer_model = customer_model or build_chat_model(settings.customer, config.customer)
        self.salesman = salesman or ChatModelSalesman(build_chat_model(settings.salesman, config.salesman), name=settings.salesman)
        self.graph = build_graph(GraphDeps(salesman=self.salesman, customer_model=self.customer_model, manager=self.manager, config=config))

    def retrieve(self, item: SimProfile) -> list[BehaviourChain]:
        if self.store is None or self.config.mode is not SimulatorMode.full:
            return []
        # Ask for one extra so the profile's own source dialogue can be left out (no self-retrieval).
        chains = self.store.retrieve(item.profile.as_text(), k=self.config.manager.top_k + 1, domain=item.domain)
        return [c for c in chains if c.id != item.source][: self.config.manager.top_k]

    def run_one(self, item: SimProfile, seed: int) -> Dialogue:
        did = dialogue_id(item, seed, self.settings, self.config)
        chains = self.retrieve(item)
        state = initial_state(did, item.profile, item.domain, chains, seed, self.manager)
        final = self.graph.invoke(state, config={"recursion_limit": 6 * self.config.max_turns + 10})
        return to_dialogue(final, item, self.settings, self.config)


def summarise(dialogues: list[Dialogue]) -> dict[str, Any]:
    customer_turns = [t for d in dialogues for t in d.customer_turns()]
    return {
        "dialogues": len(dialogues),
        "outcomes": dict(Counter(d.outcome.value for d in dialogues)),
        "terminations": dict(Counter(d.termination_reason.value for d in dialogues if d.termination_reason)),
        "customer_turns": len(customer_turns),
        "role_guard": {
            "regenerated_turns": sum(1 for t in customer_turns if t.meta.get("attempts", 1) > 1),
            "fallback_turns": sum(1 for t in customer_turns if t.meta.get("fallback")),
            "rejected_replies": sum(len(t.meta.get("rejected", [])) for t in customer_turns),
        },
        "errors": dict(Counter(d.error["who"] for d in dialogues if d.error)),
    }


def run_simulation(
    items: list[SimProfile],
    settings: RunSettings,
    config: SimulationConfig,
    out_dir: Path | str,
    on_progress: Callable[[Dialogue], None] | None = None,
    simulator: Simulator | None = None,
) -> dict[str, Any]:
    """Simulate every profile, appending each dialogue to dialogues.jsonl as it finishes; write run.json."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    sim = simulator or Simulator(settings, config)
    load_seconds = time.time() - started
    done: list[Dialogue] = []
    with JsonlAppender(out / "dialogues.jsonl") as sink:
        for index, item in enumerate(items):
            dialogue = sim.run_one(item, dialogue_seed(config.seed, index))
            sink.write_dialogue(dialogue)
            done.append(dialogue)
            if on_progress:
                on_progress(dialogue)
    summary = {
        "models": settings.model_dump(),
        "seed": config.seed,
        "config": config.model_dump(mode="json"),
        "config_digest": config.digest(),
        "prompt_version": prompt_version(),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "wall_seconds": round(time.time() - started, 1),
        "load_seconds": round(load_seconds, 1),
        **summarise(done),
    }
    write_json_atomic(out / "run.json", summary)
    return summary


__all__ = [
    "RunSettings",
    "SimProfile",
    "Simulator",
    "dialogue_id",
    "dialogue_seed",
    "load_profiles_file",
    "read_corpus",
    "run_simulation",
    "sample_profiles",
    "summarise",
]
