"""Transports that plug an agent under test into the simulation, each a `Salesman`.

    endpoint:MODEL@URL      YOUR agent behind an OpenAI-compatible chat-completions endpoint; it gets
                            the call history only, its own system prompt stays on its side
    webhook:URL             POST {"history", "domain", "seed", "dialogue_id"} and read {"reply": "..."}
                            or {"messages": [...]} (or a plain-text body)
    python:MODULE:FUNCTION  a Python callable, sync or async, called as fn(history, domain=..., seed=...)
                            with history a list of {"role", "text"}; it may return a string, a message
                            dict, or a list of either (several messages in one move)
    replay:CORPUS.jsonl     replays the salesman turns of a corpus dialogue (the profile's source
                            dialogue when it came from that corpus), for teacher-forced probes; the
                            call ends when the script does
    knn:CORPUS.jsonl        a coherent stand-in for an agent: each turn, the real salesman move that
                            followed the exchange most like this call's last one

Spec strings are turned into these objects in one place, grouped_sim.app.build.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from grouped_sim.errors import InputError
from grouped_sim.graphs.dynamics import script_moves
from grouped_sim.metrics.fidelity import decision_state
from grouped_sim.graphs.salesman import AgentReplyError, CallContext, SalesmanDone, normalise_reply
from grouped_sim.schemas import Dialogue, Turn
from grouped_sim.transcript import transcript_text


def history_payload(history: list[Turn]) -> list[dict[str, str]]:
    return [{"role": t.role, "text": t.text} for t in history]


def chat_messages(history: list[Turn]) -> list[dict[str, str]]:
    """The call as OpenAI chat messages from the agent's side: its own lines are `assistant`."""
    messages = [{"role": "assistant" if t.role == "salesman" else "user", "content": t.text} for t in history]
    if not messages:
        # The customer picks up: chat endpoints need a user message to answer.
        messages.append({"role": "user", "content": "Hello?"})
    return messages


class EndpointSalesman:
    """An agent behind an OpenAI-compatible chat-completions endpoint (history in, one message out)."""

    def __init__(self, model: str, base_url: str, api_key: str | None = None, timeout: float = 120.0, temperature: float | None = None) -> None:
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.temperature = temperature
        self.name = f"endpoint:{model}@{base_url}"

    async def respond(self, call: CallContext) -> list[str]:
        import httpx

        body: dict[str, Any] = {"model": self.model, "messages": chat_messages(call.history), "seed": call.seed}
        if self.temperature is not None:
            body["temperature"] = self.temperature
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            response = await client.post(f"{self.base_url}/chat/completions", json=body, headers=headers)
        response.raise_for_status()
        data = response.json()
        try:
            return [str(data["choices"][0]["message"]["content"] or "")]
        except (KeyError, IndexError, TypeError) as exc:
            raise AgentReplyError(f"not a chat-completions answer: {str(data)[:200]}") from exc


class WebhookSalesman:
    """POSTs the call so far to a URL and reads the agent's next message(s) from the answer.

    The body carries the dialogue id, so a stateful agent can keep its own memory per call.
    """

    def __init__(self, url: str, timeout: float = 120.0) -> None:
        self.url = url
        self.timeout = timeout
        self.name = f"webhook:{url}"

    async def respond(self, call: CallContext) -> list[str]:
        import httpx

        body = {"dialogue_id": call.dialogue_id, "history": history_payload(call.history), "domain": call.domain, "seed": call.seed}
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            response = await client.post(self.url, json=body)
        response.raise_for_status()
        if "json" not in response.headers.get("content-type", ""):
            return [response.text]
        data = response.json()
        if isinstance(data, dict):
            for key in ("messages", "reply", "text", "content"):
                if key in data:
                    return normalise_reply(data[key])
        return normalise_reply(data)


class CallableSalesman:
    """A Python function as the agent under test: awaited when async, run in a thread when sync."""

    def __init__(self, fn: Callable[..., Any], name: str) -> None:
        self.fn = fn
        self.name = name

    async def respond(self, call: CallContext) -> list[str]:
        history = history_payload(call.history)
        if inspect.iscoroutinefunction(self.fn):
            result = await self.fn(history, domain=call.domain, seed=call.seed)
        else:
            result = await asyncio.to_thread(self.fn, history, domain=call.domain, seed=call.seed)
            if inspect.isawaitable(result):  # a plain function that hands back a coroutine
                result = await result
        return normalise_reply(result)


def salesman_moves(turns: list[Turn]) -> list[list[str]]:
    """The salesman's moves of a call, as texts: consecutive salesman turns form one move of several messages."""
    return [[t.text for t in move] for move, _ in script_moves(turns)]


class ReplaySalesman:
    """Replays a corpus's salesman moves: the k-th move of the script at the k-th salesman turn.

    A call follows the script of the corpus dialogue its profile came from (`call.case_id`) when
    that id is in the corpus, else the corpus dialogues in turn by the customer's plan position.
    """

    def __init__(self, corpus_path: Path | str) -> None:
        from grouped_sim.corpus import read_corpus

        self.path = str(corpus_path)
        self.name = f"replay:{corpus_path}"
        self.scripts = {d.id: moves for d in read_corpus(corpus_path) if (moves := salesman_moves(d.turns))}
        if not self.scripts:
            raise InputError(f"{corpus_path}: no salesman turns to replay")
        self.order = sorted(self.scripts)

    def script_for(self, call: CallContext) -> str:
        return call.case_id if call.case_id in self.scripts else self.order[call.case_index % len(self.order)]

    async def respond(self, call: CallContext) -> list[str]:
        script = self.script_for(call)
        done = len(salesman_moves(call.history))
        moves = self.scripts[script]
        if done >= len(moves):
            raise SalesmanDone(f"the replay script {script} has no more salesman moves")
        return list(moves[done])


class RealMove(BaseModel):
    """One real salesman move and the exchange it answered."""

    dialogue_id: str
    domain: str
    index: int  # 1-based position of the move in its call
    previous: str  # the salesman's move before it ("" for an opener)
    reply: str  # what the customer answered to that move
    messages: list[str]


def real_moves(dialogues: list[Dialogue]) -> list[RealMove]:
    """Every salesman move of a corpus with the exchange before it."""
    out: list[RealMove] = []
    for d in dialogues:
        moves = salesman_moves(d.turns)
        replies = _replies_after_moves(d.turns)
        for index, messages in enumerate(moves, start=1):
            previous = " ".join(moves[index - 2]) if index > 1 else ""
            reply = replies[index - 2] if index > 1 else ""
            out.append(RealMove(dialogue_id=d.id, domain=d.domain, index=index, previous=previous, reply=reply, messages=messages))
    return out


def _replies_after_moves(turns: list[Turn]) -> list[str]:
    """What the customer said after each salesman move (joined; "" when nothing)."""
    replies: list[str] = []
    previous = None
    for turn in turns:
        if turn.role == "salesman" and previous != "salesman":
            replies.append("")
        elif turn.role == "customer" and replies:
            replies[-1] = (replies[-1] + " " + turn.text).strip()
        previous = turn.role
    return replies


def proper_words(text: str) -> set[str]:
    """Capitalised words inside a sentence (never its first word): names, titles, places, brands."""
    import re

    found: set[str] = set()
    for sentence in re.split(r"(?<=[.!?])\s+", text):
        words = re.findall(r"[A-Za-z][A-Za-z'-]*", sentence)
        found.update(w for w in words[1:] if w[0].isupper() and w != "I" and not w.startswith("I'"))
    return found


def call_specific_words(dialogues: list[Dialogue]) -> set[str]:
    """Proper words that belong to a few calls only (a salesman's or customer's name, a street),
    as opposed to those many calls share (the company, its products, titles)."""
    from collections import Counter

    counts = Counter(w for d in dialogues for w in set().union(*(proper_words(t.text) for t in d.turns)))
    rare = max(2, len(dialogues) // 20)
    return {w for w, n in counts.items() if n <= rare}


def embedded_once(texts: list[str]) -> Any:
    """MiniLM vectors of `texts`, kept on disk as a whole list (`embeddings.embed_list_stored`): a
    corpus's moves are embedded once per machine, not at every start (about 10 s for the sample
    corpus on 2 cores), and come back bit for bit as encoded, so which move is nearest never
    depends on what else the machine encoded before."""
    from grouped_sim.embeddings import embed_list_stored

    return embed_list_stored(texts)


class KnnSalesman:
    """A coherent stand-in for the agent under test: each turn it says what a real salesman of the
    corpus said after the exchange most like this call's last one: the customer's reply weighs
    most (MiniLM similarity, plus agreement of its decision state: resistance, deliberation,
    commitment, read by the metrics' lexical instrument, because short replies embed noisily), the
    salesman's previous move and the point of the call less. It never
    repeats a move within a call, never reads the customer's own source call, never brings in a
    name from another call (a move naming someone the call has not named is passed over), and ends
    the call as real salesmen did: when the nearest real move is a goodbye, it says it. The choice
    between the two best moves is seeded, so a seed gives the same call and other seeds give other
    calls.
    """

    REPLY_WEIGHT = 0.7
    POSITION_BONUS = 0.05
    STATE_BONUS = 0.15

    def __init__(self, corpus_path: Path | str) -> None:
        from grouped_sim.corpus import read_corpus

        self.path = str(corpus_path)
        self.name = f"knn:{corpus_path}"
        dialogues = read_corpus(corpus_path)
        self.moves = real_moves(dialogues)
        specific = call_specific_words(dialogues)
        self.names = [proper_words(" ".join(m.messages)) & specific for m in self.moves]
        if not self.moves:
            raise InputError(f"{corpus_path}: no salesman moves to draw from")
        self.replies = embedded_once([m.reply or "(the call starts)" for m in self.moves])
        self.previous = embedded_once([m.previous or "(the call starts)" for m in self.moves])
        self.states = [decision_state(m.reply) for m in self.moves]

    def candidates(self, call: CallContext) -> list[int]:
        said = {t.text for t in call.history if t.role == "salesman"}
        same_domain = [i for i, m in enumerate(self.moves) if m.domain == call.domain and m.dialogue_id != call.case_id]
        pool = same_domain or [i for i, m in enumerate(self.moves) if m.dialogue_id != call.case_id]
        # A call opens once: after the first move, another call's greeting is never a candidate.
        fresh = [i for i in pool if not said.intersection(self.moves[i].messages) and not (said and self.moves[i].index == 1)]
        if not said:
            return fresh
        # After the opening, names come from this call only ("It's Kieran, Ms Rivers" to a Kelly).
        named = set().union(*(proper_words(t.text) for t in call.history))
        return [i for i in fresh if self.names[i] <= named] or fresh

    async def respond(self, call: CallContext) -> list[str]:
        import random

        from grouped_sim.embeddings import embed

        pool = self.candidates(call)
        done = salesman_moves(call.history)
        rng = random.Random(call.seed)
        if not done:
            openers = [i for i in pool if self.moves[i].index == 1]
            if openers:
                return list(self.moves[rng.choice(openers)].messages)
        if not pool:
            raise SalesmanDone("every real move of the corpus has been said in this call")
        reply = " ".join(_replies_after_moves(call.history)[-1:]) or "(no answer)"
        reply_vec, previous_vec = embed([reply, " ".join(done[-1]) if done else "(the call starts)"])
        position = len(done) + 1
        scores = self.REPLY_WEIGHT * (self.replies[pool] @ reply_vec) + (1 - self.REPLY_WEIGHT) * (self.previous[pool] @ previous_vec)
        state = decision_state(reply)
        scores = scores + [self.POSITION_BONUS * (abs(self.moves[i].index - position) <= 1) + self.STATE_BONUS * (self.states[i] == state) for i in pool]
        best = [pool[j] for j in sorted(range(len(pool)), key=lambda j: -scores[j])[:2]]
        return list(self.moves[rng.choice(best)].messages)
