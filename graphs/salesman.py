"""The salesman: the agent under test, behind one participant protocol.

Every salesman (a model reading a demo product script, your endpoint, a webhook, a Python callable,
a replayed corpus) implements `Salesman`: one async `respond(call)` that receives the dialogue id,
domain, this turn's seed and the call so far, and returns one or more messages. Sync agents are
wrapped once, by `SyncSalesman`. The salesman never sees the customer's profile.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from functools import lru_cache
from typing import Any, Protocol

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, Field

from grouped_sim.corpus import read_corpus
from grouped_sim.data import sample_corpus_path
from grouped_sim.graphs.resilience import GiveUp
from grouped_sim.models.base import PromptForm, prompt_form_of
from grouped_sim.prompts import product_for, prompt
from grouped_sim.schemas import Turn
from grouped_sim.transcript import strip_asides, transcript_lines

EXAMPLE_CALLS = 2
EXAMPLE_TURNS = 8

_OPENERS = {
    "food-delivery": "Hi there, am I speaking with the owner of the restaurant? This is Alex from {company}.",
    "broadband": "Hello, is that the account holder? It's Alex calling from {company} about your broadband.",
    "insurance": "Good morning, this is Alex from {company}, I'm calling about your policy renewal.",
}


class CallContext(BaseModel):
    """What a participant is told about the call it is in, every turn."""

    dialogue_id: str
    domain: str
    seed: int = Field(description="this turn's seed, derived from the dialogue seed and the turn number")
    history: list[Turn] = Field(default_factory=list)
    case_id: str = Field("", description="where the simulated customer's profile came from (a corpus dialogue id or file:line)")
    case_index: int = Field(0, description="the customer's position in the run's plan")


class Salesman(Protocol):
    """The agent under test: given the call so far, say the next thing (one or more messages)."""

    name: str

    async def respond(self, call: CallContext) -> list[str]: ...


class SalesmanDone(GiveUp):
    """The agent has nothing more to say: the call ends as `salesman_ended` (replay scripts run out)."""


class AgentReplyError(GiveUp):
    """The agent answered, but with something that is not a message (no retry can fix it)."""


def normalise_reply(reply: Any) -> list[str]:
    """A string, a message dict ({"text"} / {"content"}), an object with `.content`, or a list of those."""
    items = reply if isinstance(reply, (list, tuple)) else [reply]
    texts: list[str] = []
    for item in items:
        if isinstance(item, str):
            texts.append(item)
        elif isinstance(item, dict) and isinstance(item.get("text", item.get("content")), str):
            texts.append(item.get("text", item.get("content")))
        elif isinstance(getattr(item, "content", None), str):
            texts.append(item.content)
        else:
            raise AgentReplyError(f"the agent returned {type(item).__name__}; expected a string, a message dict, or a list of them")
    return texts


class SyncSalesman:
    """Wraps a blocking `respond(call)` once: it runs in a worker thread, the loop stays free."""

    def __init__(self, name: str, respond: Callable[[CallContext], Any]) -> None:
        self.name = name
        self._respond = respond

    async def respond(self, call: CallContext) -> list[str]:
        return normalise_reply(await asyncio.to_thread(self._respond, call))


def is_goodbye(text: str) -> bool:
    """A salesman line that closes the call."""
    lowered = text.lower()
    return any(phrase in lowered for phrase in prompt("salesman")["goodbyes"])


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def _clean(text: str) -> str:
    for marker in ("\nCustomer:", "Customer:", "\n"):
        text = text.split(marker, 1)[0]
    text = strip_asides(text).strip('"').strip()
    if text.lower().startswith("salesman:"):
        text = text[len("salesman:") :].strip()
    return text


@lru_cache(maxsize=1)
def _sample_calls() -> dict[str, list[list[Turn]]]:
    by_domain: dict[str, list[list[Turn]]] = {}
    for dialogue in read_corpus(sample_corpus_path()):
        by_domain.setdefault(dialogue.domain, []).append(dialogue.turns)
    return by_domain


def example_calls(domain: str, key: str) -> list[list[Turn]]:
    """Real calls of the same domain as worked examples: small models imitate far better than they obey.

    Chosen by `key` (the dialogue id): the same examples all call long, so the prompt up to the
    call is one prefix a llama.cpp server reads once per call, not once per turn."""
    calls = _sample_calls().get(domain, [])
    return random.Random(f"examples:{key}").sample(calls, min(EXAMPLE_CALLS, len(calls)))


class ChatModelSalesman:
    """A chat model reading a product script: the demo's stand-in for an agent under test."""

    def __init__(self, model: BaseChatModel, name: str = "chat-model", retries: int = 2, use_examples: bool = True) -> None:
        self.model = model
        self.name = name
        self.retries = retries
        self.use_examples = use_examples

    def messages(self, history: list[Turn], domain: str, key: str = "") -> tuple[list[BaseMessage], dict[str, Any]]:
        """The prompt in the form the model declares, and the call options that go with it."""
        product = product_for(domain)
        cfg = prompt("salesman")
        if prompt_form_of(self.model) is PromptForm.transcript:
            blocks = [cfg["transcript_header"].format(**product)]
            examples = example_calls(domain, key) if self.use_examples else []
            for n, call in enumerate(examples, start=1):
                blocks.append("\n".join([cfg["example_heading"].format(n=n), *transcript_lines(call[:EXAMPLE_TURNS])]))
            lines = [cfg["current_heading"].format(n=len(examples) + 1), cfg["script_note"].format(script=product["script"])]
            blocks.append("\n".join([*lines, *transcript_lines(history), "Salesman:"]))
            return [HumanMessage(content="\n\n".join(blocks))], {"raw_prompt": True, "stop": ["\n"]}
        messages: list[BaseMessage] = [SystemMessage(content=cfg["chat_system"].format(**product))]
        for t in history:
            messages.append(AIMessage(content=t.text) if t.role == "salesman" else HumanMessage(content=t.text))
        if not history:
            messages.append(HumanMessage(content="(The customer picks up the phone.) Hello?"))
        return messages, {}

    def say(self, history: list[Turn], domain: str, seed: int, key: str = "") -> str:
        if not history:
            # A fixed, script-true opener: every run starts the call the same way, as real campaigns do.
            return _OPENERS.get(domain, "Hello, this is Alex from {company}, do you have a moment?").format(**product_for(domain))
        messages, kwargs = self.messages(history, domain, key)
        said = {_norm(t.text) for t in history if t.role == "salesman"}
        for attempt in range(self.retries + 1):
            reply = self.model.invoke(messages, seed=seed + attempt, **kwargs)
            text = _clean(str(reply.content))
            if text and _norm(text) not in said:  # a stand-in agent that repeats its last line word for word is stuck
                return text
        return "Sorry, I didn't catch that. Could you say that again?"

    async def respond(self, call: CallContext) -> list[str]:
        return [await asyncio.to_thread(self.say, call.history, call.domain, call.seed, call.dialogue_id)]
