"""Cheap detection of a customer turn that talks like the seller (role inversion).

Small chat models drift into the salesperson's role; the simulator regenerates such replies and
the metrics count them. A regex pass is the pre-filter; a judge model can confirm later.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from grouped_sim.schemas import Turn

_SELLER_PATTERNS = [
    r"\bwe offer\b",
    r"\bwe(?:'d| would) (?:love|like) to\b",
    r"\bour (?:platform|service|services|company|app|plan|plans|policy|policies|team|product|products|customers|clients|offer|partners|restaurants)\b",
    r"\bsign (?:you|them) up\b",
    r"\b(?:can|may) i interest you\b",
    r"\bwould you (?:be interested|like to (?:sign|join|try|hear|upgrade|renew))\b",
    r"\blet me (?:tell|explain|walk) you\b",
    r"\bwe can (?:offer|help|get you|give you|save you)\b",
    r"\bspecial (?:offer|deal|promotion)\b",
    r"\b(?:i(?:'m| am)|this is \w+(?: \w+)?) calling (?:from|about|on behalf|to (?:inform|tell|let|offer|remind))\b",
    r"\bthank you for (?:choosing|your interest|being a)\b",
    r"\bwe(?:'re| are) (?:so )?(?:glad|happy|excited|thrilled)\b",
    r"\bhow can i (?:help|assist) you\b",
    # An instruction-tuned model slipping out of the customer into the assistant it was trained as.
    r"\bas an ai\b",
    r"\bi(?:'m| am) (?:just )?an ai\b",
    r"\bi(?:'m| am) (?:a|an) (?:language model|assistant|ai assistant)\b",
    r"\bhow may i (?:help|assist)\b",
    r"\bis there anything else i can\b",
    r"\bjoin (?:our|us)\b",
    r"\b(?:exclusive|limited[- ]time) (?:offer|deal)\b",
]
_SELLER_RE = re.compile("|".join(_SELLER_PATTERNS), re.IGNORECASE)
_SPEAKER_LABEL_RE = re.compile(r"^\s*(?:salesman|salesperson|agent|seller|caller)\s*:", re.IGNORECASE)


def seller_phrases(text: str) -> list[str]:
    """The seller-like phrases found in `text` (empty when none)."""
    found = [m.group(0) for m in _SELLER_RE.finditer(text)]
    if _SPEAKER_LABEL_RE.search(text):
        found.append("speaker label")
    return found


def looks_like_salesman(text: str) -> bool:
    """True when a customer turn reads like the seller speaking."""
    return bool(seller_phrases(text))


# How a caller says who they are ("It's Alex calling from Corriwave", "my name is Sam from Forkly"):
# the person's name and the company's, so a customer who answers "yes, this is Alex" (taking the
# caller's name, a slip instruction-tuned models make) is caught.
_INTRO_RE = re.compile(
    r"\b(?i:this is|i[’']m|i am|my name is|it[’']s|it is|name[’']s)\s+([A-Z][a-z]+)(?:\s+(?i:calling\s+|here\s+)?(?i:from|at|with)\s+([A-Z][\w&'-]+))?"
)
_NOT_NAMES = {"Just", "Only", "Calling", "Here", "Really", "Sorry", "About", "The", "That", "This", "Not", "Very", "So"}


class CallerIdentity(NamedTuple):
    """Who the caller said they are: their own first name(s) and their company's."""

    people: frozenset[str] = frozenset()
    companies: frozenset[str] = frozenset()


def caller_identity(salesman_lines: Iterable[str]) -> CallerIdentity:
    """The names the caller introduced themselves and their company by, in their own lines."""
    people: set[str] = set()
    companies: set[str] = set()
    for line in salesman_lines:
        for person, company in _INTRO_RE.findall(line):
            if person not in _NOT_NAMES:
                people.add(person)
            if company:
                companies.add(company)
    return CallerIdentity(frozenset(people), frozenset(companies))


_BETWEEN = r"(?:(?!(?:with|on|at|in|from|not|for|to)\b)\w+\s+)?"  # "this is [just] Alex", never "I am with Corriwave"


def claims_caller(text: str, identity: CallerIdentity) -> str | None:
    """The words where a customer reply says it IS the caller ("yes, this is Alex", "I'm from
    Corriwave"), or None. Naming the caller in passing ("no, Alex, not today", "it's Corriwave
    again?", "I'm with Corriwave already") is fine."""
    patterns = [rf"\b(?:this is|i[’']m|i am|it[’']s|it is|my name is|name[’']s|speaking,?)\s+{_BETWEEN}{re.escape(name)}\b" for name in identity.people]
    patterns += [rf"\b(?:this is|i[’']m (?:calling )?from|i am (?:calling )?from|we[’']re (?:calling )?from|we are (?:calling )?from)\s+{re.escape(name)}\b" for name in identity.companies]
    for pattern in patterns:
        if found := re.search(pattern, text, re.IGNORECASE):
            return found.group(0)
    return None


def customer_slips(turns: Sequence[Turn]) -> list[bool]:
    """Per customer turn of a call: does it read like the seller, or say it is the caller (by the
    names the salesman gave before it)? What the report counts as role inversion."""
    slips = []
    for i, turn in enumerate(turns):
        if turn.role == "customer":
            identity = caller_identity(t.text for t in turns[:i] if t.role == "salesman")
            slips.append(looks_like_salesman(turn.text) or claims_caller(turn.text, identity) is not None)
    return slips
