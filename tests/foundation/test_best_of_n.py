"""Best-of-N at inference time: the customer draws N candidates, the picker chooses among the ones
the role guard keeps, and N = 1 is exactly plain sampling."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import BaseMessage

from grouped_sim.config import SimulationConfig
from grouped_sim.graphs.customer import CustomerPrompt, generate_reply
from grouped_sim.models.base import LocalChatModel
from grouped_sim.schemas import CustomerAction, Profile, Turn


class SeededModel(LocalChatModel):
    """A local-form model whose reply is a function of its seed: candidate i of a batch is seed + i."""

    replies: dict[int, str]
    batches: list[int] = []

    @property
    def _llm_type(self) -> str:
        return "seeded-test-model"

    def generate_texts(self, prompts: list[str], stop: list[str] | None = None, seed: int | None = None, max_new_tokens: int | None = None) -> list[str]:
        self.batches.append(len(prompts))
        return [self.replies.get((seed or 0) + i, "fine.") for i in range(len(prompts))]

    def generate_chats(self, conversations: list[list[BaseMessage]], stop: list[str] | None = None, seed: int | None = None, max_new_tokens: int | None = None) -> list[str]:
        return self.generate_texts(["x"] * len(conversations), stop, seed, max_new_tokens)


def _inputs() -> CustomerPrompt:
    history = [Turn(role="salesman", text="Hi, this is Sam from BrightPower. Do you have a minute to talk about your energy bill?")]
    return CustomerPrompt(profile=Profile(summary="a busy café owner"), domain="energy", history=history)


REPLIES = {
    10: "What is this about?",
    11: "Would you like to hear about our fantastic new plan? Let me tell you about our offer today!",  # pitches: the guard drops it
    12: "A minute, yes. Is it cheaper than what I pay now?",
    13: "Banana hats.",
}


def test_n_candidates_come_from_one_batch_and_the_best_kept_one_is_said() -> None:
    model = SeededModel(replies=REPLIES, batches=[])
    seen: list[list[str]] = []

    def pick(history: list[Turn], replies: list[str]) -> list[float]:
        seen.append(replies)
        return [len(set(r.lower().split()) & {"minute", "cheaper", "pay"}) for r in replies]

    reply = generate_reply(model, _inputs(), CustomerAction.speak, seed=10, retries=0, n=4, pick=pick)
    assert model.batches == [4]  # one batched call
    assert reply.text == "A minute, yes. Is it cheaper than what I pay now?"
    assert all("fantastic" not in r for r in seen[0])  # a rejected candidate is never scored or said
    assert len(reply.rejected) == 1 and reply.scores is not None and reply.scores[0] == max(reply.scores)


def test_n_of_1_is_plain_sampling() -> None:
    plain = generate_reply(SeededModel(replies=REPLIES, batches=[]), _inputs(), CustomerAction.speak, seed=10, retries=0)
    one = generate_reply(SeededModel(replies=REPLIES, batches=[]), _inputs(), CustomerAction.speak, seed=10, retries=0, n=1, pick=lambda h, r: [0.0] * len(r))
    assert plain.text == one.text == "What is this about?" and one.scores is None


def test_plain_sampling_ids_ignore_the_picker_and_other_n_renames_them() -> None:
    """The default is plain sampling (the 1.5B needs no picking), so its run ids match n=1's."""
    plain = SimulationConfig.model_validate({"best_of": {"n": 1}})
    assert SimulationConfig.model_validate({"best_of": {"n": 1, "coherence_weight": 2.0}}).digest() == plain.digest()
    assert SimulationConfig.model_validate({"best_of": {"n": 4}}).digest() != plain.digest() == SimulationConfig().digest()


def test_an_api_model_gets_seeded_calls_one_by_one() -> None:
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    model: Any = FakeListChatModel(responses=["Banana hats.", "Who is this?", "Not now."])
    reply = generate_reply(model, _inputs(), CustomerAction.speak, seed=0, retries=0, n=3, pick=lambda h, r: [float("?" in x) for x in r])
    assert reply.text == "Who is this?"


def test_a_plan_from_before_best_of_resumes_with_plain_sampling_and_its_ids(tmp_path) -> None:
    import json

    from grouped_sim.graphs.batch import load_plan
    from grouped_sim.graphs.plan import RunPlan, RunSettings

    plain = SimulationConfig.model_validate({"best_of": {"n": 1}, "max_turns": 3})
    raw = json.loads(RunPlan(settings=RunSettings(), config=plain, items=[]).model_dump_json())
    del raw["config"]["best_of"]  # as plan.json files were written before best_of existed
    (tmp_path / "plan.json").write_text(json.dumps(raw), encoding="utf-8")
    loaded = load_plan(tmp_path)
    assert loaded.config.best_of.n == 1 and loaded.config.digest() == plain.digest()


def test_realism_weight_picks_with_the_shipped_realism_picker_out_of_the_box() -> None:
    from grouped_sim.app.build import build_picker
    from grouped_sim.config import BestOfParams
    from grouped_sim.data import PICKER_SCORER, REALISM_PICKER, shipped_scorer_path
    from grouped_sim.discriminator.coherence import CoherenceScorer
    from grouped_sim.discriminator.realism import RealismScorer
    from grouped_sim.transcript import transcript_text

    history = _inputs().history
    replies = ["who is this?", "A minute, yes. Is it cheaper than what I pay now?", "Banana hats."]
    pick = build_picker(BestOfParams(n=3, coherence_weight=0.5, realism_weight=2.0), None)
    assert pick is not None
    contexts = [transcript_text(history)] * len(replies)
    realism = RealismScorer(shipped_scorer_path(REALISM_PICKER)).score(contexts, replies)
    coherence = CoherenceScorer(shipped_scorer_path(PICKER_SCORER)).score(contexts, replies)
    assert pick(history, replies) == [0.5 * c + 2.0 * r for c, r in zip(coherence, realism)]


def test_best_of_with_nothing_to_pick_with_is_refused() -> None:
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="give one of them a weight"):
        SimulationConfig.model_validate({"best_of": {"n": 4, "coherence_weight": 0.0, "realism_weight": 0.0}})
    assert SimulationConfig.model_validate({"best_of": {"n": 4, "coherence_weight": 0.0, "realism_weight": 1.0}}).best_of.realism_weight == 1.0


def test_a_fitted_domain_picks_without_the_sample_corpus_realism_scorer() -> None:
    """A team's own calls (simulate --sim) must not be steered towards the sample corpus's style."""
    import pytest

    from grouped_sim.app.build import build_picker
    from grouped_sim.config import BestOfParams
    from grouped_sim.data import PICKER_SCORER, shipped_scorer_path
    from grouped_sim.discriminator.coherence import CoherenceScorer
    from grouped_sim.errors import InputError
    from grouped_sim.transcript import transcript_text

    class Fitted:  # a sim folder whose domain coherence picker is (for this test) the shipped one
        def picker_scorer(self) -> CoherenceScorer:
            return CoherenceScorer(shipped_scorer_path(PICKER_SCORER))

    history, replies = _inputs().history, ["who is this?", "Banana hats."]
    pick = build_picker(BestOfParams(n=2, coherence_weight=1.0, realism_weight=0.6), Fitted())  # type: ignore[arg-type]
    assert pick is not None
    assert pick(history, replies) == Fitted().picker_scorer().score([transcript_text(history)] * 2, replies)
    with pytest.raises(InputError, match="no realism scorer of its domain"):
        build_picker(BestOfParams(n=2, coherence_weight=0.0, realism_weight=1.0), Fitted())  # type: ignore[arg-type]
