"""vLLM's offline engine as a langchain-core chat model (GPU boxes; extra `grouped-sim[vllm]`).

vLLM is imported only when this model is built, so CPU installs never need it. The engine batches
whatever arrives; nothing here serialises requests in front of it.
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict, Field

from grouped_sim.errors import ModelSpecError
from grouped_sim.models.local import _role_of

_ENGINES: dict[str, Any] = {}


def _engine(model: str) -> Any:
    try:
        from vllm import LLM
    except ImportError as exc:
        raise ModelSpecError("vllm: specs need vLLM on a GPU machine: pip install 'grouped-sim[vllm]'") from exc
    if model not in _ENGINES:
        _ENGINES[model] = LLM(model=model)
    return _ENGINES[model]


class VLLMChatModel(BaseChatModel):
    """Chat through `LLM.chat`, or plain completion through `LLM.generate` with `raw_prompt=True`."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model_name: str
    temperature: float = 0.95
    top_p: float = 0.95
    repetition_penalty: float = 1.05
    max_new_tokens: int = 256
    engine: Any = Field(default=None, exclude=True)
    supports_raw_prompt: bool = True

    def model_post_init(self, __context: Any) -> None:
        if self.engine is None:
            self.engine = _engine(self.model_name)

    @property
    def _llm_type(self) -> str:
        return "grouped-sim-vllm"

    def _sampling(self, stop: list[str] | None, seed: int | None, max_new_tokens: int | None) -> Any:
        from vllm import SamplingParams

        return SamplingParams(
            temperature=self.temperature,
            top_p=self.top_p,
            repetition_penalty=self.repetition_penalty,
            max_tokens=max_new_tokens or self.max_new_tokens,
            stop=stop or None,
            seed=seed,
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        params = self._sampling(stop, kwargs.get("seed"), kwargs.get("max_new_tokens"))
        if kwargs.get("raw_prompt"):
            prompt = "\n\n".join(str(m.content) for m in messages)
            outputs = self.engine.generate([prompt], params, use_tqdm=False)
        else:
            chat = [{"role": _role_of(m), "content": str(m.content)} for m in messages]
            outputs = self.engine.chat(chat, params, use_tqdm=False)
        text = outputs[0].outputs[0].text.strip()
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])
