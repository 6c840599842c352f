"""How the profile model is prompted in D_gen: one renderer used by the training data AND the generator.

`train profile-sft` trains an adapter on D_gen, whose prompt is the instruction in
data/prompts/profile.yaml (`instruction`) filled with a profile's own constraints; the answer is
the profile as JSON. A generator serving that adapter must send exactly this text, so
`sop_db.datasets.d_gen_record` (training) and `profiles.generator` (serving) both call
`d_gen_instruction`. The adapter records in its training.json which prompt it learnt
(`D_GEN_PROMPT`) and the version of the prompt file (`prompt_version("profile")`).
"""

from __future__ import annotations

from grouped_sim.prompts import prompt

D_GEN_PROMPT = "d_gen_instruction"


def age_band(age: int | None) -> str | None:
    """"40-49" for 43: D_gen states an age band, not the exact age."""
    if age is None:
        return None
    low = (age // 10) * 10
    return f"{low}-{low + 9}"


def constraints_text(domain: str, archetype: str | None = None, age: int | None = None, role: str | None = None) -> str:
    """The constraints part of the D_gen instruction: "archetype A; domain D; age 40-49; role: R"."""
    parts = [f"archetype {archetype}" if archetype else None, f"domain {domain}"]
    band = age_band(age)
    if band:
        parts.append(f"age {band}")
    if role:
        parts.append(f"role: {role}")
    return "; ".join(p for p in parts if p)


def d_gen_instruction(domain: str, archetype: str | None = None, age: int | None = None, role: str | None = None) -> str:
    """The instruction a profile model is trained on (and served) for these constraints."""
    return prompt("profile")["instruction"].format(domain=domain, constraints=constraints_text(domain, archetype, age, role))
