"""The salesman: the agent under test, behind one small adapter protocol.

Anything that can answer a call history with one or more messages plugs in. The default for the
demo is a chat model following a product script for the corpus domain. The salesman never sees
the customer's profile.
"""

from __future__ import annotations

import random
from functools import lru_cache
from typing import Any, Protocol, runtime_checkable

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from grouped_sim.corpus import read_corpus
from grouped_sim.data import sample_corpus_path
from grouped_sim.prompts import product_for, prompt
from grouped_sim.schemas import Turn

EXAMPLE_CALLS = 2
EXAMPLE_TURNS = 8

_OPENERS = {
    "food-delivery": "Hi there, am I speaking with the owner of the restaurant? This is Alex from {company}.",
    "broadband": "Hello, is that the account holder? It's Alex calling from {company} about your broadband.",
    "insurance": "Good morning, this is Alex from {company}, I'm calling about your policy renewal.",
}


@runtime_checkable
class SalesmanAgent(Protocol):
    """The agent under test: given the call so far, say the next thing (one or more messages)."""

    name: str

    def respond(self, history: list[Turn], *, domain: str, seed: int) -> str | list[str]: ...


def is_goodbye(text: str) -> bool:
    """A salesman line that closes the call."""
    lowered = text.lower()
    return any(phrase in lowered for phrase in prompt("salesman")["goodbyes"])


def _clean(text: str) -> str:
    for marker in ("\nCustomer:", "Customer:", "\n"):
        text = text.split(marker, 1)[0]
    text = text.strip().strip('"').strip()
    if text.lower().startswith("salesman:"):
        text = text[len("salesman:") :].strip()
    return text


@lru_cache(maxsize=1)
def _sample_calls() -> dict[str, list[list[Turn]]]:
    by_domain: dict[str, list[list[Turn]]] = {}
    for dialogue in read_corpus(sample_corpus_path()):
        by_domain.setdefault(dialogue.domain, []).append(dialogue.turns)
    return by_domain


def example_calls(domain: str, seed: int) -> list[list[Turn]]:
    """Real calls of the same domain as worked examples: small models imitate far better than they obey."""
    calls = _sample_calls().get(domain, [])
    return random.Random(seed).sample(calls, min(EXAMPLE_CALLS, len(calls)))


class ChatModelSalesman:
    """A chat model reading a product script; transcript-prompted when the model supports it."""

    def __init__(self, model: BaseChatModel, name: str = "chat-model", retries: int = 2, use_examples: bool = True) -> None:
        self.model = model
        self.name = name
        self.retries = retries
        self.use_examples = use_examples

    def messages(self, history: list[Turn], domain: str, seed: int = 0) -> tuple[list[BaseMessage], dict[str, Any]]:
        product = product_for(domain)
        cfg = prompt("salesman")
        if getattr(self.model, "supports_raw_prompt", False):
            blocks = [cfg["transcript_header"].format(**product)]
            examples = example_calls(domain, seed) if self.use_examples else []
            for n, call in enumerate(examples, start=1):
                lines = [cfg["example_heading"].format(n=n)]
                lines += [f"{'Salesman' if t.role == 'salesman' else 'Customer'}: {t.text}" for t in call[:EXAMPLE_TURNS]]
                blocks.append("\n".join(lines))
            lines = [cfg["current_heading"].format(n=len(examples) + 1), cfg["script_note"].format(script=product["script"])]
            lines += [f"{'Salesman' if t.role == 'salesman' else 'Customer'}: {t.text}" for t in history]
            lines.append("Salesman:")
            blocks.append("\n".join(lines))
            return [HumanMessage(content="\n\n".join(blocks))], {"raw_prompt": True, "stop": ["\n"]}
        messages: list[BaseMessage] = [SystemMessage(content=cfg["chat_system"].format(**product))]
        for t in history:
            messages.append(AIMessage(content=t.text) if t.role == "salesman" else HumanMessage(content=t.text))
        if not history:
            messages.append(HumanMessage(content="(The customer picks up the phone.) Hello?"))
        return messages, {}

    def respond(self, history: list[Turn], *, domain: str, seed: int) -> str | list[str]:
        if not history:
            # A fixed, script-true opener: every run starts the call the same way, as real campaigns do.
            return _OPENERS.get(domain, "Hello, this is Alex from {company}, do you have a moment?").format(**product_for(domain))
        messages, kwargs = self.messages(history, domain, seed)
        text = ""
        for attempt in range(self.retries + 1):
            reply = self.model.invoke(messages, seed=seed + attempt, **kwargs)
            text = _clean(str(reply.content))
            if text:
                return text
        return "Sorry, I didn't catch that. Could you say that again?"
