"""The pytest plugin's worked example (docs/scorecard.md), end to end on the embedded models.

A team's test looks like this one: the `sales_scorecard` fixture comes from the installed plugin
(entry point pytest11), simulates the agent against real profiles of the named archetypes, and
returns a Scorecard to assert on. Kept cheap for CI (one customer per archetype, two salesman
turns, short customer replies); a team's own gate would use ten or more customers per archetype,
e.g. `assert card.conversion("price-sensitive").low > 0.2`.
"""

from __future__ import annotations

from pathlib import Path

from grouped_sim.report.gates import check, parse_gate

AGENT = f"python:{Path(__file__).with_name('my_agent.py')}:respond"
CHEAP = {"customer": {"max_new_tokens": 12}, "role_guard_retries": 0}


def test_gate_my_agent_on_two_archetypes(sales_scorecard) -> None:
    card = sales_scorecard(AGENT, archetypes=["price-sensitive", "resistance-heavy"], customers=1, max_turns=2, config=CHEAP)
    assert card.calls == 2
    for group in ("price-sensitive", "resistance-heavy"):
        won = card.conversion_with_callback(group)
        assert won.n == 1 and 0.0 <= won.low <= won.value <= won.high <= 1.0
    assert card.exit_turn().high <= 2
    # Two turns are too few for this agent's closing ask: nobody agrees, and a gate on it fails.
    assert card.conversion().value == 0.0
    assert check(card, [parse_gate("conversion=0.25", under=True)]) == ["conversion 0.000 [0.000, 0.000] (n=2): upper bound 0.000 < 0.25"]
    again = sales_scorecard(AGENT, archetypes=["price-sensitive", "resistance-heavy"], customers=1, max_turns=2, config=CHEAP)
    assert again.run_dir == card.run_dir and again.data["records"] == card.data["records"]  # simulated once per session
