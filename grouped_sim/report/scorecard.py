"""The agent scorecard: what a sales team learns about its own agent from a run.

The report's other figures ask whether the simulated customers are realistic; these ask how the
agent under test (the salesman) did with them. Every figure is a rate or a mean over calls, with
its 95 % bootstrap interval over calls (`grouped_sim.metrics.intervals`), and, when a reference
corpus of real calls is given, the real salesman's figure on the real customers, the gap, its
interval and the noise floor. Definitions are in docs/scorecard.md; in short:

- conversion: share of calls the customer agreed in; conversion_with_callback also counts an
  arranged callback (a soft yes); overall and by archetype, difficulty tier and domain;
- walk_away (hung up or refused), cut_off (stopped by the run's max turns), exit_turn (salesman
  moves before the call ended);
- the funnel: the share of calls whose salesman reached each SOP stage (the manager's stage tags),
  and where calls were lost: the stage, turn and last salesman move before each walk-away;
- objections by kind: raised (the customer's state had it open at some point, or, without a
  state, an objection stage was tagged) and resolved (raised, and no longer open at the end);
- the agent's habits (words per move, talk ratio, questions per call, longest run of pushes),
  split by buyers (agreed or callback) and non-buyers (refused or hung up);
- pass^k for runs with `simulate --trials k`: per customer C(c, k) / C(n, k) with c conversions in
  n trials (tau-bench's estimator), averaged over customers; its interval resamples customers.

A call that ended in an error not blamed on the salesman (customer model, manager, store,
infrastructure) says nothing about the agent: it is left out and counted in `excluded`. An
error blamed on the salesman is the agent's failure and counts as a call it did not convert.
Nothing here imports a model or the taxonomy: stage kinds and tiers arrive in `ScorecardContext`.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from grouped_sim.metrics._common import words
from grouped_sim.metrics.intervals import MEAN, compare_stat
from grouped_sim.schemas import Dialogue, Outcome, TerminationReason, Turn

PUSH_KINDS = ("pitch", "closing")
BUYER_OUTCOMES = (Outcome.agreed.value, Outcome.callback.value)
NON_BUYER_OUTCOMES = (Outcome.refused.value, Outcome.hung_up.value)
HABITS = ("words_per_turn", "talk_ratio", "questions", "pushes_in_a_row")
MOVE_CHARS = 200
_QUESTION_RE = re.compile(r"[^.!?]*\?")


@dataclass(frozen=True)
class ScorecardContext:
    """What the scorecard needs to know about stages and tiers (built by the CLI from the taxonomy
    and the presets; the evaluation layer never loads them itself)."""

    stages: list[str] = field(default_factory=list)
    kinds: dict[str, str] = field(default_factory=dict)
    objections: dict[str, str] = field(default_factory=dict)
    tiers: dict[str, float] = field(default_factory=dict)

    def kind(self, stage: str | None) -> str | None:
        return self.kinds.get(stage or "")


# --------------------------------------------------------------------------- one call


def customer_key(dialogue: Dialogue) -> str:
    """Who the customer is, whatever agent called them: a hash of the profile and the domain."""
    profile = dialogue.profile.model_dump(mode="json") if dialogue.profile else {"source": dialogue.meta.get("profile_source", dialogue.id)}
    blob = json.dumps({"profile": profile, "domain": dialogue.domain}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def moves(dialogue: Dialogue) -> list[list[Turn]]:
    """The salesman's moves: consecutive salesman turns are one move."""
    out: list[list[Turn]] = []
    previous = None
    for turn in dialogue.turns:
        if turn.role == "salesman":
            if previous == "salesman":
                out[-1].append(turn)
            else:
                out.append([turn])
        previous = turn.role
    return out


def _move_stage(move: list[Turn]) -> str | None:
    return next((t.sop_stage for t in move if t.sop_stage), None)


def tier_of(dialogue: Dialogue, ctx: ScorecardContext) -> str:
    """The profile's difficulty tier, or the tier whose buy propensity is nearest its own."""
    profile = dialogue.profile
    if profile is None:
        return "unknown"
    if profile.difficulty:
        return profile.difficulty
    if profile.buy_propensity is not None and ctx.tiers:
        return min(ctx.tiers, key=lambda t: (abs(ctx.tiers[t] - profile.buy_propensity), t))  # type: ignore[operator]
    return "unknown"


def _longest_push_run(stages: Sequence[str | None], ctx: ScorecardContext) -> int | None:
    if not any(stages) or not ctx.kinds:
        return None
    best = run = 0
    for stage in stages:
        run = run + 1 if ctx.kind(stage) in PUSH_KINDS else 0
        best = max(best, run)
    return best


def _objections(dialogue: Dialogue, move_stages: Sequence[str | None], ctx: ScorecardContext) -> dict[str, Any]:
    states = [t.state for t in dialogue.customer_turns() if t.state is not None]
    if states:
        raised = sorted({o for s in states for o in s.open_objections})
        still_open = set(states[-1].open_objections)
        return {"raised": raised, "resolved": [o for o in raised if o not in still_open], "from": "state"}
    raised = sorted({ctx.objections[s] for s in move_stages if s in ctx.objections})
    return {"raised": raised, "resolved": None, "from": "stages" if raised else None}


def call_record(dialogue: Dialogue, ctx: ScorecardContext) -> dict[str, Any]:
    """Everything the scorecard reads from one call, as plain JSON values."""
    outcome = dialogue.outcome.value
    error_who = (dialogue.error or {}).get("who")
    scored = dialogue.error is None or error_who == "salesman"
    salesman_moves = moves(dialogue)
    stages = [_move_stage(m) for m in salesman_moves]
    salesman_words = sum(len(words(t.text)) for m in salesman_moves for t in m)
    customer_words = sum(len(words(t.text)) for t in dialogue.customer_turns())
    questions = sum(len(_QUESTION_RE.findall(t.text)) for m in salesman_moves for t in m)
    walked = outcome in NON_BUYER_OUTCOMES
    lost = None
    if walked and salesman_moves:
        last = salesman_moves[-1]
        text = " ".join(t.text for t in last)
        lost = {"stage": stages[-1] or "untagged", "turn": len(salesman_moves), "move": text[:MOVE_CHARS] + ("…" if len(text) > MOVE_CHARS else "")}
    profile = dialogue.profile
    return {
        "id": dialogue.id,
        "customer": customer_key(dialogue),
        "trial": int(dialogue.meta.get("trial", 0) or 0),
        "seed": dialogue.meta.get("seed"),
        "summary": profile.summary if profile else None,
        "archetype": (profile.archetype if profile else None) or "unknown",
        "tier": tier_of(dialogue, ctx),
        "domain": dialogue.domain,
        "outcome": outcome,
        "termination": dialogue.termination_reason.value if dialogue.termination_reason else None,
        "error": error_who,
        "scored": scored,
        "agreed": int(outcome == Outcome.agreed.value),
        "converted": int(outcome in BUYER_OUTCOMES),
        "walked": int(walked),
        "cut_off": int(dialogue.termination_reason is TerminationReason.max_turns),
        "buyer": True if outcome in BUYER_OUTCOMES else False if walked else None,
        "exit_turn": len(salesman_moves),
        "stages": list(dict.fromkeys(s for s in stages if s)),
        "lost": lost,
        "objections": _objections(dialogue, stages, ctx),
        "habits": {
            "words_per_turn": salesman_words / len(salesman_moves) if salesman_moves else None,
            "talk_ratio": salesman_words / (salesman_words + customer_words) if salesman_words + customer_words else None,
            "questions": questions,
            "pushes_in_a_row": _longest_push_run(stages, ctx),
        },
    }


def call_records(dialogues: Sequence[Dialogue], ctx: ScorecardContext) -> list[dict[str, Any]]:
    return [call_record(d, ctx) for d in dialogues]


# --------------------------------------------------------------------------- figures


def mean_of(values: Sequence[float | None]) -> float | None:
    present = [float(v) for v in values if v is not None]
    return sum(present) / len(present) if present else None


def figure(sim: Sequence[float | None], ref: Sequence[float | None] | None = None, stat: Callable[[Sequence[Any]], float | None] = MEAN) -> dict[str, Any]:
    """One figure over per-call values (None values are left out): the estimate and its interval,
    and with `ref` the reference's own, the gap, the gap's interval and the noise floor."""
    s = [v for v in sim if v is not None]
    r = [v for v in (ref or []) if v is not None]
    return {"kind": "stat", **compare_stat(s, r, stat).model_dump()}


def _values(records: Sequence[dict[str, Any]], get: Callable[[dict[str, Any]], Any]) -> list[Any]:
    return [get(r) for r in records]


def _scored(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r["scored"]]


def _rate_figures(sim: Sequence[dict[str, Any]], ref: Sequence[dict[str, Any]] | None, key: str) -> dict[str, Any]:
    return figure(_values(sim, lambda r: r[key]), _values(ref, lambda r: r[key]) if ref is not None else None)


def _groups(sim: Sequence[dict[str, Any]], ref: Sequence[dict[str, Any]] | None, by: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in sorted({r[by] for r in sim}):
        mine = [r for r in sim if r[by] == name]
        theirs = [r for r in ref if r[by] == name] if ref is not None else None
        out[name] = {
            "n": len(mine),
            "conversion": _rate_figures(mine, theirs, "agreed"),
            "conversion_with_callback": _rate_figures(mine, theirs, "converted"),
            "walk_away": _rate_figures(mine, theirs, "walked"),
        }
    return out


def funnel(sim: Sequence[dict[str, Any]], ref: Sequence[dict[str, Any]] | None, ctx: ScorecardContext) -> dict[str, Any]:
    """Share of calls reaching each stage, and where the lost calls were lost."""
    seen = {s for r in sim for s in r["stages"]}
    order = [s for s in ctx.stages if s in seen] + sorted(seen - set(ctx.stages))
    reach = {s: figure(_values(sim, lambda r, s=s: int(s in r["stages"])), _values(ref, lambda r, s=s: int(s in r["stages"])) if ref else None) for s in order}
    lost = [r for r in sim if r["lost"]]
    groups: dict[str, Any] = {}
    for r in lost:
        g = groups.setdefault(r["lost"]["stage"], {"calls": 0, "turns": {}, "moves": []})
        g["calls"] += 1
        turn = str(r["lost"]["turn"])
        g["turns"][turn] = g["turns"].get(turn, 0) + 1
        g["moves"].append({"dialogue_id": r["id"], "turn": r["lost"]["turn"], "outcome": r["outcome"], "archetype": r["archetype"], "move": r["lost"]["move"]})
    for stage, g in groups.items():
        g["share_of_calls"] = figure([int(bool(r["lost"]) and r["lost"]["stage"] == stage) for r in sim])
        g["mean_turn"] = sum(m["turn"] for m in g["moves"]) / len(g["moves"])
    ranked = dict(sorted(groups.items(), key=lambda kv: (-kv[1]["calls"], kv[0])))
    return {"stages": order, "reach": reach, "lost": {"calls": len(lost), "by_stage": ranked}}


def objections(sim: Sequence[dict[str, Any]]) -> dict[str, Any]:
    kinds = sorted({k for r in sim for k in r["objections"]["raised"]})
    out: dict[str, Any] = {}
    for kind in kinds:
        raised = [r for r in sim if kind in r["objections"]["raised"]]
        judged = [r for r in raised if r["objections"]["resolved"] is not None]
        out[kind] = {
            "raised_calls": len(raised),
            "resolved_calls": sum(kind in r["objections"]["resolved"] for r in judged) if judged else None,
            "raised": figure([int(kind in r["objections"]["raised"]) for r in sim]),
            "resolved": figure([int(kind in r["objections"]["resolved"]) for r in judged]),
        }
    return out


def habits(sim: Sequence[dict[str, Any]], ref: Sequence[dict[str, Any]] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in HABITS:
        def get(r: dict[str, Any], name: str = name) -> Any:
            return r["habits"][name]

        out[name] = {
            "all": figure(_values(sim, get), _values(ref, get) if ref is not None else None),
            "buyers": figure(_values([r for r in sim if r["buyer"] is True], get), _values([r for r in ref if r["buyer"] is True], get) if ref is not None else None),
            "non_buyers": figure(_values([r for r in sim if r["buyer"] is False], get), _values([r for r in ref if r["buyer"] is False], get) if ref is not None else None),
        }
    return out


def pass_hat_k(trials: int, successes: int, k: int) -> float:
    """tau-bench's pass^k for one task: the chance that k of its n trials, drawn without replacement, all succeed."""
    if trials < k:
        raise ValueError(f"{trials} trials cannot give pass^{k}")
    return math.comb(successes, k) / math.comb(trials, k)


def by_customer(records: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        out.setdefault(r["customer"], []).append(r)
    return out


def pass_k(sim: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """pass^1..pass^K over customers simulated K or more times (None for a single-trial run: a
    profile planned twice in one trial is two customers who look alike, not two trials)."""
    if not any(r["trial"] for r in sim):
        return None
    customers = list(by_customer(sim).values())
    k_max = min((len(c) for c in customers), default=0)
    if k_max < 2:
        return None
    out: dict[str, Any] = {"k": k_max, "customers": len(customers), "trials_per_customer": sorted({len(c) for c in customers})}
    for key, label in (("agreed", "conversion"), ("converted", "conversion_with_callback")):
        counts = [(len(c), sum(r[key] for r in c)) for c in customers]
        out[label] = {str(k): figure([pass_hat_k(n, s, k) for n, s in counts]) for k in range(1, k_max + 1)}
    return out


def scorecard(dialogues: Sequence[Dialogue], ctx: ScorecardContext, reference: Sequence[Dialogue] | None = None) -> dict[str, Any]:
    """The scorecard of a run (JSON-ready). With `reference`, figures that exist for real calls
    carry the real salesman's value on the real customers, the gap and the noise floor."""
    records = call_records(dialogues, ctx)
    sim = _scored(records)
    ref = _scored(call_records(reference, ctx)) if reference else None
    return {
        "calls": len(sim),
        "excluded": {"calls": len(records) - len(sim), "by_whose_error": _count(r["error"] for r in records if not r["scored"])},
        "salesman_errors": sum(1 for r in sim if r["error"] == "salesman"),
        "conversion": _rate_figures(sim, ref, "agreed"),
        "conversion_with_callback": _rate_figures(sim, ref, "converted"),
        "walk_away": _rate_figures(sim, ref, "walked"),
        "cut_off": figure(_values(sim, lambda r: r["cut_off"])),
        "exit_turn": _rate_figures(sim, ref, "exit_turn"),
        "by_archetype": _groups(sim, ref, "archetype"),
        "by_tier": _groups(sim, ref, "tier"),
        "by_domain": _groups(sim, ref, "domain"),
        "funnel": funnel(sim, ref, ctx),
        "objections": objections(sim),
        "habits": habits(sim, ref),
        "pass_k": pass_k(sim),
        "records": records,
    }


def _count(values: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[str(v)] = out.get(str(v), 0) + 1
    return out


# --------------------------------------------------------------------------- reading a scorecard


@dataclass(frozen=True)
class Interval:
    """A figure as a team asserts on it: `value`, the 95 % interval [`low`, `high`], `n` calls."""

    value: float | None
    low: float | None
    high: float | None
    n: int

    @classmethod
    def of(cls, fig: dict[str, Any] | None) -> Interval:
        if not fig:
            return cls(None, None, None, 0)
        ci = fig.get("sim_ci") or [None, None]
        return cls(fig.get("sim"), ci[0], ci[1], int(fig.get("n_sim") or 0))

    def __str__(self) -> str:
        if self.value is None:
            return f"n/a (n={self.n})"
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}] (n={self.n})"


GROUPS = ("by_archetype", "by_tier", "by_domain")


class Scorecard:
    """A scorecard with accessors: `card.conversion("price-sensitive").low > 0.2`.

    A group name is looked up among archetypes, then difficulty tiers, then domains.
    """

    def __init__(self, data: dict[str, Any], run_dir: Any = None) -> None:
        self.data = data
        self.run_dir = run_dir

    def _group(self, group: str) -> dict[str, Any]:
        for block in GROUPS:
            if group in self.data[block]:
                return self.data[block][group]
        known = sorted({g for block in GROUPS for g in self.data[block]})
        raise KeyError(f"no calls with archetype, tier or domain {group!r} in this scorecard (it has: {', '.join(known) or 'none'})")

    def _rate(self, key: str, group: str | None) -> Interval:
        return Interval.of(self.data[key] if group is None else self._group(group)[key])

    def conversion(self, group: str | None = None) -> Interval:
        """Share of calls the customer agreed in (overall, or for one archetype, tier or domain)."""
        return self._rate("conversion", group)

    def conversion_with_callback(self, group: str | None = None) -> Interval:
        """Share of calls that ended in an agreement or an arranged callback."""
        return self._rate("conversion_with_callback", group)

    def walk_away(self, group: str | None = None) -> Interval:
        """Share of calls the customer ended by hanging up or refusing."""
        return self._rate("walk_away", group)

    def cut_off(self) -> Interval:
        return Interval.of(self.data["cut_off"])

    def exit_turn(self) -> Interval:
        return Interval.of(self.data["exit_turn"])

    def reached(self, stage: str) -> Interval:
        """Share of calls in which the agent reached an SOP stage."""
        return Interval.of(self.data["funnel"]["reach"].get(stage))

    def habit(self, name: str, who: str = "all") -> Interval:
        """words_per_turn, talk_ratio, questions or pushes_in_a_row, for all, buyers or non_buyers."""
        return Interval.of(self.data["habits"][name][who])

    def pass_k(self, k: int | None = None, with_callback: bool = False) -> Interval:
        """pass^k (k defaults to the run's trials); n/a for a single-trial run."""
        block = self.data.get("pass_k")
        if not block:
            return Interval(None, None, None, 0)
        figures = block["conversion_with_callback" if with_callback else "conversion"]
        return Interval.of(figures.get(str(k or block["k"])))

    @property
    def calls(self) -> int:
        return int(self.data["calls"])

    def lost_at(self) -> dict[str, int]:
        """Lost calls (walk-aways and refusals) by the stage of the agent's last move."""
        return {stage: g["calls"] for stage, g in self.data["funnel"]["lost"]["by_stage"].items()}

    def __repr__(self) -> str:
        return f"Scorecard(calls={self.calls}, conversion={self.conversion()}, walk_away={self.walk_away()})"
