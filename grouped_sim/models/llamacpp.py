"""Local GGUF models on llama.cpp (the `xllamacpp` wheel: llama.cpp's server, in-process).

One server per model file (and LoRA adapters) in a process, shared by every role and dialogue that
names it: concurrent calls become parallel slots that llama.cpp batches on its side (continuous
batching), and each slot keeps the prompt it last read, so the next turn of the same call reads
only its new tokens (prompt caching by longest common prefix; llama.cpp also keeps recently
evicted prefixes in RAM). Calls block in C++ with the GIL released, so a thread per call is all a
caller needs for parallelism.

Exact repeats: a request's seed fixes its sampling, but llama.cpp computes a prompt read in one
batch and the same prompt partly restored from its cache with different arithmetic, so the same
seed gives the same text only when the cache is in the same state (the same run again from a
fresh process, one call at a time). `cache_prompt: false` in the runtime config trades the cache
for text that depends only on prompt and seed (what llama.cpp's maintainers advise), at the
price of reading every prompt whole.
"""

from __future__ import annotations

import hashlib
import os
import queue
import tempfile
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.messages import BaseMessage
from pydantic import BaseModel, ConfigDict, Field

from grouped_sim.errors import ModelSpecError
from grouped_sim.models.base import PromptForm, SamplingChatModel, chat_dicts, row_seed
from grouped_sim.models.cancel import check_cancelled
from grouped_sim.models.embedded import embedded_path, find_embedded

INSTALL_HINT = "pip install xllamacpp (a grouped-sim dependency; make install does this)"
GGUF_MAGIC = b"GGUF"


class LlamaRequestError(RuntimeError):
    """llama.cpp refused or failed a request; `kind` is its error type (e.g. exceed_context_size_error)."""

    def __init__(self, message: str, kind: str = "") -> None:
        super().__init__(message)
        self.kind = kind


class ServerSettings(BaseModel):
    """What a server is started with. Two models with the same settings share one server."""

    model_config = ConfigDict(frozen=True)

    model_path: str
    loras: tuple[str, ...] = ()
    slots: int = Field(8, ge=1, le=256, description="parallel sequences (continuous batching)")
    context: int = Field(16384, ge=256, description="tokens of KV cache shared by all slots")
    threads: int = Field(0, ge=0, description="CPU threads; 0: one per core")
    keep_idle_prompts: bool = Field(
        False,
        description="an idle slot keeps its prompt in the KV cache for the next request (the judge's reader, whose "
        "groups of requests must not evict each other); off, llama.cpp moves idle slots' prompts out, so a "
        "simulated call never starts from another call's cached prefix and a resumed run repeats a fresh one word for word",
    )


def resolve_gguf(model: str) -> tuple[Path, PromptForm]:
    """The GGUF file a `llamacpp:` spec names and the form to address it in, or a clear error."""
    embedded = find_embedded(model)
    if embedded is not None:
        return embedded_path(embedded), PromptForm(embedded.form)
    path = Path(model).expanduser()
    if not path.is_file():
        names = ", ".join(m for e in _embedded_names() for m in e)
        raise ModelSpecError(f"llamacpp model {model!r}: no such file, and not an embedded model ({names}); grouped-sim never downloads weights")
    check_gguf(path)
    return path.resolve(), PromptForm.chat


def _embedded_names() -> list[list[str]]:
    from grouped_sim.models.embedded import embedded_models

    return [[m.name, *m.aliases] for m in embedded_models().values()]


def check_gguf(path: Path, what: str = "model") -> None:
    """A file that does not start like a GGUF file is refused before llama.cpp sees it."""
    with path.open("rb") as handle:
        head = handle.read(4)
    if head != GGUF_MAGIC:
        raise ModelSpecError(f"{path}: not a GGUF {what} (it starts with {head!r}, a GGUF file with b'GGUF')")


class LlamaServer:
    """One llama.cpp server in this process; `chat` and `complete` take OpenAI-style bodies."""

    def __init__(self, settings: ServerSettings) -> None:
        try:
            import xllamacpp
        except ImportError as exc:
            raise ModelSpecError(f"llamacpp: models need xllamacpp: {INSTALL_HINT}") from exc
        self.settings = settings
        params = xllamacpp.CommonParams()
        params.model.path = settings.model_path
        params.n_parallel = settings.slots
        params.n_ctx = settings.context
        params.kv_unified = True  # one KV pool: a long call can use what short ones leave free
        params.cache_idle_slots = not settings.keep_idle_prompts
        threads = settings.threads or os.cpu_count() or 1
        params.cpuparams.n_threads = threads
        params.cpuparams_batch.n_threads = threads
        params.warmup = False
        params.verbosity = -1
        if settings.loras:
            params.lora_adapters = [xllamacpp.CommonAdapterLoraInfo(path, 1.0) for path in settings.loras]
        try:
            self._server = xllamacpp.Server(params)
        except RuntimeError as exc:
            adapters = f" with adapter(s) {', '.join(settings.loras)}" if settings.loras else ""
            raise ModelSpecError(
                f"{settings.model_path}{adapters}: llama.cpp could not load it (a damaged or truncated GGUF, an architecture "
                f"this llama.cpp does not know, an adapter made for another base model, or too little memory for context {settings.context})"
            ) from exc

    recorded: list[tuple[str, dict[str, Any], dict[str, Any]]] | None = None
    """Set to a list to keep every (kind, request, answer) this server serves: the speed benchmark
    replays a run's own requests against a bare server to compare throughputs."""

    def _call(self, method: Any, body: dict[str, Any]) -> dict[str, Any]:
        result = method(body)
        if self.recorded is not None:
            self.recorded.append(("chat" if method == self._server.handle_chat_completions else "complete", body, result))
        error = result.get("error") if isinstance(result, dict) else None
        if error:
            kind = str(error.get("type", "")) if isinstance(error, dict) else ""
            message = str(error.get("message", error)) if isinstance(error, dict) else str(error)
            if kind == "exceed_context_size_error":
                message += f" (model {Path(self.settings.model_path).name}; raise runtime.llama.context in the config, or shorten the prompt)"
            raise LlamaRequestError(f"llama.cpp: {message}", kind)
        return result

    def chat(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._call(self._server.handle_chat_completions, body)

    def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._call(self._server.handle_completions, body)


_SERVERS: dict[ServerSettings, LlamaServer] = {}
_SERVERS_LOCK = threading.Lock()


def llama_server(settings: ServerSettings) -> LlamaServer:
    """The process's server for these settings, started on first use."""
    with _SERVERS_LOCK:
        server = _SERVERS.get(settings)
        if server is None:
            server = _SERVERS[settings] = LlamaServer(settings)
        return server


def resolve_adapter(adapter: str | None) -> tuple[str, ...]:
    """The GGUF LoRA file of a `llamacpp:MODEL+ADAPTER` spec. A PEFT folder (what training writes,
    the shipped customer-sft included) is refused with the command that converts it."""
    if not adapter:
        return ()
    from grouped_sim.models.lora_gguf import CONFIG_FILE, adapter_folder

    path = adapter_folder(adapter)
    if not path.is_file():
        if (path / CONFIG_FILE).is_file():
            hint = f" (a PEFT LoRA folder: convert it with grouped-sim train export-lora --adapter {adapter} --out adapter.gguf)"
        else:
            hint = " (a folder: convert a PEFT LoRA folder with grouped-sim train export-lora)" if path.is_dir() else ""
        raise ModelSpecError(f"llamacpp adapter {adapter!r}: no such GGUF file{hint}")
    check_gguf(path, "LoRA adapter")
    return (str(path.resolve()),)


class LlamaCppChatModel(SamplingChatModel):
    """A chat model on a shared in-process llama.cpp server (see the module docstring).

    Declares the form its registry entry gives (both embedded models: transcript, which plays a
    customer far better; docs/customer-model.md); a path is addressed in chat form through the chat
    template inside the GGUF.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model_name: str = "default"
    caches_prefix: bool = True
    slots: int = Field(8, description="see config.LlamaServerParams")
    context: int = 16384
    threads: int = 0
    cache_prompt: bool = True
    server: Any = Field(default=None, exclude=True)
    model_path: str = ""

    def model_post_init(self, __context: Any) -> None:
        path, form = resolve_gguf(self.model_name)
        self.model_path = str(path)
        self.prompt_form = form
        if self.server is None:
            settings = ServerSettings(model_path=self.model_path, loras=resolve_adapter(self.adapter), slots=self.slots, context=self.context, threads=self.threads)
            self.server = llama_server(settings)

    @property
    def _llm_type(self) -> str:
        return "grouped-sim-llamacpp"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": self.model_path, "adapter": self.adapter, "temperature": self.temperature, "top_p": self.top_p}

    def engine_description(self) -> str:
        return f"llama.cpp ({Path(self.model_path).name}, {self.slots} slots{', prompt cache' if self.cache_prompt else ''})"

    def sampling_body(self, seed: int | None, stop: list[str] | None, max_new_tokens: int | None) -> dict[str, Any]:
        """The sampling part of a request: this model's settings, the call's budget, seed and stops."""
        body: dict[str, Any] = {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "repeat_penalty": self.repetition_penalty,
            "max_tokens": self.budget(max_new_tokens),
            "cache_prompt": self.cache_prompt,
        }
        if seed is not None:
            body["seed"] = seed % (2**32 - 1)  # llama.cpp seeds are uint32; 2**32 - 1 means "random"
        if stop:
            body["stop"] = list(stop)
        return body

    def _many(self, call: Any, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send requests at once (they share the server's slots), answers in order."""
        check_cancelled()
        if len(bodies) == 1:
            results = [call(bodies[0])]
        else:
            with ThreadPoolExecutor(max_workers=min(len(bodies), self.slots)) as pool:
                results = list(pool.map(call, bodies))
        check_cancelled()
        return results

    def generate_texts(self, prompts: list[str], stop: list[str] | None = None, seed: int | None = None, max_new_tokens: int | None = None) -> list[str]:
        """Continuations of raw prompts (the transcript form), row i seeded seed + i."""
        bodies = [{"prompt": p, **self.sampling_body(row_seed(seed, i), stop, max_new_tokens)} for i, p in enumerate(prompts)]
        return [str(r["choices"][0]["text"]) for r in self._many(self.server.complete, bodies)]

    def generate_chats(self, conversations: list[list[BaseMessage]], stop: list[str] | None = None, seed: int | None = None, max_new_tokens: int | None = None) -> list[str]:
        """Replies in the model's chat template, row i seeded seed + i."""
        bodies = [{"messages": chat_dicts(c), **self.sampling_body(row_seed(seed, i), stop, max_new_tokens)} for i, c in enumerate(conversations)]
        return [str(r["choices"][0]["message"].get("content") or "") for r in self._many(self.server.chat, bodies)]

    def next_token_logprobs(self, conversations: list[list[BaseMessage]], top_n: int = 20) -> list[dict[str, float]]:
        """The model's log-probabilities of its first reply token, top `top_n`, per conversation:
        how it reads a question it answers in one word (a judge's verdict, a customer's next move)."""
        body = {"max_tokens": 1, "temperature": 0.0, "logprobs": True, "top_logprobs": top_n, "cache_prompt": self.cache_prompt}
        results = self._many(self.server.chat, [{"messages": chat_dicts(c), **body} for c in conversations])
        return [{t["token"]: float(t["logprob"]) for t in r["choices"][0]["logprobs"]["content"][0]["top_logprobs"]} for r in results]


PREFIX_KEY = 400  # prompts that share their first characters are read in order by one worker
TOP_N = 64  # candidates llama.cpp reports per position; a token outside them is floored below the last


class ContinuationReader:
    """The log-probability of each token of given continuations after given prompts, on llama.cpp.

    llama.cpp's server reports log-probabilities of the tokens it generates, not of a prompt. So the
    continuation is read one token at a time: the prompt plus the continuation's first j tokens is
    sent for one greedy token, and the log-probability of the continuation's token j is read from
    the raw (pre-sampling) distribution llama.cpp reports. Each request extends the one before it,
    so the slot's cached prefix makes it cost one token; a token the model ranks below its top 64
    gets the 64th log-probability less one (gibberish is floored, not skipped). Continuations are
    tokenized by the GGUF's own vocabulary (transformers reads it from the file).
    """

    def __init__(self, model: str = "default", slots: int = 8, context: int = 16384, threads: int = 0, max_tokens: int = 32, adapter: str | None = None) -> None:
        path, _ = resolve_gguf(model)
        self.model_path = str(path)
        settings = ServerSettings(model_path=self.model_path, loras=resolve_adapter(adapter), slots=slots, context=context, threads=threads, keep_idle_prompts=True)
        self.server = llama_server(settings)
        self.tokenizer = gguf_tokenizer(self.model_path)
        self.slots = slots
        self.max_tokens = max_tokens

    def _one(self, prompt: str, continuation: str, slot: int = -1) -> np.ndarray:
        prompt_ids = self.tokenizer.encode(prompt, add_special_tokens=False).ids
        ids = self.tokenizer.encode(continuation, add_special_tokens=False).ids[: self.max_tokens]
        out = np.empty(len(ids))
        for j, token in enumerate(ids):
            check_cancelled()
            result = self.server.complete({"prompt": prompt_ids + ids[:j], "max_tokens": 1, "temperature": 0.0, "n_probs": TOP_N, "post_sampling_probs": False, "cache_prompt": True, "id_slot": slot})
            top = {int(t["id"]): float(t["logprob"]) for t in result["choices"][0]["logprobs"]["content"][0]["top_logprobs"]}
            out[j] = top.get(token, min(top.values()) - 1.0)
        return out

    def logprobs(self, prompts: Sequence[str], continuations: Sequence[str]) -> list[np.ndarray]:
        """Per-token log-probabilities of each continuation after its prompt.

        Pairs whose prompts begin alike (the growing contexts of one call, or one anchor) are read
        in order by one worker, so each extends the prefix its slot already holds; groups run in
        parallel slots."""
        if len(prompts) != len(continuations):
            raise ValueError("one prompt per continuation")
        groups: dict[str, list[int]] = {}
        for k, prompt in enumerate(prompts):
            groups.setdefault(prompt[:PREFIX_KEY], []).append(k)
        out: list[np.ndarray] = [np.empty(0)] * len(prompts)

        pending: queue.SimpleQueue[list[int]] = queue.SimpleQueue()
        for indices in sorted(groups.values(), key=len, reverse=True):
            pending.put(indices)

        def worker(slot: int) -> None:
            while True:
                try:
                    indices = pending.get_nowait()
                except queue.Empty:
                    return
                for k in indices:
                    out[k] = self._one(prompts[k], continuations[k], slot)

        with ThreadPoolExecutor(max_workers=self.slots) as pool:
            list(pool.map(worker, range(min(self.slots, len(groups)))))
        return out


_TOKENIZERS: dict[str, Any] = {}


def gguf_tokenizer(model_path: str) -> Any:
    """The GGUF's own tokenizer as a `tokenizers.Tokenizer`, loaded once per file.

    transformers converts a GGUF's vocabulary in about 20 s on 2 cores, so the converted
    tokenizer.json is kept in the cache folder (keyed by the file's path, size and time) and read
    with the `tokenizers` library after that, in well under a second."""
    with _SERVERS_LOCK:
        if model_path not in _TOKENIZERS:
            from tokenizers import Tokenizer

            path = Path(model_path)
            saved = _tokenizer_folder(path)
            if not (saved / "tokenizer.json").is_file():
                from transformers import AutoTokenizer
                from transformers.utils import logging as hf_logging

                hf_logging.set_verbosity_error()
                _save_quietly(AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name), saved)
            if (saved / "tokenizer.json").is_file():
                _TOKENIZERS[model_path] = Tokenizer.from_file(str(saved / "tokenizer.json"))
            else:  # a cache we cannot write: convert again next time
                from transformers import AutoTokenizer

                _TOKENIZERS[model_path] = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name).backend_tokenizer
        return _TOKENIZERS[model_path]


def _tokenizer_folder(path: Path) -> Path:
    from grouped_sim.io import cache_root

    stat = path.stat()
    key = hashlib.sha256(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    return cache_root() / "tokenizers" / key


def _save_quietly(tokenizer: Any, folder: Path) -> None:
    """Write the converted tokenizer whole or not at all (a temporary folder renamed into place);
    a read-only cache only costs the conversion again next time."""
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder.parent, ignore_cleanup_errors=True) as tmp:
            tokenizer.save_pretrained(tmp)
            os.replace(tmp, folder)
    except OSError:
        pass
