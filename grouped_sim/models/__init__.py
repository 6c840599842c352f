"""Build a langchain-core chat model for any role from a spec string (see `spec.py`)."""

from __future__ import annotations

import os

from langchain_core.language_models import BaseChatModel

from grouped_sim.config import GenerationParams, RuntimeParams
from grouped_sim.errors import ModelSpecError
from grouped_sim.models.spec import ModelSpec, parse_spec

API_KEY_VARS = ("GROUPED_SIM_API_KEY", "OPENAI_API_KEY")

__all__ = ["ModelSpec", "parse_spec", "build_chat_model", "api_key_from_env"]


def api_key_from_env() -> str:
    """Hosted APIs need a key; local OpenAI-compatible servers (vLLM, TGI) accept any string."""
    for var in API_KEY_VARS:
        if os.environ.get(var):
            return os.environ[var]
    return "not-needed"


def build_chat_model(spec: str | ModelSpec, params: GenerationParams | None = None, runtime: RuntimeParams | None = None) -> BaseChatModel:
    """A chat model for `spec`, configured with the role's sampling settings (and, for a local
    llama.cpp model, the run's server settings: slots, context, threads, prompt cache)."""
    parsed = parse_spec(spec) if isinstance(spec, str) else spec
    params = params or GenerationParams()
    sampling = params.model_dump(include=set(GenerationParams.model_fields))
    if parsed.backend == "llamacpp":
        from grouped_sim.models.llamacpp import LlamaCppChatModel

        server = (runtime or RuntimeParams()).llama
        return LlamaCppChatModel(model_name=parsed.model, adapter=parsed.adapter, **server.model_dump(), **sampling)
    if parsed.backend == "hf":
        from grouped_sim.models.local import TransformersChatModel

        # Our backends take the role's sampling settings (GenerationParams) field for field.
        return TransformersChatModel(model_name=parsed.model, adapter=parsed.adapter, **sampling)
    if parsed.backend == "openai":
        try:
            from langchain_openai import ChatOpenAI
        except ImportError as exc:  # pragma: no cover - a core dependency
            raise ModelSpecError("openai: specs need langchain-openai: pip install langchain-openai") from exc
        return ChatOpenAI(
            model=parsed.model,
            base_url=parsed.base_url,
            api_key=api_key_from_env(),
            temperature=params.temperature,
            top_p=params.top_p,
            max_tokens=params.max_new_tokens,
            max_retries=2,
            timeout=120,
        )
    if parsed.backend == "vllm":
        from grouped_sim.models.vllm_engine import VLLMChatModel

        return VLLMChatModel(model_name=parsed.model, **sampling)
    raise ModelSpecError(f"unknown backend {parsed.backend!r}")  # pragma: no cover - parse_spec guards this
