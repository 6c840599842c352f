"""Prompts are data: one YAML file per role in `data/prompts/`, read through one loader.

Roles: customer (simulation and D_sim), salesman (the model-backed demo salesman), manager
(guidance pieces and the LLM manager), profile (D_gen instruction, generator, robustness judge),
mining (profile extraction, stage annotation) and judge (report rubrics). The prompt version is a
hash of the files' bytes, so an edited prompt renames every dialogue it shapes and a resumed run
never mixes output of two prompt versions.
"""

from __future__ import annotations

from typing import Any, Literal

from grouped_sim.resources import load_resource, resource_digest

PromptRole = Literal["customer", "salesman", "manager", "profile", "mining", "judge"]
PROMPT_ROLES: tuple[PromptRole, ...] = ("customer", "salesman", "manager", "profile", "mining", "judge")


def _relpath(role: str) -> str:
    if role not in PROMPT_ROLES:
        raise KeyError(f"no prompt file for role {role!r}; roles: {', '.join(PROMPT_ROLES)}")
    return f"data/prompts/{role}.yaml"


def prompt(role: PromptRole) -> dict[str, Any]:
    """The prompt file of one role, parsed once per process."""
    return load_resource("grouped_sim", _relpath(role))


def prompt_version(*roles: PromptRole) -> str:
    """Hash of the named roles' prompt files (all of them when none is named)."""
    return resource_digest("grouped_sim", tuple(_relpath(r) for r in (roles or PROMPT_ROLES)))


def product_for(domain: str) -> dict[str, str]:
    """The demo salesman's product script for a domain (or the generic one)."""
    products = prompt("salesman")["products"]
    return products.get(domain, products["default"])
