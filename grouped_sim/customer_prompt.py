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


def script_prompt(profile: Profile, domain: str, history: Sequence[Turn], guidance: str = "", example_lines: Sequence[str] = ()) -> str:
    """The transcript laid out for a prefix-caching server: header and persona, the call so far,
    then one note with this turn's guidance and real example lines, then "Customer:".

    From one turn to the next only the tail changes, so llama.cpp reuses everything up to the last
    line it read. Without guidance and examples the note is a bare "[Customer's next line.]".
    """
    cfg = prompt("customer")
    lines = [cfg["script_header"].format(domain=domain.replace("-", " ")), cfg["script_persona"].format(profile=profile.as_text()), ""]
    lines += transcript_lines(history)
    guidance_text = cfg["script_guidance"].format(guidance=guidance) if guidance else ""
    examples = cfg["script_examples"].format(lines="; ".join(f'"{e}"' for e in example_lines)) if example_lines else ""
    lines += [cfg["script_note"].format(guidance=guidance_text, examples=examples), "Customer:"]
    return "\n".join(lines)


def chat_messages(
    profile: Profile, history: Sequence[Turn], guidance: str = "", example_lines: Sequence[str] = (), domain: str = "sales"
) -> list[BaseMessage]:
    """The persona as a system message, the call so far (the customer speaking as the assistant),
    then a closing note with this turn's guidance and real example lines.

    The note comes last so the persona and the call so far form a prefix that stays the same from
    one turn to the next: a llama.cpp server reads only the new turns and the note.
    """
    cfg = prompt("customer")
    domain_words = (domain or profile.domain or "sales").replace("-", " ")
    messages: list[BaseMessage] = [SystemMessage(content=cfg["chat_system"].format(profile=profile.as_text(), domain=domain_words))]
    for turn in history:
        messages.append(HumanMessage(content=turn.text) if turn.role == "salesman" else AIMessage(content=turn.text))
    examples = cfg["chat_examples"].format(lines="; ".join(f'"{e}"' for e in example_lines)) if example_lines else ""
    guidance = cfg["chat_guidance"].format(guidance=guidance) if guidance else ""
    messages.append(SystemMessage(content=cfg["chat_turn_note"].format(guidance=guidance, examples=examples)))
    return messages
