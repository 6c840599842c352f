"""vLLM's offline engine as a langchain-core chat model (GPU boxes; extra `grouped-sim[vllm]`).

vLLM is imported only when this model is built, so CPU installs never need it. The engine batches
whatever arrives; nothing here serialises requests in front of it. It uses vLLM's documented
offline API only: `LLM(model=...)`, `LLM.generate(prompts, sampling_params)` for raw text and
`LLM.chat(conversations, sampling_params)` for the chat template, with one `SamplingParams` per
prompt (a list as long as the prompts), each carrying its own seed.
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import BaseMessage
from pydantic import ConfigDict, Field

from grouped_sim.errors import ModelSpecError
from grouped_sim.models.base import SamplingChatModel, chat_dicts, row_seed

_ENGINES: dict[str, Any] = {}


def _engine(model: str) -> Any:
    try:
        from vllm import LLM
    except ImportError as exc:
        raise ModelSpecError("vllm: specs need vLLM on a GPU machine: pip install 'grouped-sim[vllm]'") from exc
    if model not in _ENGINES:
        _ENGINES[model] = LLM(model=model)
    return _ENGINES[model]


class VLLMChatModel(SamplingChatModel):
    """Declares the transcript form like the local model; chat through `LLM.chat`, raw text through `LLM.generate`."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model_name: str
    max_new_tokens: int = 256
    engine: Any = Field(default=None, exclude=True)

    def model_post_init(self, __context: Any) -> None:
        if self.adapter:
            raise ModelSpecError("vllm: LoRA adapters are not supported by this backend; use hf:BASE+ADAPTER")
        if self.engine is None:
            self.engine = _engine(self.model_name)

    @property
    def _llm_type(self) -> str:
        return "grouped-sim-vllm"

    def _sampling(self, n: int, stop: list[str] | None, seed: int | None, max_new_tokens: int | None) -> list[Any]:
        """One SamplingParams per prompt: row i gets seed + i."""
        from vllm import SamplingParams

        return [
            SamplingParams(
                temperature=self.temperature,
                top_p=self.top_p,
                repetition_penalty=self.repetition_penalty,
                max_tokens=self.budget(max_new_tokens),
                stop=stop or None,
                seed=row_seed(seed, i),
            )
            for i in range(n)
        ]

    def generate_texts(self, prompts: list[str], stop: list[str] | None = None, seed: int | None = None, max_new_tokens: int | None = None) -> list[str]:
        outputs = self.engine.generate(list(prompts), self._sampling(len(prompts), stop, seed, max_new_tokens), use_tqdm=False)
        return [o.outputs[0].text.strip() for o in outputs]

    def generate_chats(self, conversations: list[list[BaseMessage]], stop: list[str] | None = None, seed: int | None = None, max_new_tokens: int | None = None) -> list[str]:
        chats = [chat_dicts(c) for c in conversations]
        outputs = self.engine.chat(chats, self._sampling(len(chats), stop, seed, max_new_tokens), use_tqdm=False)
        return [o.outputs[0].text.strip() for o in outputs]
