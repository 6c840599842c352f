"""The training sets of the dual-stream pipeline, built from an annotated corpus.

- D_sim = {(p ⊕ h, u_cust)}: one record per customer turn; the prompt is exactly the transcript
  the simulator shows the customer model (grouped_sim.customer_prompt), so a model fine-tuned
  on it sees the same text in simulation. Chat `messages` are included for chat-form training.
- D_gen = {(I_gen, p)}: one record per profiled dialogue; the instruction states the profile's
  own constraints (archetype, domain, age band, role) so the model learns to honour them.

Records are flat JSON, so `datasets.load_dataset("json", data_files=...)` reads them as they are.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from grouped_sim.customer_prompt import chat_messages, script_prompt, transcript_prompt
from grouped_sim.io import write_json_atomic, write_jsonl
from grouped_sim.profile_prompt import d_gen_instruction
from grouped_sim.schemas import Dialogue, Profile
from grouped_sim.transcript import transcript_text
from grouped_sim.sop_db.store import derive_profile_text

PROFILE_KEYS = (
    "summary",
    "archetype",
    "age",
    "role",
    "domain",
    "business_context",
    "pain_points",
    "decision_factors",
    "communication_style",
    "buy_propensity",
)


def profile_of(dialogue: Dialogue) -> Profile:
    """The dialogue's profile, or a minimal one summarising what the customer said."""
    if dialogue.profile is not None:
        return dialogue.profile
    return Profile(summary=derive_profile_text(dialogue), domain=dialogue.domain, archetype=dialogue.meta.get("archetype"))


def archetype_of(dialogue: Dialogue) -> str | None:
    if dialogue.profile is not None and dialogue.profile.archetype:
        return dialogue.profile.archetype
    value = dialogue.meta.get("archetype")
    return str(value) if value else None


def _message_dicts(messages: list[Any]) -> list[dict[str, str]]:
    roles = {"system": "system", "human": "user", "ai": "assistant"}
    return [{"role": roles[m.type], "content": str(m.content)} for m in messages]


def d_sim_records(dialogue: Dialogue) -> Iterator[dict[str, Any]]:
    """One record per customer turn that follows at least one salesman move."""
    profile = profile_of(dialogue)
    for index, turn in enumerate(dialogue.turns):
        if turn.role != "customer" or index == 0 or not turn.text:
            continue
        history = dialogue.turns[:index]
        messages = _message_dicts(chat_messages(profile, history, domain=dialogue.domain)) + [{"role": "assistant", "content": turn.text}]
        yield {
            "id": f"{dialogue.id}:{index}",
            "dialogue_id": dialogue.id,
            "turn_index": index,
            "domain": dialogue.domain,
            "archetype": archetype_of(dialogue),
            "sop_stage": turn.sop_stage,
            "outcome": dialogue.outcome.value,
            "profile": profile.as_text(),
            "prompt": transcript_prompt(profile, dialogue.domain, history),
            "script_prompt": script_prompt(profile, dialogue.domain, history),
            "completion": " " + turn.text,
            "messages": messages,
            "context": transcript_text(history),
            "reference": turn.text,
        }


def d_gen_record(dialogue: Dialogue) -> dict[str, Any] | None:
    """The (instruction, profile) pair of a profiled dialogue; None when it has no profile."""
    if dialogue.profile is None:
        return None
    profile = dialogue.profile
    target = {k: getattr(profile, k) for k in PROFILE_KEYS}
    target["domain"] = target["domain"] or dialogue.domain
    instruction = d_gen_instruction(dialogue.domain, profile.archetype, profile.age, profile.role)
    completion = json.dumps(target, ensure_ascii=False)
    return {
        "id": dialogue.id,
        "domain": dialogue.domain,
        "archetype": profile.archetype,
        "instruction": instruction,
        "profile": target,
        "prompt": [{"role": "user", "content": instruction}],
        "completion": [{"role": "assistant", "content": completion}],
    }


def write_datasets(dialogues: list[Dialogue], out_dir: Path | str) -> dict[str, int]:
    """D_sim.jsonl and D_gen.jsonl in `out_dir`, plus a small manifest."""
    out = Path(out_dir)
    n_sim = write_jsonl(out / "D_sim.jsonl", (r for d in dialogues for r in d_sim_records(d)))
    n_gen = write_jsonl(out / "D_gen.jsonl", (r for d in dialogues if (r := d_gen_record(d)) is not None))
    counts = {"D_sim": n_sim, "D_gen": n_gen, "dialogues": len(dialogues)}
    write_json_atomic(out / "datasets.json", counts)
    return counts
