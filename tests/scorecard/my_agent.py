"""The worked example of docs/scorecard.md: a team's sales agent as a plain Python function.

grouped-sim calls it through the `python:` adapter as `respond(history, domain=..., seed=...)`,
with history a list of {"role": "salesman" | "customer", "text": ...}; it returns its next line.
A real agent would call its own LLM here; this one follows a short script and answers price and
time objections, so the example runs in seconds on a CPU without a network.
"""

from __future__ import annotations

OPENERS = {
    "food-delivery": "Hi, is this the owner? It's Sam from QuickBite, the delivery app with the lowest commission in town.",
    "broadband": "Hello, is that the account holder? It's Sam from FibreNow, about cutting your broadband bill.",
    "insurance": "Good morning, it's Sam from SafeCover, about saving on your policy renewal.",
}


def respond(history: list[dict[str, str]], domain: str = "", seed: int = 0) -> str:
    said = sum(1 for t in history if t["role"] == "salesman")
    heard = next((t["text"].lower() for t in reversed(history) if t["role"] == "customer"), "")
    if said == 0:
        return OPENERS.get(domain, "Hello, it's Sam, do you have a minute?")
    if any(w in heard for w in ("busy", "not now", "later", "call back")):
        return "I understand you're busy. When would be a better time for a two-minute call?"
    if any(w in heard for w in ("price", "cost", "commission", "expensive", "how much", "fee")):
        return "We charge less than the big names and the first month is free, so you can see the savings before paying anything."
    if said == 1:
        return "How are you handling this at the moment, and what would you most like to improve?"
    return "Shall I set you up with the free first month today? You can cancel any time."
