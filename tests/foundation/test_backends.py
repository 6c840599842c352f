"""Our chat-model backends: the declared prompt form, the typed batch API, the vLLM calls, the limiter.

vLLM cannot run here (no GPU), so a stand-in `vllm` module records the calls: the backend must use
vLLM's documented offline API (LLM.generate(prompts, sampling_params), LLM.chat(conversations,
sampling_params), one SamplingParams per prompt with its own seed). The local backend's real
generations are covered by the slow tests and the fixed-seed check in the commit history.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatResult

from grouped_sim.config import RuntimeParams
from grouped_sim.models.base import PromptForm, prompt_form_of
from grouped_sim.models.limits import LimitedChatModel, limit_model


@dataclass
class _Out:
    text: str


@dataclass
class _RequestOutput:
    outputs: list[_Out]


@dataclass
class FakeLLM:
    """Records what the backend asks of vLLM's LLM and answers each prompt with its index."""

    calls: list[tuple[str, Any, Any, dict]] = field(default_factory=list)

    def generate(self, prompts, sampling_params=None, **kwargs):
        self.calls.append(("generate", prompts, sampling_params, kwargs))
        return [_RequestOutput([_Out(f" reply {i} ")]) for i in range(len(prompts))]

    def chat(self, messages, sampling_params=None, **kwargs):
        self.calls.append(("chat", messages, sampling_params, kwargs))
        return [_RequestOutput([_Out(f" chat {i} ")]) for i in range(len(messages))]


@pytest.fixture()
def vllm_model(monkeypatch):
    sampling = types.SimpleNamespace
    fake = types.ModuleType("vllm")
    fake.SamplingParams = lambda **kw: sampling(**kw)  # type: ignore[attr-defined]
    fake.LLM = lambda model: FakeLLM()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "vllm", fake)
    from grouped_sim.models import vllm_engine

    monkeypatch.setattr(vllm_engine, "_ENGINES", {})
    return vllm_engine.VLLMChatModel(model_name="some/model", temperature=0.7, top_p=0.9, max_new_tokens=32)


def test_vllm_batch_of_raw_prompts_uses_llm_generate_with_one_seeded_params_per_prompt(vllm_model) -> None:
    assert prompt_form_of(vllm_model) is PromptForm.transcript
    texts = vllm_model.generate_texts(["Customer:", "Salesman: hi\nCustomer:"], stop=["\n"], seed=10, max_new_tokens=8)
    assert texts == ["reply 0", "reply 1"]
    ((kind, prompts, params, kwargs),) = vllm_model.engine.calls
    assert kind == "generate" and prompts == ["Customer:", "Salesman: hi\nCustomer:"] and kwargs == {"use_tqdm": False}
    assert [p.seed for p in params] == [10, 11]
    assert all((p.temperature, p.top_p, p.max_tokens, p.stop, p.repetition_penalty) == (0.7, 0.9, 8, ["\n"], 1.05) for p in params)


def test_vllm_invoke_chooses_generate_or_chat_by_the_call(vllm_model) -> None:
    raw = vllm_model.invoke([HumanMessage(content="Salesman: hi"), HumanMessage(content="Customer:")], raw_prompt=True, seed=3)
    assert raw.content == "reply 0"
    chat = vllm_model.invoke([SystemMessage(content="be brief"), HumanMessage(content="hello"), AIMessage(content="hi")], seed=4)
    assert chat.content == "chat 0"
    (_, prompts, params, _), (kind, conversations, chat_params, _) = vllm_model.engine.calls
    assert prompts == ["Salesman: hi\n\nCustomer:"] and params[0].seed == 3 and params[0].max_tokens == 32
    assert kind == "chat" and chat_params[0].seed == 4
    assert conversations == [[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi"}]]


def test_other_chat_models_are_addressed_in_chat_form() -> None:
    from grouped_sim.models import build_chat_model

    assert prompt_form_of(FakeListChatModel(responses=["x"])) is PromptForm.chat
    assert prompt_form_of(build_chat_model("openai:m@http://127.0.0.1:9/v1")) is PromptForm.chat


def test_the_limiter_passes_form_and_batch_api_through(vllm_model) -> None:
    limited = limit_model(vllm_model, "vllm:some/model", RuntimeParams())
    assert isinstance(limited, LimitedChatModel) and limit_model(limited, "again", RuntimeParams()) is limited
    assert prompt_form_of(limited) is PromptForm.transcript
    assert limited.generate_texts(["a"], seed=1) == ["reply 0"]
    assert limited.generate_chats([[HumanMessage(content="a")]], seed=1) == ["chat 0"]
    assert limited.invoke([HumanMessage(content="Customer:")], raw_prompt=True, seed=2).content == "reply 0"


class _Recorder(FakeListChatModel):
    seen: list[dict] = []

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        self.seen.append(kwargs)
        return super()._generate(messages, stop, run_manager)


def test_the_limiter_over_an_api_model_is_chat_form_and_keeps_our_options_to_itself() -> None:
    inner = _Recorder(responses=["fine"])
    limited = limit_model(inner, "openai:x", RuntimeParams())
    assert prompt_form_of(limited) is PromptForm.chat
    assert limited.invoke([HumanMessage(content="hi")], seed=5, max_new_tokens=9, raw_prompt=True).content == "fine"
    assert inner.seen == [{"seed": 5}]
    with pytest.raises(TypeError, match="no batch API"):
        limited.generate_texts(["x"])


def test_the_local_model_declares_transcript_and_batches_chats_through_its_template(embedded_chat) -> None:
    assert prompt_form_of(embedded_chat) is PromptForm.transcript
    conversation = [SystemMessage(content="You are a busy shop owner."), HumanMessage(content="Hello?")]
    rendered = embedded_chat.render_prompt(conversation)
    assert rendered.startswith("<|im_start|>system\nYou are a busy shop owner.") and rendered.endswith("<|im_start|>assistant\n")
    assert embedded_chat.render_prompt(conversation, PromptForm.transcript) == "You are a busy shop owner.\n\nHello?"
    chats = embedded_chat.generate_chats([conversation], seed=7, max_new_tokens=6)
    assert chats == embedded_chat.generate_texts([rendered], seed=7, max_new_tokens=6)
    assert embedded_chat.invoke(conversation, seed=7, max_new_tokens=6).content == chats[0]


def test_a_vllm_spec_builds_the_backend_with_the_roles_sampling_settings(vllm_model) -> None:
    from grouped_sim.config import GenerationParams
    from grouped_sim.models import build_chat_model

    model = build_chat_model("vllm:some/model", GenerationParams(temperature=0.3, top_p=0.8, repetition_penalty=1.2, max_new_tokens=12))
    assert (model.model_name, model.temperature, model.top_p, model.repetition_penalty, model.max_new_tokens) == ("some/model", 0.3, 0.8, 1.2, 12)
    model.generate_texts(["x"], seed=0)
    assert model.engine.calls[0][2][0].max_tokens == 12
