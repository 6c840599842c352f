"""A `train profile-sft` adapter is served exactly the prompt it was trained on (the D_gen instruction).

A scripted stand-in for the adapter model records what the generator sends; no training needed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from langchain_core.messages import BaseMessage

from grouped_sim.models.base import PromptForm, SamplingChatModel, chat_dicts
from grouped_sim.prompts import prompt_version
from grouped_sim.profiles.generator import CardPrompter, ChatPrompter, DGenPrompter, ProfileGenerator, load_examples, prompter_for
from grouped_sim.profiles.spec import ProfileConstraints
from grouped_sim.schemas import Dialogue, Profile
from grouped_sim.sop_db.datasets import d_gen_record

C = ProfileConstraints(archetype="price-sensitive", tier="hard", domain="broadband", age_min=30, age_max=40, age=35, role="night-shift nurse", must_have=["has two kids"])
ANSWER = {
    # what the model writes for fields the constraints fix is overruled by them
    "archetype": "status-quo", "age": 71, "domain": "insurance", "role": "retired pilot", "buy_propensity": 0.9,
    "summary": "A night-shift nurse who watches every pound on the household bills.",
    "business_context": "pays 45 a month for slow internet",
    "pain_points": ["the bill keeps rising", "buffering"],
    "decision_factors": ["monthly price", "no contract"],
    "communication_style": "tired, short answers",
}


class ScriptedAdapter(SamplingChatModel):
    """Stands in for hf:smollm2+ADAPTER: records every conversation, answers with ANSWER as JSON."""

    seen: list[list[BaseMessage]] = []

    @property
    def _llm_type(self) -> str:
        return "scripted-adapter"

    def generate_chats(self, conversations, stop=None, seed=None, max_new_tokens=None):
        self.seen.extend(conversations)
        return ["Here you go:\n```json\n" + json.dumps(ANSWER) + "\n```" for _ in conversations]

    def generate_texts(self, prompts, stop=None, seed=None, max_new_tokens=None):
        raise AssertionError("a profile-sft adapter must not be prompted with raw card text")


def _adapter_dir(tmp_path: Path, **training: object) -> Path:
    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "training.json").write_text(json.dumps(training))
    return folder


def test_the_adapter_gets_the_d_gen_instruction_of_its_constraints(tmp_path: Path) -> None:
    adapter = _adapter_dir(tmp_path, stage="profile-sft", prompt="d_gen_instruction", prompt_version=prompt_version("profile"))
    model = ScriptedAdapter(adapter=str(adapter))
    generator = ProfileGenerator(model, load_examples())
    assert isinstance(generator.prompter, DGenPrompter)
    produced, report = generator.generate([C])

    # the text sent equals D_gen's prompt for a real profile with these constraints
    same = Profile(summary="anyone", archetype=C.archetype, age=C.age, role=C.role, domain=C.domain)
    record = d_gen_record(Dialogue(id="d", domain="broadband", turns=[{"role": "salesman", "text": "hi"}, {"role": "customer", "text": "yes"}], profile=same))
    assert [chat_dicts(c) for c in model.seen] == [record["prompt"]]
    assert "archetype price-sensitive; domain broadband; age 30-39; role: night-shift nurse" in record["instruction"]

    # the JSON answer is parsed; the constrained fields come from the constraints, not from it
    assert report.unparsed == 0 and len(produced) == 1, report
    profile = produced[0].profile
    assert (profile.archetype, profile.age, profile.domain, profile.role) == ("price-sensitive", 35, "broadband", "night-shift nurse")
    assert (profile.difficulty, profile.buy_propensity, profile.traits) == ("hard", 0.2, ["has two kids"])
    assert profile.pain_points == ["the bill keeps rising", "buffering"]


@pytest.mark.parametrize(
    ("training", "form", "expected"),
    [
        (None, PromptForm.transcript, CardPrompter),  # untuned local model: the card
        ({"stage": "sft"}, PromptForm.transcript, CardPrompter),  # a customer adapter: not trained on D_gen
        (None, PromptForm.chat, ChatPrompter),
        ({"stage": "profile-sft", "prompt": "d_gen_instruction"}, PromptForm.transcript, DGenPrompter),
    ],
)
def test_only_a_d_gen_adapter_gets_the_d_gen_prompt(tmp_path: Path, training: dict | None, form: PromptForm, expected: type) -> None:
    adapter = str(_adapter_dir(tmp_path, **training)) if training is not None else None
    assert prompter_for(ScriptedAdapter(adapter=adapter, prompt_form=form)) is expected
