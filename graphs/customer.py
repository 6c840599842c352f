"""The customer model's turn: build its prompt, generate, guard the role, read the action.

The prompt text comes from grouped_sim.customer_prompt (shared with the training data), in the form
the model's backend declares: a raw transcript for our local models, chat messages otherwise. The
manager's guidance and the real exchanges it picked for this stage go into either form.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage
from pydantic import BaseModel, Field

from grouped_sim.customer_prompt import chat_messages, script_prompt, transcript_prompt
from grouped_sim.models.base import LocalChatModel, PromptForm, caches_prefix, prompt_form_of
from grouped_sim.prompts import prompt
from grouped_sim.role_guard import CallerIdentity, caller_identity, claims_caller, seller_phrases
from grouped_sim.schemas import CustomerAction, Profile, Turn
from grouped_sim.transcript import strip_asides
from grouped_sim.sop_db.store import Exchange

MAX_REPLY_WORDS = 60

_ACTION_TAGS: list[tuple[re.Pattern[str], CustomerAction]] = [
    (re.compile(r"[\[(*]\s*(?:hangs? up|hung up|click|ends? the call)\s*[\])*]", re.I), CustomerAction.hang_up),
    (re.compile(r"\[\s*agree[sd]?\s*\]", re.I), CustomerAction.agree),
    (re.compile(r"\[\s*refuse[sd]?\s*\]", re.I), CustomerAction.refuse),
    (re.compile(r"\[\s*call(?:s)? back(?: later)?\s*\]", re.I), CustomerAction.callback),
]
_LABEL_RE = re.compile(r"^\s*(?:customer|me|answer)\s*:\s*", re.I)
MAX_SENTENCES = 3
_NEXT_SPEAKER_RE = re.compile(r"\n|\b(?:Salesman|Salesperson|Agent)\s*:", re.I)
_KEEN_RE = re.compile(
    r"\b(?:great|interesting|sounds good|love (?:it|that)|perfect|wonderful|excellent|amazing|fantastic|happy to|brilliant"
    r"|i(?:'ll| will| am going to|'m going to) (?:try|take|go for|sign|book|get) (?:it|that|the|one)|let's do it|sign me up"
    # seen in a refusing twin on INSPIRED: "Oh, wow! That sounds like something I can watch." (not "wow":
    # "Wow, that is expensive" ends calls too)
    r"|sounds like (?:something|a plan|fun|a good)|i (?:can|could|would|'d|will|'ll|might) (?:watch|check (?:it|that) out|give (?:it|that) a (?:go|try)))\b",
    re.I,
)
_REFUSAL_RE = re.compile(r"\b(?:no|not interested|never|stop calling)\b", re.I)
# A reply that is nothing but a refusal ("no", "no thanks."): it cannot be the words that arrange a callback.
_BARE_REFUSAL_RE = re.compile(r"^\W*(?:no+|nope|nah|no,? thanks?(?: you)?|not interested)\W*$", re.I)

# Words that put a call off. Seen in demo calls: decided on a callback, the 1.5B customer asked
# "Can you tell me what the fixed price is?" and the call ended there, as if cut off.
_DEFERRAL_RE = re.compile(
    r"\b(?:call (?:me |us )?(?:back|again|later|tomorrow)|ring (?:me |us )?back|another (?:time|day)|some ?other time|later|not (?:right )?now"
    r"|busy|bad time|no time|think (?:about|it over)|get back to|tomorrow|next (?:week|month)|tonight|this evening|send (?:me|it|us|the)"
    r"|e-?mail|in writing|(?:talk|speak|check) (?:to|with) (?:my|the)|ask my|let me (?:check|think|talk|look)|in a (?:bit|while)|after)\b",
    re.I,
)


Picker = Callable[[list[Turn], list[str]], list[float]]
"""(the call so far, candidate replies) -> a score per candidate; the highest is said (best-of-N)."""


class CustomerReply(BaseModel):
    text: str
    action: CustomerAction
    attempts: int = 1
    fallback: bool = False
    rejected: list[str] = Field(default_factory=list, description="replies the role guard threw away")
    scores: list[float] | None = Field(None, description="best-of-N: the picker's score of each candidate the guard kept (the said one first)")


class CustomerPrompt(BaseModel):
    """Everything the customer model is conditioned on for one reply (I_final of Algorithm 1)."""

    profile: Profile
    domain: str
    history: list[Turn]
    guidance: str = ""
    references: list[Exchange] = Field(default_factory=list, description="real exchanges at this stage, picked by the manager")

    @property
    def example_lines(self) -> list[str]:
        return [r.customer for r in self.references]


def action_mismatch(action: CustomerAction, text: str) -> str | None:
    """Why a reply contradicts the action the manager decided, if it does.

    A customer who is hanging up does not ask a question or sound keen; one who agrees does not say no;
    one who arranges a callback says more than a bare "no".
    """
    if action in (CustomerAction.hang_up, CustomerAction.refuse):
        if "?" in text:
            return "asks a question while ending the call"
        if _KEEN_RE.search(text):
            return "sounds keen while ending the call"
    if action is CustomerAction.agree and _REFUSAL_RE.search(text):
        return "refuses while agreeing"
    if action is CustomerAction.callback and _BARE_REFUSAL_RE.match(text):
        return "only refuses while arranging a callback"
    if action is CustomerAction.callback and not _DEFERRAL_RE.search(text):
        return "does not put the call off while arranging a callback"
    return None


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
    text = strip_asides(text)
    sentences = re.split(r"(?<=[.!?])\s+", text.strip())
    text = " ".join(sentences[:MAX_SENTENCES])
    text = re.sub(r"\s+([.,!?])", r"\1", re.sub(r"\s{2,}", " ", text))
    # A small model's runs of one mark ("hello,,,,,,,,", "from where?||"): no person says them.
    text = re.sub(r"\.{4,}", "...", re.sub(r"([,!?])\1{2,}", r"\1", text.replace("|", "")))
    # A label the model half-wrote ("Customer:" after the prompt's own, ": I want to ...") leaves its colon.
    return re.sub(r"^[:;\-–—]+\s*", "", text.strip().strip('"').strip())


def render(model: BaseChatModel, inputs: CustomerPrompt) -> tuple[list[BaseMessage], dict[str, Any]]:
    """The prompt in the form the model's backend declares, and the call options that go with it.

    All forms show the same references: as short example calls before the call in a transcript, as
    quoted lines in a note before "Customer:" for a model that caches prompt prefixes (so the call
    stays a stable prefix), as quoted lines in a chat persona.
    """
    if prompt_form_of(model) is PromptForm.transcript and caches_prefix(model):
        text = script_prompt(inputs.profile, inputs.domain, inputs.history, inputs.guidance, inputs.example_lines)
        return [HumanMessage(content=text)], {"raw_prompt": True, "stop": ["\n"]}
    if prompt_form_of(model) is PromptForm.transcript:
        examples = [[(r.salesman, r.customer)] for r in inputs.references]
        text = transcript_prompt(inputs.profile, inputs.domain, inputs.history, inputs.guidance, examples)
        return [HumanMessage(content=text)], {"raw_prompt": True, "stop": ["\n"]}
    return chat_messages(inputs.profile, inputs.history, inputs.guidance, inputs.example_lines, inputs.domain), {}


def fallback_line(action: CustomerAction, examples: list[str]) -> str:
    """A real reference line when there is one, else the stock line for the action."""
    if examples:
        return examples[0]
    return str(prompt("customer")["fallback_lines"][action.value])


def problem_with(text: str, tagged: CustomerAction | None, planned: CustomerAction, caller: CallerIdentity = CallerIdentity()) -> str | None:
    """Why a draft reply cannot be used (empty, too long, seller talk, says it is the caller,
    contradicts the decision). `caller`: the names the salesman introduced (role_guard.caller_identity)."""
    if not text and tagged is None:
        return "empty"
    if len(text.split()) > MAX_REPLY_WORDS:
        return "too long"
    if seller_phrases(text):
        return "seller: " + ", ".join(seller_phrases(text))
    if (claim := claims_caller(text, caller)) is not None:
        return "caller's identity: " + claim
    if (mismatch := action_mismatch(planned, text)) is not None:
        return "action: " + mismatch
    return None


def screen(raw: str, planned: CustomerAction, caller: CallerIdentity = CallerIdentity()) -> tuple[str, CustomerAction | None, str | None]:
    """A raw draft as the simulator treats it: (its cleaned text, the action it tags, why it cannot
    be said or None)."""
    text, tagged = parse_action(raw)
    text = clean_reply(text)
    return text, tagged, problem_with(text, tagged, planned, caller)


def said_reply(raw: str) -> str | None:
    """What the simulator would say for a raw draft of an ordinary turn, or None when it would
    throw the draft away (empty, too long, seller talk). Model replies used as realism negatives
    pass through this, so a scorer learns from what the simulator says, not from drafts it drops."""
    text, _, problem = screen(raw, CustomerAction.speak)
    return text if problem is None and text else None


def draw_candidates(model: BaseChatModel, messages: list[BaseMessage], kwargs: dict[str, Any], seed: int, n: int) -> list[str]:
    """n raw replies: one batched call on our own backends (candidate i seeded seed + i), seeded
    calls one by one on any other chat model. Candidate 0 is what a plain call with `seed` says."""
    if n == 1:
        return [str(model.invoke(messages, seed=seed, **kwargs).content)]
    texts: list[str] = []
    if isinstance(model, LocalChatModel):
        texts = [str(g.message.content) for g in model.generate([messages], n=n, seed=seed, **kwargs).generations[0]]
    texts += [str(model.invoke(messages, seed=seed + i, **kwargs).content) for i in range(len(texts), n)]
    return texts


def generate_reply(
    model: BaseChatModel, inputs: CustomerPrompt, planned: CustomerAction, seed: int, retries: int, n: int = 1, pick: Picker | None = None
) -> CustomerReply:
    """Draw n candidates, drop those that are empty, too long, pitch like a salesman or contradict
    the manager's decision, and say the one `pick` scores highest (the first, without a picker).
    Nothing left: draw again; after the last try, a real line (or a stock one) stands in."""
    messages, kwargs = render(model, inputs)
    caller = caller_identity(t.text for t in inputs.history if t.role == "salesman")
    n = n if pick is not None else 1  # nothing to choose with: one candidate is plain sampling
    rejected: list[str] = []
    for attempt in range(retries + 1):
        kept: list[tuple[str, CustomerAction | None]] = []
        for raw in draw_candidates(model, messages, kwargs, seed + attempt * n, n):
            text, tagged, problem = screen(raw, planned, caller)
            if problem is None:
                kept.append((text, tagged))
            else:
                rejected.append(f"{problem} | {text[:120]}")
        if kept:
            scores = pick(inputs.history, [t for t, _ in kept]) if pick is not None and len(kept) > 1 else None
            best = max(range(len(kept)), key=lambda i: scores[i]) if scores else 0
            text, tagged = kept[best]
            action = planned if planned is not CustomerAction.speak else (tagged or CustomerAction.speak)
            ordered = [round(scores[best], 4), *(round(x, 4) for i, x in enumerate(scores) if i != best)] if scores else None
            return CustomerReply(text=text, action=action, attempts=attempt + 1, rejected=rejected, scores=ordered)
    return CustomerReply(text=fallback_line(planned, inputs.example_lines), action=planned, attempts=retries + 1, fallback=True, rejected=rejected)
