"""Cheap detection of a customer turn that talks like the seller (role inversion).

Small chat models drift into the salesperson's role; the simulator regenerates such replies and
the metrics count them. A regex pass is the pre-filter; a judge model can confirm later.
"""

from __future__ import annotations

import re

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
