"""What grouped-sim's own chat-model backends share, and how a caller learns a model's prompt form.

Two prompt forms (`PromptForm`): a small local model continues a call transcript far more
faithfully than it follows chat instructions, so callers address it in the TRANSCRIPT form (plain
text ending in "Customer:", continued as it is); instruction models and every API model are
addressed in the CHAT form (messages through the model's chat template). A model states its form;
callers ask `prompt_form_of(model)` instead of probing attributes.

- `LocalChatModel`: the contract of our own models (the local transformers model, vLLM's offline
  engine, and the limiter that wraps any model): a declared `prompt_form`, the typed batch API
  `generate_texts` / `generate_chats`, and the per-call options `seed`, `max_new_tokens` and
  `raw_prompt` (True: join the message contents as plain text, the transcript form).
- `SamplingChatModel`: a backend that samples itself (transformers, vLLM): the sampling settings
  and one way of turning a call into a batch of one.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, ChatResult


class PromptForm(StrEnum):
    """How a model wants its prompt: `transcript` (continues raw text) or `chat` (chat template)."""

    transcript = "transcript"
    chat = "chat"


def role_of(message: BaseMessage) -> str:
    """The chat-template role of a langchain message (anything unknown speaks as the user)."""
    if isinstance(message, SystemMessage):
        return "system"
    if isinstance(message, HumanMessage):
        return "user"
    if isinstance(message, AIMessage):
        return "assistant"
    return "user"


def chat_dicts(messages: list[BaseMessage]) -> list[dict[str, str]]:
    """Messages as the {role, content} dicts chat templates (and vLLM's LLM.chat) take."""
    return [{"role": role_of(m), "content": str(m.content)} for m in messages]


def joined_text(messages: list[BaseMessage]) -> str:
    """The transcript form of a call: the message contents joined by blank lines, nothing added."""
    return "\n\n".join(str(m.content) for m in messages)


def chat_result(text: str) -> ChatResult:
    return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])


def row_seed(seed: int | None, index: int) -> int | None:
    """Row i of a batch samples with seed + i, so a row's text does not depend on its neighbours."""
    return None if seed is None else seed + index


class LocalChatModel(BaseChatModel):
    """A chat model grouped-sim drives itself; see the module docstring."""

    prompt_form: PromptForm = PromptForm.transcript
    # True where the backend keeps each sequence's last prompt and reads only what follows the
    # longest common prefix (llama.cpp): prompts should then keep what is stable first and put what
    # changes every turn last.
    caches_prefix: bool = False

    def generate_texts(self, prompts: list[str], stop: list[str] | None = None, seed: int | None = None, max_new_tokens: int | None = None) -> list[str]:
        """One continuation of each raw prompt (already in its final text), row i seeded seed + i."""
        raise NotImplementedError

    def generate_chats(self, conversations: list[list[BaseMessage]], stop: list[str] | None = None, seed: int | None = None, max_new_tokens: int | None = None) -> list[str]:
        """One reply to each conversation in the model's chat template, row i seeded seed + i."""
        raise NotImplementedError

    def engine_description(self) -> str | None:
        """How this model computes its tokens, for run.json: another engine gives other text for
        the same seed. None where there is nothing of ours to record."""
        return None

    def _generate_one(self, messages: list[BaseMessage], form: PromptForm, stop: list[str] | None, seed: int | None, max_new_tokens: int | None) -> str:
        if form is PromptForm.transcript:
            return self.generate_texts([joined_text(messages)], stop, seed, max_new_tokens)[0]
        return self.generate_chats([messages], stop, seed, max_new_tokens)[0]

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        """One reply, or with `n` > 1 that many candidates in one batch (row i seeded seed + i, so
        candidate 0 is the reply a plain call with the same seed gives)."""
        form = PromptForm.transcript if kwargs.get("raw_prompt") else PromptForm.chat
        seed, budget, n = kwargs.get("seed"), kwargs.get("max_new_tokens"), int(kwargs.get("n") or 1)
        if n == 1:
            return chat_result(self._generate_one(messages, form, stop, seed, budget))
        if form is PromptForm.transcript:
            texts = self.generate_texts([joined_text(messages)] * n, stop, seed, budget)
        else:
            texts = self.generate_chats([messages] * n, stop, seed, budget)
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=t)) for t in texts])


class SamplingChatModel(LocalChatModel):
    """A backend that samples itself: the settings every call uses unless the call overrides them."""

    temperature: float = 0.95
    top_p: float = 0.95
    repetition_penalty: float = 1.05
    max_new_tokens: int = 48
    adapter: str | None = None

    def budget(self, max_new_tokens: int | None) -> int:
        """The call's token budget, or the model's."""
        return max_new_tokens or self.max_new_tokens


def caches_prefix(model: BaseChatModel) -> bool:
    """Whether `model` reuses a cached prompt prefix (ours declare it; any other model: no)."""
    return model.caches_prefix if isinstance(model, LocalChatModel) else False


def engine_description_of(model: BaseChatModel) -> str | None:
    """How `model` computes its tokens where it is one of ours (see LocalChatModel), else None."""
    return model.engine_description() if isinstance(model, LocalChatModel) else None


def prompt_form_of(model: BaseChatModel) -> PromptForm:
    """The form to address `model` in: its declared one for ours, chat for any other chat model."""
    return model.prompt_form if isinstance(model, LocalChatModel) else PromptForm.chat
