"""The customer model's turn: build its prompt, generate, guard the role, read the action.

The prompt text itself comes from grouped_sim.customer_prompt (shared with the training data);
here it is filled with the manager's guidance and the retrieved chains K_p as worked examples.
"""

from __future__ import annotations

import re
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage
from pydantic import BaseModel, Field

from grouped_sim.customer_prompt import chat_messages, transcript_text
from grouped_sim.prompts import prompt
from grouped_sim.role_guard import seller_phrases
from grouped_sim.schemas import CustomerAction, Profile, Turn
from grouped_sim.sop_db.store import BehaviourChain

MAX_REPLY_WORDS = 60

_ACTION_TAGS: list[tuple[re.Pattern[str], CustomerAction]] = [
    (re.compile(r"[\[(*]\s*(?:hangs? up|hung up|click|ends? the call)\s*[\])*]", re.I), CustomerAction.hang_up),
    (re.compile(r"\[\s*agree[sd]?\s*\]", re.I), CustomerAction.agree),
    (re.compile(r"\[\s*refuse[sd]?\s*\]", re.I), CustomerAction.refuse),
    (re.compile(r"\[\s*call(?:s)? back(?: later)?\s*\]", re.I), CustomerAction.callback),
]
_LABEL_RE = re.compile(r"^\s*(?:customer|me|answer)\s*:\s*", re.I)
_STAGE_DIRECTION_RE = re.compile(r"\[[^\]]*\]|\*[^*]*\*|\((?:[^)]*)\)")
MAX_SENTENCES = 3
_NEXT_SPEAKER_RE = re.compile(r"\n|\b(?:Salesman|Salesperson|Agent)\s*:", re.I)


_KEEN_RE = re.compile(r"\b(?:great|interesting|sounds good|love (?:it|that)|perfect|wonderful|excellent|amazing|fantastic|happy to|brilliant)\b", re.I)
_REFUSAL_RE = re.compile(r"\b(?:no|not interested|never|stop calling)\b", re.I)


def action_mismatch(action: CustomerAction, text: str) -> str | None:
    """Why a reply contradicts the action the manager decided, if it does.

    A customer who is hanging up does not ask a question or sound keen; one who agrees does not say no.
    """
    if action in (CustomerAction.hang_up, CustomerAction.refuse):
        if "?" in text:
            return "asks a question while ending the call"
        if _KEEN_RE.search(text):
            return "sounds keen while ending the call"
    if action is CustomerAction.agree and _REFUSAL_RE.search(text):
        return "refuses while agreeing"
    return None


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
    text = _STAGE_DIRECTION_RE.sub("", text)
    sentences = re.split(r"(?<=[.!?])\s+", text.strip())
    text = " ".join(sentences[:MAX_SENTENCES])
    text = re.sub(r"\s+([.,!?])", r"\1", re.sub(r"\s{2,}", " ", text))
    return text.strip().strip('"').strip()


def _example_calls(chains: list[BehaviourChain]) -> list[list[tuple[str, str]]]:
    return [[(step.salesman, step.customer) for step in chain.steps] for chain in chains]


def transcript_prompt(profile: Profile, domain: str, history: list[Turn], guidance: str, chains: list[BehaviourChain]) -> list[BaseMessage]:
    """The transcript form as one message (the model sees it raw, without a chat template)."""
    return [HumanMessage(content=transcript_text(profile, domain, history, guidance, _example_calls(chains)))]


def chat_prompt(profile: Profile, history: list[Turn], guidance: str, examples: list[str]) -> list[BaseMessage]:
    return chat_messages(profile, history, guidance, examples)


def uses_transcript(model: BaseChatModel) -> bool:
    """Raw transcript prompting for models that support it (local small models), chat otherwise."""
    return bool(getattr(model, "supports_raw_prompt", False))


def fallback_line(action: CustomerAction, examples: list[str]) -> str:
    """A real reference line when there is one, else the stock line for the action."""
    if examples:
        return examples[0]
    return str(prompt("customer")["fallback_lines"][action.value])


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
        text, tagged = parse_action(str(raw.content))
        text = clean_reply(text)
        problem = None
        if not text and tagged is None:
            problem = "empty"
        elif len(text.split()) > MAX_REPLY_WORDS:
            problem = "too long"
        elif seller_phrases(text):
            problem = "seller: " + ", ".join(seller_phrases(text))
        elif (mismatch := action_mismatch(planned, text)) is not None:
            problem = "action: " + mismatch
        if problem is None:
            action = planned if planned is not CustomerAction.speak else (tagged or CustomerAction.speak)
            return CustomerReply(text=text, action=action, attempts=attempt + 1, rejected=rejected)
        rejected.append(f"{problem} | {text[:120]}")
    return CustomerReply(text=fallback_line(planned, examples), action=planned, attempts=retries + 1, fallback=True, rejected=rejected)
