"""What a chat backend declares about itself: the prompt form it takes.

Small local models continue a raw transcript far more faithfully than they follow chat
instructions, so our local backends declare `PromptForm.transcript`; every other langchain chat
model (OpenAI-compatible clients, test fakes) takes the chat form.
"""

from __future__ import annotations

from enum import StrEnum

from langchain_core.language_models import BaseChatModel


class PromptForm(StrEnum):
    transcript = "transcript"  # raw text the model continues (pass raw_prompt=True, stop at newline)
    chat = "chat"  # chat messages through the model's chat template or API


def prompt_form_of(model: BaseChatModel) -> PromptForm:
    """The prompt form `model` declares (chat for any model that is not one of our backends)."""
    from grouped_sim.models.limits import LimitedChatModel
    from grouped_sim.models.local import TransformersChatModel
    from grouped_sim.models.vllm_engine import VLLMChatModel

    if isinstance(model, (TransformersChatModel, VLLMChatModel, LimitedChatModel)) and model.supports_raw_prompt:
        return PromptForm.transcript
    return PromptForm.chat
