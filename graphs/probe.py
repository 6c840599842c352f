"""`grouped-sim probe`: the matched-pair probe of a sim folder against its held-out real calls.

Each held-out real customer is simulated from their profile (one that cannot carry their decision:
see graphs/fit.py) against the real salesman's moves, replayed turn by turn up to the move where
the real customer decided. The simulated customer may end the call earlier; when the script runs
out first, the manager gives the final decision from the customer's state, as the last turn of a
real call would, and the row says so (`forced`). Each variant (the fitted manager, the hand-set
one, prompt-only, an LLM manager) is an ordinary resumable run in OUT/VARIANT/ (`probe --out`, by
default SIM/probe); the figures
(grouped_sim/metrics/probe.py) compare every variant with the same real people.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from grouped_sim.config import SimulationConfig, SimulatorMode
from grouped_sim.corpus import read_corpus, write_corpus
from grouped_sim.embeddings import embed
from grouped_sim.graphs.adapters import salesman_moves
from grouped_sim.errors import InputError
from grouped_sim.graphs.batch import DepsSource, DialogueExecutor, load_plan, run_simulation
from grouped_sim.graphs.fit import ProfileRecord, SimFolder
from grouped_sim.graphs.fitting import decision_move
from grouped_sim.graphs.graph import ManagerDeps, retrieve_chains, turn_seed
from grouped_sim.graphs.dynamics import move_answers, outcome_distribution
from grouped_sim.graphs.manager import LightManager
from grouped_sim.graphs.plan import RunPlan, RunSettings, SimProfile
from grouped_sim.metrics.probe import OUTCOME_DECISION, ProbeRow
from grouped_sim.schemas import CustomerAction, CustomerState, Dialogue, TerminationReason, Turn
from grouped_sim.sop_db.store import BehaviourChain
from grouped_sim.transcript import transcript_text

# The manager's side of a variant's run, which reads its rows (grouped_sim.app.build.build_manager_deps).
Build = Callable[[RunPlan], ManagerDeps]
# What runs a variant's dialogues: its participants, a function building them here, or an executor (Ray workers).
Dialogues = Callable[[RunPlan], DepsSource | DialogueExecutor]
Scorer = Callable[[list[str], list[str]], list[float]]
TERMINATION_DECISION = {
    TerminationReason.customer_agreed: "agreed",
    TerminationReason.customer_refused: "refused",
    TerminationReason.customer_hung_up: "walked_away",
    TerminationReason.callback_arranged: "callback",
}
ACTION_DECISION = {CustomerAction.agree: "agreed", CustomerAction.refuse: "refused", CustomerAction.hang_up: "walked_away", CustomerAction.callback: "callback"}
BUILT_IN_VARIANTS = {"fitted": ("light", SimulatorMode.full), "prior": ("prior", SimulatorMode.full), "prompt-only": ("light", SimulatorMode.prompt_only)}


class ProbeVariant(BaseModel):
    """One way of simulating the held-out customers."""

    name: str
    manager: str = "light"
    mode: SimulatorMode = SimulatorMode.full


def parse_variants(text: str) -> list[ProbeVariant]:
    """`fitted,prior,prompt-only` or a model spec for an LLM manager."""
    variants = []
    for name in [v.strip() for v in text.split(",") if v.strip()]:
        manager, mode = BUILT_IN_VARIANTS.get(name, (name, SimulatorMode.full))
        variants.append(ProbeVariant(name=name, manager=manager, mode=mode))
    return variants


class ProbeCase(BaseModel):
    """A held-out real call and what the probe knows of it."""

    dialogue: Dialogue
    record: ProfileRecord
    decided_at: int  # the move at which the real customer decided

    @property
    def item(self) -> SimProfile:
        return SimProfile(profile=self.record.profile, domain=self.dialogue.domain, source=self.dialogue.id)  # type: ignore[arg-type]

    def script(self) -> Dialogue:
        """The real call up to the customer's reply to the deciding move: what the replay plays."""
        moves, cut = 0, len(self.dialogue.turns)
        previous = None
        for index, turn in enumerate(self.dialogue.turns):
            if turn.role == "salesman" and previous != "salesman":
                moves += 1
                if moves > self.decided_at:
                    cut = index
                    break
            previous = turn.role
        return self.dialogue.model_copy(update={"turns": self.dialogue.turns[:cut]})


def probe_cases(folder: SimFolder, n: int | None) -> list[ProbeCase]:
    """The first `n` held-out calls (all by default), with their probe profiles."""
    taxonomy = folder.load_taxonomy()
    records = {r.id: r for r in folder.load_profiles("holdout")}
    calls = [d for d in folder.annotated_dialogues() if d.id in records and records[d.id].profile is not None]
    if not calls:
        raise ValueError(f"{folder.root}: no held-out calls to probe (fit with --holdout above 0)")
    return [ProbeCase(dialogue=d, record=records[d.id], decided_at=decision_move(d, taxonomy)) for d in calls[:n]]


def variant_config(base: SimulationConfig, variant: ProbeVariant, cases: list[ProbeCase]) -> SimulationConfig:
    """The run's config: long enough for every script, in the variant's mode."""
    longest = max(len(salesman_moves(c.script().turns)) for c in cases)
    return base.model_copy(update={"mode": variant.mode, "max_turns": longest + 1})


def final_decision(deps: ManagerDeps, dialogue: Dialogue, case: ProbeCase, chains: list[BehaviourChain]) -> tuple[str, str | None]:
    """The decision the manager gives when the script ran out first, and where it came from
    ('undecided', None without a light manager). `chains`: the customer's K_p."""
    if not isinstance(deps.manager, LightManager) or not deps.use_manager:
        return "undecided", None
    states = [t.state for t in dialogue.customer_turns() if t.state is not None]
    state = states[-1] if states else CustomerState()
    seed = turn_seed(int(dialogue.meta.get("seed", 0)), len(salesman_moves(dialogue.turns)), "final")
    action, source = deps.manager.final_decision(profile=case.item.profile, history=dialogue.turns, state=state, chains=chains, seed=seed)
    return ACTION_DECISION.get(action, "undecided"), source.by


def script_distribution(deps: ManagerDeps, case: ProbeCase, chains: list[BehaviourChain], simulated: Dialogue) -> dict[str, float] | None:
    """P(each decision) of a fitted twin hearing this case's script (None without fitted dynamics).

    The manager tags every move of the script as it does in the twin's call and reads the hazard's
    odds; `outcome_distribution` turns them into the chance of each ending, the forced one at the
    end of the script included. A hazard that reads replies reads the twin's own answers (past the
    twin's last move, all it said). The twin's call is one draw from this distribution, unless the
    customer model ends the call by its own action tag (`decided_by` says so), or (for a hazard
    that reads replies) the twin would have said other things past where its call ended; scoring
    the distribution instead of the one draw removes the draw's noise from the probe's Brier score."""
    manager = deps.manager
    if not isinstance(manager, LightManager) or manager.fitted is None or not deps.use_manager:
        return None
    shares = outcome_distribution(manager.script_odds(case.item.profile, case.script().turns, chains, move_answers(simulated.turns)))
    return {OUTCOME_DECISION[o]: round(p, 4) for o, p in shares.items()}


def contexts(dialogue: Dialogue, upto: int | None = None) -> tuple[list[str], list[str]]:
    """(call so far, customer reply) for the customer turns (the first `upto` of them)."""
    pairs = [(transcript_text(dialogue.turns[:i]), t.text) for i, t in enumerate(dialogue.turns) if t.role == "customer"]
    pairs = pairs[:upto] if upto is not None else pairs
    return [c for c, _ in pairs], [r for _, r in pairs]


def probe_row(case: ProbeCase, simulated: Dialogue, deps: ManagerDeps, score: Scorer | None) -> ProbeRow:
    real_context, real_replies = contexts(case.script())
    sim_context, sim_replies = contexts(simulated)
    row = ProbeRow(
        id=case.dialogue.id, archetype=case.item.profile.archetype, real=OUTCOME_DECISION[case.dialogue.outcome.value], sim="undecided",
        real_exit=case.decided_at, sim_exit=len(salesman_moves(simulated.turns)), termination=(simulated.termination_reason or TerminationReason.max_turns).value,
        real_replies=real_replies, sim_replies=sim_replies, error=simulated.error,
    )
    # K_p once for the row: the end-of-script decision and the script's odds both read it.
    chains = retrieve_chains(deps, case.item.profile, case.item.domain, case.item.source) if simulated.error is None else []
    if simulated.termination_reason in TERMINATION_DECISION:
        row.sim = TERMINATION_DECISION[simulated.termination_reason]  # type: ignore[index]
        row.decided_by = (simulated.meta.get("decision") or {}).get("by")
    elif simulated.error is None:
        (row.sim, row.decided_by), row.forced = final_decision(deps, simulated, case, chains), True
    if simulated.error is None:
        row.sim_odds = script_distribution(deps, case, chains, simulated)
    if score is not None and simulated.error is None:
        row.real_coherence = [round(p, 4) for p in score(real_context, real_replies)] if real_replies else []
        row.sim_coherence = [round(p, 4) for p in score(sim_context, sim_replies)] if sim_replies else []
    return row


def profile_similarity(cases: list[ProbeCase]) -> np.ndarray:
    vectors = embed([c.item.profile.as_text() for c in cases])
    return vectors @ vectors.T


def variant_run(folder: SimFolder, variant: ProbeVariant, cases: list[ProbeCase], customer: str, base: SimulationConfig, out: Path) -> RunPlan:
    """The plan of one variant's run, in OUT/VARIANT (the replayed scripts in OUT/scripts.jsonl)."""
    settings = RunSettings(salesman=f"replay:{out / 'scripts.jsonl'}", customer=customer, manager=variant.manager, sim=str(folder.root), sim_digest=folder.digest())
    return RunPlan(settings=settings, config=variant_config(base, variant, cases), items=[c.item for c in cases])


def check_out(folder: SimFolder, variants: list[ProbeVariant], cases: list[ProbeCase], customer: str, base: SimulationConfig, out: Path) -> None:
    """Refuse an --out folder that holds a probe of other customers or settings, before any variant
    runs (a probe resumes only itself): the advice is a new --out, which this command honours."""
    for variant in variants:
        run_dir = out / variant.name
        if (run_dir / "plan.json").is_file() and load_plan(run_dir).ids() != variant_run(folder, variant, cases, customer, base, out).ids():
            raise InputError(f"{run_dir}: holds a probe of other customers or settings (another --n, --seed, --customer or --config); pass a new --out folder, or rerun with the same flags to finish it")


class ProbeBuild(BaseModel):
    """How each variant gets what it needs: `dialogues` runs its calls (here, or on Ray workers that
    load the customer model themselves), `manager` builds the manager's side that reads the rows
    (the final decision when the script ran out, the script's odds). The two are apart so a driver
    whose dialogues run elsewhere never loads a customer model, and a finished run loads none."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    dialogues: Dialogues
    manager: Build


def run_variant(folder: SimFolder, variant: ProbeVariant, cases: list[ProbeCase], customer: str, base: SimulationConfig, build: ProbeBuild, out: Path, on_progress: Callable[[Any], None] | None) -> tuple[list[Dialogue], ManagerDeps]:
    """One variant's simulations, in OUT/VARIANT (resumable like any run), and its manager's side."""
    plan = variant_run(folder, variant, cases, customer, base, out)
    run_dir = out / variant.name
    run_simulation(plan.items, plan.settings, plan.config, run_dir, deps=build.dialogues(plan), on_progress=on_progress)
    by_source = {d.meta.get("profile_source"): d for d in read_corpus(run_dir / "dialogues.jsonl")}
    return [by_source[c.dialogue.id] for c in cases], build.manager(plan)


def run_probe(
    folder: SimFolder, variants: list[ProbeVariant], cases: list[ProbeCase], customer: str, base: SimulationConfig, build: ProbeBuild,
    out: Path, score: Scorer | None = None, on_progress: Callable[[Any], None] | None = None, leave_out: frozenset[str] = frozenset(),
) -> dict[str, list[ProbeRow]]:
    """Rows of every variant, by variant name; every run goes under `out` (probe --out). Customers
    in `leave_out` (calls the coherence instrument was trained on) get no coherence scores: their
    real replies would flatter the real side."""
    check_out(folder, variants, cases, customer, base, out)
    write_corpus(out / "scripts.jsonl", [c.script() for c in cases])
    rows: dict[str, list[ProbeRow]] = {}
    for variant in variants:
        simulated, deps = run_variant(folder, variant, cases, customer, base, build, out, on_progress)
        rows[variant.name] = [probe_row(case, dialogue, deps, None if case.dialogue.id in leave_out else score) for case, dialogue in zip(cases, simulated)]
    return rows


def probe_dir(folder: SimFolder) -> Path:
    """Where a probe goes without --out."""
    return folder.root / "probe"
