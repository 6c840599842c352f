"""The one place that turns spec strings into participants and stores.

Salesman specs (`--salesman`): a model spec reading the demo product script (hf:smollm2,
openai:MODEL@URL, vllm:MODEL) or an adapter (endpoint:MODEL@URL, webhook:URL,
python:MODULE:FUNCTION, replay:CORPUS.jsonl; see grouped_sim/graphs/adapters.py). Customer and
manager specs are model specs (grouped_sim/models/spec.py); the manager may also be `light`.
Every spec is checked before anything is loaded or written, so a typo fails in a second.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel

from grouped_sim.config import BestOfParams, RuntimeParams, SimulationConfig, SimulatorMode
from grouped_sim.errors import InputError
from grouped_sim.graphs.adapters import CallableSalesman, EndpointSalesman, KnnSalesman, ReplaySalesman, WebhookSalesman
from grouped_sim.graphs.fit import SimFolder
from grouped_sim.graphs.customer import Picker
from grouped_sim.graphs.graph import ManagerDeps, SimDeps
from grouped_sim.graphs.manager import LightManager, LLMManager, Manager
from grouped_sim.graphs.plan import RunSettings, SimProfile
from grouped_sim.models.limits import limit_model
from grouped_sim.graphs.salesman import ChatModelSalesman, Salesman
from grouped_sim.models import build_chat_model, parse_spec
from grouped_sim.sop_db.store import SOPStore

ADAPTER_PREFIXES = ("endpoint:", "webhook:", "python:", "replay:", "knn:")
SALESMAN_SPEC_HELP = (
    "a model spec (hf:smollm2, openai:MODEL@URL, vllm:MODEL) or an adapter "
    "(endpoint:MODEL@URL, webhook:URL, python:MODULE:FUNCTION, replay:CORPUS.jsonl, knn:CORPUS.jsonl)"
)


def is_model_spec(spec: str) -> bool:
    return not spec.startswith(ADAPTER_PREFIXES)


def load_callable(target: str) -> Callable[..., Any]:
    """`module:function` (module importable, or a path to a .py file) → the function."""
    module_name, sep, attr = target.rpartition(":")
    if not sep or not module_name or not attr:
        raise InputError(f"python:{target}: expected python:MODULE:FUNCTION, e.g. python:my_agent:respond")
    try:
        if module_name.endswith(".py"):
            path = Path(module_name)
            if not path.is_file():
                raise InputError(f"python:{target}: file {path} not found")
            spec = importlib.util.spec_from_file_location(path.stem, path)
            module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
            sys.modules[path.stem] = module
            spec.loader.exec_module(module)  # type: ignore[union-attr]
        else:
            module = importlib.import_module(module_name)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"python:{target}: cannot import {module_name!r}: {type(exc).__name__}: {exc}") from exc
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise InputError(f"python:{target}: {module_name!r} has no callable {attr!r}")
    return fn


def absolute_salesman_spec(spec: str) -> str:
    """The spec with its file paths made absolute (python:FILE.py:FN, replay:CORPUS), so a plan
    resumed from another working directory still finds them; other specs are returned as given."""
    kind, _, rest = spec.partition(":")
    if kind == "replay" and rest:
        return f"replay:{Path(rest).expanduser().resolve()}"
    if kind == "python":
        module_name, sep, attr = rest.rpartition(":")
        if sep and module_name.endswith(".py"):
            return f"python:{Path(module_name).expanduser().resolve()}:{attr}"
    return spec


def salesman_code(spec: str) -> dict[str, str] | None:
    """{'file', 'sha256'} of a python: salesman's source file (found without running it), else None."""
    kind, _, rest = spec.partition(":")
    if kind != "python":
        return None
    module_name = rest.rpartition(":")[0]
    path: Path | None = None
    if module_name.endswith(".py"):
        path = Path(module_name)
    else:
        try:
            found = importlib.util.find_spec(module_name)
        except (ImportError, ValueError):
            found = None
        if found is not None and found.has_location and found.origin:
            path = Path(found.origin)
    if path is None or not path.is_file():
        return None
    return {"file": str(path.resolve()), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def check_salesman_code(spec: str, recorded: dict[str, str] | None) -> None:
    """Refuse to resume a run whose python: salesman's file changed (or vanished) since it began."""
    if not recorded:
        return
    now = salesman_code(spec)
    if now is None:
        raise InputError(f"--salesman {spec!r}: the run began with {recorded['file']}, which is gone; a resumed run must run the same agent")
    if now["sha256"] != recorded["sha256"]:
        raise InputError(
            f"{now['file']}: the salesman's code changed since this run began (sha256 {recorded['sha256'][:12]} then, "
            f"{now['sha256'][:12]} now); its dialogues would mix two agents. Restore the file, or start a new run with --out NEW_DIR"
        )


def salesman_key(settings: RunSettings) -> str | None:
    """The Bearer key for an endpoint: salesman, read from the env var the user named for it (never another service's)."""
    name = settings.salesman_key_env
    if not name:
        return None
    if not settings.salesman.startswith("endpoint:"):
        raise InputError(f"--salesman-key-env {name}: only an endpoint: salesman sends a key (the salesman is {settings.salesman!r})")
    key = os.environ.get(name)
    if not key:
        raise InputError(f"--salesman-key-env {name}: the environment variable {name} is not set (or empty)")
    return key


def check_salesman_spec(spec: str) -> None:
    """Validate a salesman spec without loading a model (bad specs fail before any output)."""
    if is_model_spec(spec):
        parse_spec(spec)
        return
    kind, _, rest = spec.partition(":")
    if not rest:
        raise InputError(f"--salesman {spec!r}: nothing after '{kind}:'; expected {SALESMAN_SPEC_HELP}")
    if kind == "endpoint":
        model, sep, url = rest.partition("@")
        if not sep or not model or not url.startswith(("http://", "https://")):
            raise InputError(f"--salesman {spec!r}: expected endpoint:MODEL@http(s)://HOST/v1")
    elif kind == "webhook":
        if not rest.startswith(("http://", "https://")):
            raise InputError(f"--salesman {spec!r}: expected webhook:http(s)://HOST/PATH")
    elif kind == "python":
        load_callable(rest)
    elif kind in ("replay", "knn") and not Path(rest).is_file():
        raise InputError(f"--salesman {spec!r}: corpus {rest} not found")


def backend_key(spec: str) -> str:
    """Calls to one backend share one in-flight limit: a server URL, or the local model's name."""
    parsed = parse_spec(spec)
    return parsed.base_url or f"{parsed.backend}:{parsed.model}"


def limited(model: BaseChatModel, spec: str, runtime: RuntimeParams) -> BaseChatModel:
    return limit_model(model, backend_key(spec), runtime)


def build_salesman(spec: str, config: SimulationConfig, key: str | None = None) -> Salesman:
    """The Salesman a spec names (see the module docstring for the forms).

    An endpoint: salesman sends `key` as its Bearer token, and no key at all without one: keys in
    the environment (OPENAI_API_KEY, ...) belong to other services and are never sent to the agent.
    """
    check_salesman_spec(spec)
    kind, _, rest = spec.partition(":")
    runtime = config.runtime
    if is_model_spec(spec):
        return ChatModelSalesman(limited(build_chat_model(spec, config.salesman, runtime), spec, runtime), name=spec)
    if kind == "endpoint":
        model, _, url = rest.partition("@")
        return EndpointSalesman(model, url, api_key=key, timeout=runtime.timeout_seconds)
    if kind == "webhook":
        return WebhookSalesman(rest, timeout=runtime.timeout_seconds)
    if kind == "python":
        return CallableSalesman(load_callable(rest), name=spec)
    if kind == "knn":
        return KnnSalesman(rest)
    return ReplaySalesman(rest)


def build_customer(spec: str, config: SimulationConfig) -> BaseChatModel:
    return limited(build_chat_model(spec, config.customer, config.runtime), spec, config.runtime)


MANAGER_NAMES = ("light", "prior")


def build_manager(spec: str, store: SOPStore | None, config: SimulationConfig, sim: SimFolder | None = None) -> Manager | None:
    """The light manager (fitted dynamics from a sim folder unless `prior`), an LLM manager for a
    model spec, or none in prompt-only mode."""
    if config.mode is SimulatorMode.prompt_only:
        return None
    if spec in MANAGER_NAMES:
        fitted = sim.load_dynamics() if sim is not None and spec == "light" else None
        return LightManager(store, config.manager, taxonomy=store.taxonomy if store else None, fitted=fitted)
    params = config.salesman.model_copy(update={"temperature": 0.1, "top_p": 0.2, "max_new_tokens": 256})
    return LLMManager(limited(build_chat_model(spec, params, config.runtime), spec, config.runtime), store, config.manager)


def open_store(location: str | None, config: SimulationConfig, sim: SimFolder | None = None, items: Sequence[SimProfile] = ()) -> SOPStore | None:
    """The SOP store a run reads (a sim folder's, with its taxonomy), or a clear error when its mode
    needs one and none was given.

    In full mode the store must be able to answer: a store with 0 chains, or without a chain of a
    profile's domain (retrieval filters by domain), would retrieve nothing for every call and
    quietly turn the run into a no-sop run.
    """
    if sim is None and location is None:
        if config.mode is not SimulatorMode.prompt_only:
            raise InputError(f"mode '{config.mode.value}' needs an SOP store: pass --sim DIR (from grouped-sim fit) or --sop-db DIR (from grouped-sim sop build)")
        return None
    if sim is not None:
        store = SOPStore(location or sim.store, taxonomy=sim.load_taxonomy(), rebuild=None if location else sim.rebuild(sim.store))
    else:
        store = SOPStore(location)  # type: ignore[arg-type]
    location = store.location
    if config.mode is SimulatorMode.full:
        if store.count() == 0:
            raise InputError(f"{location}: the SOP store has 0 behaviour chains; full mode would retrieve nothing. Rebuild it with grouped-sim sop build, or run --mode no-sop")
        for domain in dict.fromkeys(item.domain for item in items):
            if not store.has_domain(domain):
                where = next(item.source for item in items if item.domain == domain) or "a profile"
                raise InputError(
                    f"{where}: domain {domain!r} has no behaviour chains in the SOP store {location} (its domains: {', '.join(store.domains())}); "
                    "retrieval would return nothing. Build the store from calls of that domain, or run --mode no-sop"
                )
    return store


def check_run_specs(settings: RunSettings, salesman_given: bool = False) -> None:
    """Every spec of a run, checked before anything loads."""
    if not salesman_given:
        check_salesman_spec(settings.salesman)
        salesman_key(settings)
    for spec in (settings.customer,) + (() if settings.manager in MANAGER_NAMES else (settings.manager,)):
        parse_spec(spec)
    if settings.sim is not None:
        SimFolder(settings.sim).check()


def build_picker(params: BestOfParams, sim: SimFolder | None) -> Picker | None:
    """The best-of-N picker of config.best_of, or None for plain sampling (n = 1).

    Coherence comes from the configured scorer, else the sim folder's picker (trained on other
    calls of the team's than its judge), else the shipped picker scorer (other sample calls than
    the shipped judge); realism from the configured discriminator folder, else the shipped realism
    picker, except in a `--sim` run: a realism scorer of the sample corpus would pull a team's
    customers towards the sample's style, so there realism needs a folder of the team's own. What
    picks a reply never also grades it: reports grade with the judges.
    """
    if params.n == 1:
        return None
    from grouped_sim.data import PICKER_SCORER, REALISM_PICKER, shipped_scorer_path
    from grouped_sim.discriminator.coherence import CoherenceScorer
    from grouped_sim.discriminator.realism import load_realism_scorer
    from grouped_sim.transcript import transcript_text

    coherence = None
    if params.coherence_weight > 0:
        own = sim.picker_scorer() if sim is not None and params.coherence_scorer is None else None
        coherence = own or CoherenceScorer(params.coherence_scorer or shipped_scorer_path(PICKER_SCORER))
    realism = None
    if params.realism_weight > 0 and (params.discriminator or sim is None):
        realism = load_realism_scorer(params.discriminator or shipped_scorer_path(REALISM_PICKER))
    if coherence is None and realism is None:
        raise InputError("best_of picks by realism alone, but a --sim run has no realism scorer of its domain: set best_of.discriminator (grouped-sim discriminator train --head) or a coherence_weight")

    def pick(history: list[Any], replies: list[str]) -> list[float]:
        contexts = [transcript_text(history)] * len(replies)
        scores = [params.coherence_weight * p for p in coherence.score(contexts, replies)] if coherence is not None else [0.0] * len(replies)
        if realism is not None:
            scores = [s + params.realism_weight * r for s, r in zip(scores, realism.score(contexts, replies))]
        return scores

    return pick


def build_deps(
    settings: RunSettings, config: SimulationConfig, salesman: Salesman | None = None, customer: BaseChatModel | None = None, items: Sequence[SimProfile] = ()
) -> SimDeps:
    """The participants and store of a run. Pass `salesman`/`customer` to plug in objects directly;
    `items` (the profiles to simulate) lets the store be checked against their domains first."""
    check_run_specs(settings, salesman_given=salesman is not None)
    sim = SimFolder(settings.sim) if settings.sim else None
    store = open_store(settings.sop_db, config, sim, items)
    manager = build_manager(settings.manager, store, config, sim)
    customer = customer if customer is not None else build_customer(settings.customer, config)
    salesman = salesman if salesman is not None else build_salesman(settings.salesman, config, key=salesman_key(settings))
    pick = build_picker(config.best_of, sim)
    return SimDeps(salesman=salesman, customer=customer, manager=manager, store=store, config=config, pick=pick)


def build_manager_deps(settings: RunSettings, config: SimulationConfig, items: Sequence[SimProfile] = ()) -> ManagerDeps:
    """The manager's side of a run (its store and its light manager), loading no customer model,
    no salesman and no best-of picker: what reads the run's decisions after its dialogues ran
    elsewhere (`probe --executor ray`: the dialogues on Ray workers, the rows in this process).

    An LLM manager (a model spec) is not loaded: it decides only inside a dialogue, on the worker
    that runs it, and nothing after the run reads it (the probe's final decision and script odds
    are the light manager's); its ManagerDeps has no manager, which is what that reader sees of it."""
    if settings.manager not in MANAGER_NAMES:
        parse_spec(settings.manager)
    sim = SimFolder(settings.sim) if settings.sim else None
    if sim is not None:
        sim.check()
    store = open_store(settings.sop_db, config, sim, items)
    manager = build_manager(settings.manager, store, config, sim) if settings.manager in MANAGER_NAMES else None
    return ManagerDeps(manager=manager, store=store, config=config)
