"""Routing and every way a call ends, with scripted parts (fake chat models, a scripted salesman)."""

from __future__ import annotations

from itertools import cycle

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

import asyncio

from grouped_sim.config import SimulationConfig, SimulatorMode
from grouped_sim.graphs.customer import CustomerPrompt, action_mismatch, render
from grouped_sim.graphs.graph import SimDeps, build_graph
from grouped_sim.graphs.manager import ManagerUpdate
from grouped_sim.graphs.plan import SimProfile
from grouped_sim.graphs.salesman import CallContext, SyncSalesman
from grouped_sim.graphs.simulation import start_state
from grouped_sim.schemas import CustomerAction, CustomerState, Profile, TerminationReason
from grouped_sim.sop_db.store import Exchange

PROFILE = Profile(summary="owner of a cafe", archetype="status-quo", buy_propensity=0.2)


def ScriptedSalesman(lines: list[str] | None = None, fail: bool = False) -> SyncSalesman:
    """A sync agent (wrapped once, as every sync agent is) that reads a fixed script."""
    lines = lines or ["Hello, this is Sam from Linkwave.", "We have a fibre offer.", "Shall I book it?"]

    def respond(call: CallContext) -> str:
        if fail:
            raise ConnectionError("agent endpoint down")
        said = sum(1 for t in call.history if t.role == "salesman")
        return lines[min(said, len(lines) - 1)]

    return SyncSalesman("scripted", respond)


class ScriptedManager:
    """Returns a fixed action on a given salesman turn, speak otherwise."""

    def __init__(self, action_on: dict[int, CustomerAction] | None = None, fail: bool = False) -> None:
        self.action_on = action_on or {}
        self.fail = fail
        self.calls = 0

    def initial_state(self, profile: Profile) -> CustomerState:
        return CustomerState()

    def step(self, *, profile, history, state, chains, seed, use_sop=True) -> ManagerUpdate:
        if self.fail:
            raise RuntimeError("manager broke")
        self.calls += 1
        action = self.action_on.get(self.calls, CustomerAction.speak)
        return ManagerUpdate(stage="pitch", state=state, action=action, guidance="be brief")


def customer_model(*replies: str) -> GenericFakeChatModel:
    return GenericFakeChatModel(messages=cycle([AIMessage(content=r) for r in (replies or ("hm. go on",))]))


def run(salesman=None, manager=None, customer=None, max_turns: int = 3, mode: SimulatorMode = SimulatorMode.no_sop) -> dict:
    config = SimulationConfig(max_turns=max_turns, mode=mode, role_guard_retries=1)
    manager = manager if manager is not None else ScriptedManager()
    deps = SimDeps(salesman=salesman or ScriptedSalesman(), customer=customer or customer_model(), manager=manager, store=None, config=config)
    state = start_state(SimProfile(profile=PROFILE, domain="broadband"), seed=5, dialogue_id="d-1", index=0)
    return asyncio.run(build_graph().ainvoke(state, context=deps))


def roles(final: dict) -> list[str]:
    return [t["role"] for t in final["history"]]


def test_turns_alternate_and_max_turns_ends_the_call() -> None:
    final = run(max_turns=3)
    assert roles(final) == ["salesman", "customer"] * 3
    assert final["termination"] == TerminationReason.max_turns
    assert all(t["sop_stage"] == "pitch" for t in final["history"])
    assert final["history"][1]["state"] is not None


@pytest.mark.parametrize(
    ("action", "reason"),
    [
        (CustomerAction.hang_up, TerminationReason.customer_hung_up),
        (CustomerAction.agree, TerminationReason.customer_agreed),
        (CustomerAction.callback, TerminationReason.callback_arranged),
        (CustomerAction.refuse, TerminationReason.customer_refused),
    ],
)
def test_manager_decisions_end_the_call(action: CustomerAction, reason: TerminationReason) -> None:
    final = run(manager=ScriptedManager({2: action}), max_turns=5)
    assert final["termination"] == reason
    assert roles(final) == ["salesman", "customer"] * 2
    assert final["history"][-1]["action"] == action


def test_customer_can_end_the_call_with_an_explicit_tag() -> None:
    final = run(customer=customer_model("no. not interested [hang up]"), max_turns=5)
    assert final["termination"] == TerminationReason.customer_hung_up
    assert final["history"][-1]["text"] == "no. not interested"


def test_salesman_goodbye_ends_the_call() -> None:
    salesman = ScriptedSalesman(["Hello, it's Sam.", "No problem, thanks for your time, goodbye."])
    final = run(salesman=salesman, max_turns=6)
    assert final["termination"] == TerminationReason.salesman_ended
    assert len(roles(final)) == 4


@pytest.mark.parametrize(
    ("kwargs", "who"),
    [
        ({"salesman": ScriptedSalesman(fail=True)}, "salesman"),
        ({"manager": ScriptedManager(fail=True)}, "manager"),
        ({"customer": GenericFakeChatModel(messages=iter([]))}, "customer"),
    ],
)
def test_failures_end_the_call_with_error_and_blame(kwargs: dict, who: str) -> None:
    final = run(**kwargs)
    assert final["termination"] == TerminationReason.error
    assert final["error"]["who"] == who
    assert final["error"]["type"] and final["error"]["message"] is not None


def test_seller_talk_is_regenerated_then_replaced() -> None:
    final = run(customer=customer_model("We offer the best plans, sign you up today?", "eh? who is this"), max_turns=1)
    reply = final["history"][1]
    assert reply["text"] == "eh? who is this"
    assert reply["meta"]["attempts"] == 2 and "seller" in reply["meta"]["rejected"][0]

    final = run(customer=customer_model("Our platform helps you grow!"), max_turns=1)
    reply = final["history"][1]
    assert reply["meta"]["fallback"] is True
    assert reply["text"] == "sorry, what is this about?"


def test_prompt_only_mode_has_no_manager_state_or_guidance() -> None:
    manager = ScriptedManager({1: CustomerAction.hang_up})
    final = run(manager=manager, max_turns=2, mode=SimulatorMode.prompt_only)
    assert manager.calls == 0
    assert final["termination"] == TerminationReason.max_turns
    customer_turns = [t for t in final["history"] if t["role"] == "customer"]
    assert all(t["state"] is None and t["meta"]["guidance"] == "" for t in customer_turns)


def test_a_reply_that_contradicts_the_ending_is_regenerated() -> None:
    model = customer_model("oh that sounds great, how much is it?", "no. leave me alone.")
    final = run(manager=ScriptedManager({1: CustomerAction.hang_up}), customer=model, max_turns=3)
    reply = final["history"][-1]
    assert final["termination"] == TerminationReason.customer_hung_up
    assert reply["text"] == "no. leave me alone."
    assert reply["meta"]["rejected"][0].startswith("action: asks a question")


def test_a_bare_no_cannot_arrange_a_callback() -> None:
    model = customer_model("no", "not now, ring me next week")
    final = run(manager=ScriptedManager({1: CustomerAction.callback}), customer=model, max_turns=3)
    assert final["termination"] == TerminationReason.callback_arranged
    assert final["history"][-1]["text"] == "not now, ring me next week"
    assert final["history"][-1]["meta"]["rejected"][0].startswith("action: only refuses")


class CapturingModel(GenericFakeChatModel):
    """A scripted customer model that keeps every prompt it was sent."""

    seen: list = []

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        self.seen.append(messages)
        return super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)


REFERENCES = [
    Exchange(id="d-7:2", salesman="It's 29 a month for 18 months.", customer="29? I pay 22 now."),
    Exchange(id="d-9:1", salesman="The fibre is 500 megabits.", customer="don't need that much"),
]


def test_the_customer_sees_the_managers_references_and_retrieved_names_them() -> None:
    class ReferencingManager(ScriptedManager):
        def step(self, **kwargs) -> ManagerUpdate:
            return super().step(**kwargs).model_copy(update={"references": REFERENCES})

    model = CapturingModel(messages=cycle([AIMessage(content="hm. go on")]), seen=[])
    final = run(manager=ReferencingManager(), customer=model, max_turns=1)
    note = str(model.seen[0][-1].content)  # chat form: the real lines, quoted in the closing note after the call
    assert "29? I pay 22 now." in note and "don't need that much" in note
    assert final["history"][1]["retrieved"] == ["d-7:2", "d-9:1"]


def test_the_transcript_form_shows_each_reference_as_a_real_exchange(embedded_chat) -> None:
    inputs = CustomerPrompt(profile=PROFILE, domain="broadband", history=[], guidance="be brief", references=REFERENCES)
    messages, options = render(embedded_chat, inputs)
    text = str(messages[0].content)
    assert options["raw_prompt"] is True and text.endswith("Customer:")
    for ref in REFERENCES:
        assert f"Salesman: {ref.salesman}\nCustomer: {ref.customer}" in text
    assert text.count("Call ") == len(REFERENCES) + 1  # one short call per reference, then this call


def test_for_a_prefix_caching_model_each_turn_extends_the_last_prompt_up_to_its_closing_note() -> None:
    from grouped_sim.models.base import LocalChatModel, PromptForm
    from grouped_sim.schemas import Turn

    class CachingModel(LocalChatModel):
        prompt_form: PromptForm = PromptForm.transcript
        caches_prefix: bool = True

        @property
        def _llm_type(self) -> str:
            return "caching-test-model"

    model = CachingModel()
    turns = [Turn(role="salesman", text="Hi, it's Alex from Corriwave."), Turn(role="customer", text="who?")]
    first = CustomerPrompt(profile=PROFILE, domain="broadband", history=turns[:1], guidance="you are busy", references=REFERENCES[:1])
    second = CustomerPrompt(profile=PROFILE, domain="broadband", history=[*turns, Turn(role="salesman", text="Your contract ends soon.")], guidance="you are fed up", references=REFERENCES[1:])
    (a,), options = render(model, first)
    (b,), _ = render(model, second)
    a_text, b_text = str(a.content), str(b.content)
    stable = a_text.rsplit("\n", 2)[0]  # everything before this turn's note and "Customer:"
    assert b_text.startswith(stable) and options == {"raw_prompt": True, "stop": ["\n"]}
    assert a_text.endswith("Customer:") and "29? I pay 22 now." in a_text.splitlines()[-2] and "you are busy" in a_text.splitlines()[-2]
    assert "don't need that much" in b_text.splitlines()[-2] and "29? I pay 22 now." not in b_text


def test_a_reply_keeps_the_spoken_line_without_narration_closed_or_cut_off() -> None:
    """The 1.5B sometimes narrates in brackets, and the token limit can cut the bracket open."""
    from grouped_sim.graphs.customer import clean_reply

    assert clean_reply("Yes, this is the account holder. [The customer calls Alex by name, which is likely") == "Yes, this is the account holder."
    assert clean_reply("*sighs* Fine (pauses) go on then.") == "Fine go on then."
    assert clean_reply("What's the catch?") == "What's the catch?"
    assert clean_reply(": I want to make sure I get what's really happening.") == "I want to make sure I get what's really happening."  # seen in make demo
    assert clean_reply("- no - not today") == "no - not today"


def test_a_customer_who_announces_the_call_is_caught_as_the_seller() -> None:
    """Seen in a demo call: the 1.5B customer took the caller's part ("This is Alex calling to inform you ...")."""
    from grouped_sim.role_guard import looks_like_salesman

    assert looks_like_salesman("Yes, I am. This is Alex calling to inform you that the new contract has started.")
    assert not looks_like_salesman("Who is this calling? I'm busy.")


def test_a_customer_who_takes_the_callers_name_is_regenerated() -> None:
    """Seen in demo calls: asked "is that the account holder? It's Alex calling from Corriwave", the
    1.5B customer answered "Yes, this is Alex." The guard knows the names the caller gave."""
    salesman = ScriptedSalesman(["Hello, is that the account holder? It's Alex calling from Corriwave.", "Great, thanks."])
    final = run(salesman=salesman, customer=customer_model("Yes, this is Alex.", "Yes, speaking. No, Alex, I'm busy."), max_turns=1)
    reply = final["history"][1]
    assert reply["text"] == "Yes, speaking. No, Alex, I'm busy."
    assert "caller's identity: this is Alex" in reply["meta"]["rejected"][0]


@pytest.mark.parametrize(
    ("text", "claim"),
    [
        ("Yes, this is Alex from Corriwave.", "this is Alex"),
        ("I'm calling from Corriwave.", "I'm calling from Corriwave"),
        ("It's Corriwave again? I'm with Corriwave already.", None),
        ("I got a letter from Corriwave, Alex.", None),
        ("I am not Alex.", None),
    ],
)
def test_what_claims_the_callers_identity(text: str, claim: str | None) -> None:
    from grouped_sim.role_guard import caller_identity, claims_caller

    identity = caller_identity(["Hi, it's Alex calling from Corriwave about your broadband."])
    assert claims_caller(text, identity) == claim


@pytest.mark.parametrize(
    ("action", "text", "problem"),
    [
        (CustomerAction.refuse, "Oh, wow! That sounds like something I can watch.", "sounds keen while ending the call"),
        (CustomerAction.refuse, "I could check it out later.", "sounds keen while ending the call"),
        (CustomerAction.hang_up, "Why would I want that?", "asks a question while ending the call"),
        (CustomerAction.agree, "No, not for me.", "refuses while agreeing"),
        (CustomerAction.refuse, "No thanks, I'm fine with what I have.", None),
        (CustomerAction.agree, "Sounds like a plan, go ahead.", None),
        (CustomerAction.callback, "Can you tell me what the fixed price is?", "does not put the call off while arranging a callback"),
        (CustomerAction.callback, "I'm busy now, can you call me back tomorrow?", None),
        (CustomerAction.callback, "Let me think about it and talk to my husband.", None),
    ],
)
def test_a_reply_that_contradicts_the_decision_is_caught(action: CustomerAction, text: str, problem: str | None) -> None:
    assert action_mismatch(action, text) == problem


def test_surprise_alone_is_not_keenness() -> None:
    assert action_mismatch(CustomerAction.refuse, "Wow, that's far too expensive for me.") is None
