"""Prompts are data: they live in `data/prompts.yaml`, loaded once, versioned for dialogue ids."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any

import yaml


@lru_cache(maxsize=1)
def prompts() -> dict[str, Any]:
    text = resources.files("grouped_sim").joinpath("data/prompts.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def prompt_version() -> str:
    return str(prompts()["version"])


def product_for(domain: str) -> dict[str, str]:
    products = prompts()["products"]
    return products.get(domain, products["default"])
