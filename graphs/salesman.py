"""The salesman: the agent under test, behind one small adapter protocol.

Anything that can answer a call history with one or more messages plugs in. The default for the
demo is a chat model following a product script for the corpus domain. The salesman never sees
the customer's profile.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from grouped_sim.prompts import product_for, prompts
from grouped_sim.schemas import Turn

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
    return any(phrase in lowered for phrase in prompts()["salesman_goodbyes"])


def _clean(text: str) -> str:
    for marker in ("\nCustomer:", "Customer:", "\n"):
        text = text.split(marker, 1)[0]
    text = text.strip().strip('"').strip()
    if text.lower().startswith("salesman:"):
        text = text[len("salesman:") :].strip()
    return text


class ChatModelSalesman:
    """A chat model reading a product script; transcript-prompted when the model supports it."""

    def __init__(self, model: BaseChatModel, name: str = "chat-model", retries: int = 2) -> None:
        self.model = model
        self.name = name
        self.retries = retries

    def messages(self, history: list[Turn], domain: str) -> tuple[list[BaseMessage], dict[str, Any]]:
        product = product_for(domain)
        cfg = prompts()["salesman"]
        if getattr(self.model, "supports_raw_prompt", False):
            lines = [cfg["transcript_header"].format(**product), cfg["script_note"].format(script=product["script"]), ""]
            lines += [f"{'Salesman' if t.role == 'salesman' else 'Customer'}: {t.text}" for t in history]
            lines.append("Salesman:")
            return [HumanMessage(content="\n".join(lines))], {"raw_prompt": True, "stop": ["\n"]}
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
        messages, kwargs = self.messages(history, domain)
        text = ""
        for attempt in range(self.retries + 1):
            reply = self.model.invoke(messages, seed=seed + attempt, **kwargs)
            text = _clean(str(reply.content))
            if text:
                return text
        return "Sorry, I didn't catch that. Could you say that again?"
