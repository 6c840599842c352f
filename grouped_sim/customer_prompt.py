"""How the customer model is prompted: one renderer used by the simulator AND by the training data.

Training the customer model (D_sim) on exactly the text it will see in simulation is what makes a
small fine-tuned model useful, so both sides call these functions. Two forms (see
data/prompts/customer.yaml): a transcript the model continues after "Customer:" (small local
models) and a chat conversation with a system persona (instruction-following models).
"""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from grouped_sim.prompts import prompt
from grouped_sim.schemas import Profile, Turn
from grouped_sim.transcript import transcript_lines

ExampleCall = Sequence[tuple[str, str]]  # (salesman move, customer reply) pairs of one real call


def transcript_prompt(
    profile: Profile,
    domain: str,
    history: Sequence[Turn],
    guidance: str = "",
    examples: Sequence[ExampleCall] = (),
) -> str:
    """A plain-text prompt ending in 'Customer:', with real calls as worked examples.

    Every example given is shown, whole: what to show is the manager's choice, and a turn's
    `retrieved` must list exactly what the model saw.
    """
    cfg = prompt("customer")
    blocks = [cfg["transcript_header"].format(domain=domain)]
    shown = list(examples)
    for n, call in enumerate(shown, start=1):
        lines = [cfg["example_heading"].format(n=n)]
        for salesman, customer in call:
            if salesman:
                lines.append(f"Salesman: {salesman}")
            if customer:
                lines.append(f"Customer: {customer}")
        blocks.append("\n".join(lines))
    current = [cfg["current_heading"].format(n=len(shown) + 1), cfg["persona_note"].format(profile=profile.summary)]
    if guidance:
        current.append(cfg["guidance_note"].format(guidance=guidance))
    current += transcript_lines(history)
    current.append("Customer:")
    blocks.append("\n".join(current))
    return "\n\n".join(blocks)


def chat_messages(profile: Profile, history: Sequence[Turn], guidance: str = "", example_lines: Sequence[str] = ()) -> list[BaseMessage]:
    """A system persona and the call so far, the customer speaking as the assistant."""
    cfg = prompt("customer")
    examples = cfg["chat_examples"].format(lines=" | ".join(f'"{e}"' for e in example_lines)) if example_lines else ""
    system = cfg["chat_system"].format(profile=profile.as_text(), guidance=guidance or "react naturally", examples=examples)
    messages: list[BaseMessage] = [SystemMessage(content=system)]
    for turn in history:
        messages.append(HumanMessage(content=turn.text) if turn.role == "salesman" else AIMessage(content=turn.text))
    return messages
