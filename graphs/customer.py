"""The customer model's turn: build its prompt, generate, guard the role, read the action.

Two prompt forms (see prompts.yaml): a transcript that the model continues after "Customer:"
(small local models), and a chat conversation with a system persona (instruction models). Both
carry the profile, the manager's guidance and real reference lines from the SOP store.
"""

from __future__ import annotations

import re
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, Field

from grouped_sim.prompts import prompts
from grouped_sim.role_guard import seller_phrases
from grouped_sim.schemas import CustomerAction, Profile, Turn
from sop_db.store import BehaviourChain

MAX_EXAMPLE_CHAINS = 2
MAX_EXAMPLE_STEPS = 5
MAX_REPLY_WORDS = 60

_ACTION_TAGS: list[tuple[re.Pattern[str], CustomerAction]] = [
    (re.compile(r"[\[(*]\s*(?:hangs? up|hung up|click|ends? the call)\s*[\])*]", re.I), CustomerAction.hang_up),
    (re.compile(r"\[\s*agree[sd]?\s*\]", re.I), CustomerAction.agree),
    (re.compile(r"\[\s*refuse[sd]?\s*\]", re.I), CustomerAction.refuse),
    (re.compile(r"\[\s*call(?:s)? back(?: later)?\s*\]", re.I), CustomerAction.callback),
]
_LABEL_RE = re.compile(r"^\s*(?:customer|me|answer)\s*:\s*", re.I)
_NEXT_SPEAKER_RE = re.compile(r"\n|\b(?:Salesman|Salesperson|Agent)\s*:", re.I)


class CustomerReply(BaseModel):
    text: str
    action: CustomerAction
    attempts: int = 1
    fallback: bool = False
    rejected: list[str] = Field(default_factory=list, description="replies the role guard threw away")


def parse_action(text: str) -> tuple[str, CustomerAction | None]:
    """Strip explicit action tags from a reply and return the action they name, if any."""
    found: CustomerAction | None = None
    for pattern, action in _ACTION_TAGS:
        if pattern.search(text):
            found = found or action
            text = pattern.sub("", text)
    return text.strip(), found


def clean_reply(text: str) -> str:
    """Keep only the customer's own line: no speaker label, nothing the model wrote for the salesman."""
    text = _LABEL_RE.sub("", text.strip())
    text = _NEXT_SPEAKER_RE.split(text, maxsplit=1)[0]
    return text.strip().strip('"').strip()


def _chain_block(chain: BehaviourChain, n: int) -> str:
    heading = prompts()["customer"]["example_heading"].format(n=n)
    lines = [heading]
    for step in chain.steps[:MAX_EXAMPLE_STEPS]:
        if step.salesman:
            lines.append(f"Salesman: {step.salesman}")
        if step.customer:
            lines.append(f"Customer: {step.customer}")
    return "\n".join(lines)


def transcript_prompt(profile: Profile, domain: str, history: list[Turn], guidance: str, chains: list[BehaviourChain]) -> list[BaseMessage]:
    """One plain-text prompt ending in 'Customer:', with retrieved calls as worked examples."""
    cfg = prompts()["customer"]
    blocks = [cfg["transcript_header"].format(domain=domain)]
    for i, chain in enumerate(chains[:MAX_EXAMPLE_CHAINS], start=1):
        blocks.append(_chain_block(chain, i))
    current = [cfg["current_heading"].format(n=min(len(chains), MAX_EXAMPLE_CHAINS) + 1)]
    current.append(cfg["persona_note"].format(profile=profile.summary))
    if guidance:
        current.append(cfg["guidance_note"].format(guidance=guidance))
    for turn in history:
        current.append(f"{'Salesman' if turn.role == 'salesman' else 'Customer'}: {turn.text}")
    current.append("Customer:")
    blocks.append("\n".join(current))
    return [HumanMessage(content="\n\n".join(blocks))]


def chat_prompt(profile: Profile, history: list[Turn], guidance: str, examples: list[str]) -> list[BaseMessage]:
    """A system persona and the call so far, the customer speaking as the assistant."""
    cfg = prompts()["customer"]
    example_text = cfg["chat_examples"].format(lines=" | ".join(f'"{e}"' for e in examples)) if examples else ""
    system = cfg["chat_system"].format(profile=profile.as_text(), guidance=guidance or "react naturally", examples=example_text)
    messages: list[BaseMessage] = [SystemMessage(content=system)]
    for turn in history:
        messages.append(HumanMessage(content=turn.text) if turn.role == "salesman" else AIMessage(content=turn.text))
    return messages


def uses_transcript(model: BaseChatModel) -> bool:
    """Raw transcript prompting for models that support it (local small models), chat otherwise."""
    return bool(getattr(model, "supports_raw_prompt", False))


def fallback_line(action: CustomerAction, examples: list[str]) -> str:
    """A real reference line when there is one, else the stock line for the action."""
    if examples:
        return examples[0]
    return str(prompts()["fallback_lines"][action.value])


def generate_reply(
    model: BaseChatModel,
    *,
    profile: Profile,
    domain: str,
    history: list[Turn],
    guidance: str,
    planned: CustomerAction,
    chains: list[BehaviourChain],
    examples: list[str],
    seed: int,
    retries: int,
) -> CustomerReply:
    """Generate, then regenerate while the reply is empty, too long, or pitches like a salesman."""
    transcript = uses_transcript(model)
    if transcript:
        messages = transcript_prompt(profile, domain, history, guidance, chains)
        kwargs: dict[str, Any] = {"raw_prompt": True, "stop": ["\n"]}
    else:
        messages = chat_prompt(profile, history, guidance, examples)
        kwargs = {}
    rejected: list[str] = []
    for attempt in range(retries + 1):
        raw = model.invoke(messages, seed=seed + attempt, **kwargs)
        text, tagged = parse_action(clean_reply(str(raw.content)))
        problem = None
        if not text and tagged is None:
            problem = "empty"
        elif len(text.split()) > MAX_REPLY_WORDS:
            problem = "too long"
        elif seller_phrases(text):
            problem = "seller: " + ", ".join(seller_phrases(text))
        if problem is None:
            action = planned if planned is not CustomerAction.speak else (tagged or CustomerAction.speak)
            return CustomerReply(text=text, action=action, attempts=attempt + 1, rejected=rejected)
        rejected.append(f"{problem} | {text[:120]}")
    return CustomerReply(text=fallback_line(planned, examples), action=planned, attempts=retries + 1, fallback=True, rejected=rejected)
