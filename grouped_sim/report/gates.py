"""Gate an agent in CI: `report RUN --fail-under conversion=0.25 --fail-over walk_away=0.5`.

A gate reads one scorecard figure and its 95 % interval. By default a gate fails only when the
whole interval is on the wrong side of the bar (--fail-under: the interval's upper bound is below
it; --fail-over: its lower bound is above it): the run is worse than the bar beyond sampling
noise, so a gate does not flip from run to run on a handful of calls. `strict` asks for the
opposite burden of proof: the whole interval must be on the right side (--fail-under fails when
the lower bound is below the bar), which is what a team asserts on when it wants evidence that the
agent is good enough, at the price of more calls.

Names: conversion, conversion_with_callback, walk_away, cut_off, exit_turn, pass_k (pass^k at the
run's k), pass_k_with_callback; conversion, conversion_with_callback and walk_away also take a
group, NAME:GROUP, where GROUP is an archetype, a difficulty tier or a domain
(`conversion:price-sensitive=0.2`).
"""

from __future__ import annotations

from dataclasses import dataclass

from grouped_sim.errors import InputError
from grouped_sim.report.scorecard import Interval, Scorecard

NAMES = ("conversion", "conversion_with_callback", "walk_away", "cut_off", "exit_turn", "pass_k", "pass_k_with_callback")
GROUPED = ("conversion", "conversion_with_callback", "walk_away")
RANGES = {"exit_turn": (0.0, float("inf"))}  # the rest are shares of calls: [0, 1]


@dataclass(frozen=True)
class Gate:
    name: str
    group: str | None
    bound: float
    under: bool  # --fail-under (True) or --fail-over (False)

    @property
    def label(self) -> str:
        return self.name + (f":{self.group}" if self.group else "")


def parse_gate(text: str, under: bool) -> Gate:
    flag = "--fail-under" if under else "--fail-over"
    name, sep, value = text.partition("=")
    name, _, group = name.strip().partition(":")
    if not sep or not name:
        raise InputError(f"{flag} {text!r}: expected NAME=VALUE, e.g. {flag} conversion=0.25")
    if name not in NAMES:
        raise InputError(f"{flag} {text!r}: unknown figure {name!r}; one of {', '.join(NAMES)}")
    if group and name not in GROUPED:
        raise InputError(f"{flag} {text!r}: only {', '.join(GROUPED)} take a :GROUP")
    try:
        bound = float(value)
    except ValueError as exc:
        raise InputError(f"{flag} {text!r}: {value!r} is not a number") from exc
    low, high = RANGES.get(name, (0.0, 1.0))
    if not low <= bound <= high:  # also refuses nan
        what = "a share of calls, from 0 to 1" if high == 1.0 else f"at least {low:g}"
        raise InputError(f"{flag} {text!r}: {name} is {what}, so a bar of {value} can never be met or always is; e.g. {flag} {name}=0.25")
    return Gate(name, group or None, bound, under)


def interval_of(card: Scorecard, gate: Gate) -> Interval:
    if gate.name == "pass_k":
        return card.pass_k()
    if gate.name == "pass_k_with_callback":
        return card.pass_k(with_callback=True)
    if gate.name in GROUPED:
        try:
            return getattr(card, gate.name)(gate.group)
        except KeyError as exc:
            raise InputError(f"gate {gate.label}: {exc.args[0]}") from exc
    return getattr(card, gate.name)()


def failure(card: Scorecard, gate: Gate, strict: bool = False) -> str | None:
    """Why this gate fails (None when it passes)."""
    got = interval_of(card, gate)
    if got.value is None or got.low is None or got.high is None:
        return f"{gate.label}: no calls to measure it (n={got.n})"
    if gate.under:
        bound, name = (got.low, "lower") if strict else (got.high, "upper")
        failed = bound < gate.bound
    else:
        bound, name = (got.high, "upper") if strict else (got.low, "lower")
        failed = bound > gate.bound
    if not failed:
        return None
    return f"{gate.label} {got.value:.3f} [{got.low:.3f}, {got.high:.3f}] (n={got.n}): {name} bound {bound:.3f} {'<' if gate.under else '>'} {gate.bound:g}"


def check(card: Scorecard, gates: list[Gate], strict: bool = False) -> list[str]:
    """Every failing gate's reason, in the order given."""
    return [reason for gate in gates if (reason := failure(card, gate, strict)) is not None]
