"""Model specs and config files: one string per model role, clear errors for the rest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grouped_sim.config import DEFAULT_CUSTOMER_SPEC, OLD_CUSTOMER_SPEC, SimulationConfig, load_config
from grouped_sim.errors import InputError, ModelSpecError
from grouped_sim.models import build_chat_model
from grouped_sim.models.spec import parse_spec


def test_spec_forms_parse() -> None:
    assert parse_spec("hf:smollm2").is_embedded
    local = parse_spec("hf:/models/base+/adapters/a1")
    assert (local.backend, local.model, local.adapter) == ("hf", "/models/base", "/adapters/a1")
    remote = parse_spec("openai:qwen2.5-7b@http://127.0.0.1:8000/v1")
    assert (remote.backend, remote.model, remote.base_url) == ("openai", "qwen2.5-7b", "http://127.0.0.1:8000/v1")
    assert parse_spec("vllm:Qwen/Qwen2.5-7B-Instruct").model == "Qwen/Qwen2.5-7B-Instruct"


def test_default_customer_is_the_pinned_embedded_1_5b() -> None:
    """Every role defaults to a model the package can find offline and check by hash."""
    from grouped_sim.models.embedded import find_embedded

    spec = parse_spec(DEFAULT_CUSTOMER_SPEC)
    model = find_embedded(spec.model)
    assert spec.backend == "llamacpp" and model is not None
    assert model.size == 1117320768 and model.sha256.startswith("cc324af0") and model.form == "transcript"


def test_the_old_customer_is_the_shipped_trained_adapter() -> None:
    """The package still carries the 135M adapter (for comparisons), and says how it was made."""
    spec = parse_spec(OLD_CUSTOMER_SPEC)
    assert spec.is_embedded and spec.adapter
    folder = Path(spec.adapter)
    assert (folder / "adapter_config.json").is_file() and (folder / "adapter_model.safetensors").is_file()
    made = json.loads((folder / "training.json").read_text())
    assert made["stage"] == "sft" and made["steps"] > 0 and made["heldout_dialogues"]
    assert made["last_loss"] < made["first_loss"]


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("smollm2", "missing backend prefix"),
        ("gguf:model", "unknown backend 'gguf'"),
        ("hf:", "nothing after"),
        ("openai:gpt-4o", "MODEL@BASE_URL"),
        ("openai:gpt@localhost:8000", "must start with http"),
    ],
)
def test_bad_specs_say_what_is_accepted(spec: str, words: str) -> None:
    with pytest.raises(ModelSpecError, match=words):
        parse_spec(spec)


def test_missing_local_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelSpecError, match="never downloads"):
        build_chat_model(f"hf:{tmp_path / 'absent'}")


def test_vllm_spec_without_vllm_says_what_to_install() -> None:
    try:
        import vllm  # noqa: F401
    except ImportError:
        with pytest.raises(ModelSpecError, match=r"grouped-sim\[vllm\]"):
            build_chat_model("vllm:some/model")
    else:  # on a GPU box with vLLM installed the import succeeds; the spec then builds lazily
        assert parse_spec("vllm:some/model").backend == "vllm"


def test_openai_spec_builds_a_chat_model_without_contacting_the_server() -> None:
    model = build_chat_model("openai:my-model@http://127.0.0.1:9/v1")
    assert model.model_name == "my-model"


def test_config_file_errors_name_the_field(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("max_turns: 5\ncustomer:\n  temperature: 7\n")
    with pytest.raises(InputError, match=r"c.yaml: field 'customer.temperature'"):
        load_config(path)
    path.write_text("max_turns: 5\nmode: no-sop\n")
    config = load_config(path)
    assert config.max_turns == 5 and config.mode.value == "no-sop"
    assert config.digest() != SimulationConfig().digest()


def test_loading_the_embedded_model_prints_no_dequantising_bar(capfd) -> None:
    """transformers' GGUF bar ignores its own switch; left alone it floods demo and CLI output."""
    from grouped_sim.models.local import LoadedModel, resolve_weights

    LoadedModel(resolve_weights("smollm2"))
    captured = capfd.readouterr()
    assert "de-quantizing" not in captured.err + captured.out
