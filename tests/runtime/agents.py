"""Salesman agents the runtime tests plug in through the `python:` adapter (real adapter path)."""

from __future__ import annotations

import asyncio

SCRIPT = [
    "Hi, is this the owner of the restaurant? It's Alex from QuickBite.",
    "We take a lower commission than the big apps, would that help you?",
    "Could I send you the details by email?",
    "Thanks for your time, goodbye.",
]


def scripted(history, domain, seed):
    """Sync: the k-th line of a fixed script at the k-th salesman turn."""
    done = sum(1 for t in history if t["role"] == "salesman")
    return SCRIPT[min(done, len(SCRIPT) - 1)]


async def two_messages(history, domain, seed):
    """Async, and several messages in one move."""
    await asyncio.sleep(0)
    done = sum(1 for t in history if t["role"] == "salesman")
    return [{"text": f"Sorry, line {done} broke up."}, SCRIPT[min(done // 2, len(SCRIPT) - 1)]]


CALLS = {"n": 0}


def broken(history, domain, seed):
    """An agent whose backend is down."""
    CALLS["n"] += 1
    raise ConnectionError("agent backend unreachable")


def down_while_flagged(history, domain, seed):
    """An agent whose backend is down while $GS_TEST_AGENT_DOWN is set, and fine after."""
    import os

    if os.environ.get("GS_TEST_AGENT_DOWN"):
        raise ConnectionError("agent backend unreachable")
    return scripted(history, domain, seed)
