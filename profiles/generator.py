"""The profile generator (paper §3.2.1): constraints in, N distinct validated `Profile`s out.

How one profile is made, and why:

1. The constraints fix some fields outright: archetype, domain, age (drawn in range), difficulty
   tier and its buy propensity, role and must-have traits when given. Those are written by us,
   never left to the model, so a constraint can not be "almost" met.
2. The profile model writes the free text (role when not fixed, business context, pain points,
   decision factors, speaking style, summary). A small local model is prompted with real profile
   cards from D_gen and fills the new card one line at a time (a newline stops each line, so a
   135M model cannot wander off the format); an instruction-following model is asked for JSON;
   a profile model trained by `train profile-sft` is sent exactly the D_gen instruction it learnt
   (grouped_sim.profile_prompt), in chat form, and answers with the profile as JSON.
3. Parse leniently, validate strictly: the result must be a valid `Profile`, pass the rule check
   against its constraints (`check_profile`, including that the text actually shows the
   archetype's focus) and, with a judge model, the judge's robustness test. A candidate that
   fails is regenerated with a new seed, up to `max_attempts` times; a constraint that never
   passes is reported as failed, never filled in.
4. Near-duplicates (MiniLM cosine over the free text) of an accepted profile or of a few-shot
   example are rejected, so N profiles are N different people and none is a copy of a real one.
5. Each accepted profile gets its top-K behaviour chains K_p from the SOP store (eq. 8).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field, ValidationError

from grouped_sim.embeddings import embed
from grouped_sim.errors import InputError, validation_detail, validation_field
from grouped_sim.io import LineError, iter_jsonl
from grouped_sim.jsontext import parse_json_object
from grouped_sim.models.base import LocalChatModel, PromptForm, SamplingChatModel, prompt_form_of
from grouped_sim.profile_prompt import D_GEN_PROMPT, d_gen_instruction
from grouped_sim.schemas import Profile
from grouped_sim.prompts import prompt
from grouped_sim.profiles.presets import Presets, load_presets
from grouped_sim.profiles.spec import ProfileConstraints

FREE_FIELDS = ("role", "business_context", "pain_points", "decision_factors", "communication_style", "summary")
MAX_TOKENS = {"role": 16, "business_context": 32, "pain_points": 32, "decision_factors": 28, "communication_style": 20, "summary": 56}
MAX_PROFILE_TOKENS = 320  # a whole profile as JSON (the D_gen answer)
DEFAULT_DOMAIN = "food-delivery"


class Candidate(BaseModel):
    """One attempt at one profile and what became of it."""

    index: int
    attempt: int
    fields: dict[str, Any] = Field(default_factory=dict)
    profile: Profile | None = None
    problems: list[str] = Field(default_factory=list)


class GeneratedProfile(BaseModel):
    """A line of the output file; `grouped_sim.graphs.runner.load_profiles_file` reads its profile and domain."""

    profile: Profile
    domain: str
    constraints: ProfileConstraints
    attempts: int
    judge: dict[str, Any] | None = None
    retrieved: list[dict[str, Any]] = Field(default_factory=list, description="K_p: top-K behaviour chains for this profile")


# ---- few-shot examples --------------------------------------------------------------------


def load_examples(path: Path | str | None = None) -> list[Profile]:
    """Real profiles for few-shot prompting: a D_gen.jsonl, a corpus, or (default) the sample corpus."""
    from grouped_sim.corpus import read_corpus

    if path is None:
        from grouped_sim.data import sample_corpus_path

        return [d.profile for d in read_corpus(sample_corpus_path()) if d.profile is not None]
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: examples file not found")
    out: list[Profile] = []
    for line_no, raw in iter_jsonl(path):
        if raw.get("profile") is None:
            raise LineError(path, line_no, "profile", "no 'profile' object (expected a D_gen record or a corpus line with a profile)")
        try:
            out.append(Profile.model_validate(raw["profile"]))
        except ValidationError as exc:
            field, message = validation_field(exc, whole="")
            raise LineError(path, line_no, f"profile.{field}".rstrip("."), message) from exc
    if not out:
        raise InputError(f"{path}: no profiles to use as examples")
    return out


def nearest_tier(propensity: float | None, presets: Presets) -> str | None:
    if propensity is None:
        return None
    return min(presets.tiers.values(), key=lambda t: abs(t.buy_propensity - propensity)).id


def pick_examples(examples: Sequence[Profile], constraints: ProfileConstraints, n: int, seed: int) -> list[Profile]:
    """Same archetype and domain first, then same archetype, then anything; varied by seed."""
    rng = np.random.default_rng(seed)

    def rank(p: Profile) -> int:
        return (p.archetype == constraints.archetype) * 2 + (p.domain == constraints.domain)

    order = sorted(range(len(examples)), key=lambda i: (-rank(examples[i]), rng.random()))
    return [examples[i] for i in order[:n]]


# ---- the card format ----------------------------------------------------------------------


def _value_text(key: str, value: Any) -> str:
    if isinstance(value, list):
        return "; ".join(str(v) for v in value)
    return "" if value is None else str(value)


def card_lines(profile: Profile, presets: Presets) -> list[str]:
    labels = prompt("profile")["generation"]["fields"]
    values = {
        "archetype": profile.archetype,
        "difficulty": profile.difficulty or nearest_tier(profile.buy_propensity, presets),
        "domain": profile.domain,
        "age": profile.age,
        "traits": profile.traits,
        "role": profile.role,
        "business_context": profile.business_context,
        "pain_points": profile.pain_points,
        "decision_factors": profile.decision_factors,
        "communication_style": profile.communication_style,
        "summary": profile.summary,
    }
    return [f"{labels[k]}: {_value_text(k, v)}" for k, v in values.items() if _value_text(k, v)]


def fixed_values(constraints: ProfileConstraints, presets: Presets) -> dict[str, Any]:
    """The fields the constraints decide; the model never writes these."""
    fixed: dict[str, Any] = {}
    if constraints.archetype:
        fixed["archetype"] = constraints.archetype
    if constraints.tier:
        fixed["difficulty"] = constraints.tier
        fixed["buy_propensity"] = presets.tier(constraints.tier).buy_propensity
    if constraints.domain:
        fixed["domain"] = constraints.domain
    if constraints.age is not None:
        fixed["age"] = constraints.age
    if constraints.must_have:
        fixed["traits"] = list(constraints.must_have)
    if constraints.role:
        fixed["role"] = constraints.role
    return fixed


def split_list(text: str) -> list[str]:
    return [p.strip(" .\"'") for p in re.split(r"[;|]|,\s+(?=[a-z])", text) if p.strip(" .\"'")]


def clean_line(text: str) -> str:
    """One model-written line: first line only, no stray card labels, quotes or trailing junk."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    line = re.sub(r"^(?:[A-Z][a-z ]{1,12}:\s*)", "", line) if re.match(r"^(Role|Business|Summary|Speaks|Pain points|Decides on):", line) else line
    return line.strip(" \"'`*")


class Prompter:
    """One way of asking a profile model for the free fields of profiles, batched over (constraints, seed) jobs."""

    name = "?"

    def __init__(self, model: Any, presets: Presets, examples: Sequence[Profile], shots: int = 2) -> None:
        self.model = model
        self.presets = presets
        self.examples = list(examples)
        self.shots = shots
        self.cfg = prompt("profile")["generation"]

    def fill(self, jobs: list[tuple[ProfileConstraints, int]]) -> list[tuple[dict[str, Any], list[Profile]]]:
        """For each (constraints, seed): the model-written fields (or {"_error": why}) and the examples it was shown."""
        raise NotImplementedError


def batch_seed(jobs: list[tuple[ProfileConstraints, int]]) -> int:
    """One seed for a batched call, from the jobs' seeds (row i then samples with it + i)."""
    return int(hashlib.sha256(json.dumps([s for _, s in jobs]).encode()).hexdigest()[:8], 16)


class CardPrompter(Prompter):
    """Fills a profile card line by line with a local model's raw continuation (batched over profiles)."""

    name = "card"
    model: LocalChatModel

    def base_prompt(self, constraints: ProfileConstraints, seed: int) -> tuple[str, list[Profile]]:
        shots = pick_examples(self.examples, constraints, self.shots, seed)
        blocks = [self.cfg["header"].format(domain=constraints.domain or "any business")]
        for n, example in enumerate(shots, start=1):
            blocks.append("\n".join([self.cfg["card_heading"].format(n=n), *card_lines(example, self.presets)]))
        return "\n\n".join(blocks) + "\n\n" + self.cfg["card_heading"].format(n=len(shots) + 1), shots

    def fill(self, jobs: list[tuple[ProfileConstraints, int]]) -> list[tuple[dict[str, Any], list[Profile]]]:
        labels = self.cfg["fields"]
        prompts: list[str] = []
        shown: list[list[Profile]] = []
        written: list[dict[str, Any]] = []
        for constraints, seed in jobs:
            prompt, shots = self.base_prompt(constraints, seed)
            fixed = fixed_values(constraints, self.presets)
            for key in ("archetype", "difficulty", "domain", "age", "traits", "role"):
                if key in fixed:
                    prompt += f"\n{labels[key]}: {_value_text(key, fixed[key])}"
            prompts.append(prompt)
            shown.append(shots)
            written.append({})
        seed = batch_seed(jobs)
        for key in FREE_FIELDS:
            todo = [i for i, (c, _) in enumerate(jobs) if not (key == "role" and c.role)]
            if not todo:
                continue
            asks = [prompts[i] + f"\n{labels[key]}:" for i in todo]
            texts = self.model.generate_texts(asks, stop=["\n"], seed=seed, max_new_tokens=MAX_TOKENS[key])
            for i, text in zip(todo, texts):
                value = clean_line(text)
                written[i][key] = value
                prompts[i] += f"\n{labels[key]}: {value}"
        return list(zip(written, shown))


class ChatPrompter(Prompter):
    """Asks an instruction-following chat model for the free fields as JSON."""

    name = "chat"

    def fill(self, jobs: list[tuple[ProfileConstraints, int]]) -> list[tuple[dict[str, Any], list[Profile]]]:
        from langchain_core.messages import HumanMessage, SystemMessage

        out = []
        for constraints, seed in jobs:
            shots = pick_examples(self.examples, constraints, self.shots, seed)
            examples = "\n".join(json.dumps({k: getattr(p, k) for k in FREE_FIELDS}, ensure_ascii=False) for p in shots)
            note = self.presets.archetype(constraints.archetype).description if constraints.archetype else ""
            messages = [
                SystemMessage(content=self.cfg["chat_system"]),
                HumanMessage(content=self.cfg["chat_user"].format(examples=examples, constraints=constraints.describe(), archetype_note=note)),
            ]
            try:
                answer = self.model.invoke(messages, seed=seed)
                fields = parse_json_object(str(answer.content))
            except ValueError as exc:
                fields = {"_error": str(exc)}
            out.append((fields, shots))
        return out


class DGenPrompter(Prompter):
    """Serves a `train profile-sft` adapter exactly the prompt it learnt: the D_gen instruction, in chat form.

    The instruction is built from the constraints by the function D_gen itself uses; the answer is
    the profile as JSON. No few-shot examples: D_gen had none. The fixed fields are still taken
    from the constraints afterwards (`build_profile`), whatever the JSON says.
    """

    name = D_GEN_PROMPT
    model: LocalChatModel

    def instruction(self, constraints: ProfileConstraints) -> str:
        return d_gen_instruction(constraints.domain or DEFAULT_DOMAIN, constraints.archetype, constraints.age, constraints.role)

    def fill(self, jobs: list[tuple[ProfileConstraints, int]]) -> list[tuple[dict[str, Any], list[Profile]]]:
        from langchain_core.messages import HumanMessage

        asks = [[HumanMessage(content=self.instruction(c))] for c, _ in jobs]
        answers = self.model.generate_chats(asks, seed=batch_seed(jobs), max_new_tokens=MAX_PROFILE_TOKENS)
        out: list[tuple[dict[str, Any], list[Profile]]] = []
        for answer in answers:
            try:
                out.append((parse_json_object(answer), []))
            except ValueError as exc:
                out.append(({"_error": str(exc)}, []))
        return out


def adapter_prompt(model: Any) -> dict[str, Any] | None:
    """What a `train profile-sft` adapter under `model` was trained on (its training.json), or None.

    None for an untuned model, an API model, or an adapter trained on something else (a customer
    adapter): those keep the card or chat prompt.
    """
    if not isinstance(model, SamplingChatModel) or not model.adapter:
        return None
    from grouped_sim.profiles.training import trained_prompt

    return trained_prompt(model.adapter)


def prompter_for(model: Any) -> type[Prompter]:
    """The D_gen prompt for a profile-sft adapter, the card for other transcript-form models, else chat."""
    if adapter_prompt(model) is not None:
        return DGenPrompter
    return CardPrompter if prompt_form_of(model) is PromptForm.transcript else ChatPrompter


# ---- checks -------------------------------------------------------------------------------


def free_text(profile: Profile) -> str:
    """The model-written part of a profile: what the archetype check and duplicate check read."""
    parts = [profile.summary, profile.role or "", profile.business_context or "", "; ".join(profile.pain_points), "; ".join(profile.decision_factors), profile.communication_style or ""]
    return " ".join(p for p in parts if p)


def build_profile(fields: dict[str, Any], constraints: ProfileConstraints, presets: Presets) -> Profile:
    """Fixed fields from the constraints plus the model's free text; raises ValueError when unusable."""
    if "_error" in fields:
        raise ValueError(fields["_error"])
    data: dict[str, Any] = {}
    for key in FREE_FIELDS:
        value = fields.get(key)
        if key in ("pain_points", "decision_factors"):
            data[key] = split_list(value) if isinstance(value, str) else [str(v) for v in (value or [])]
        else:
            data[key] = str(value).strip() if value else None
    data.update(fixed_values(constraints, presets))
    try:
        return Profile.model_validate(data)
    except ValidationError as exc:
        raise ValueError(validation_detail(exc, whole="<profile>")) from exc


def check_profile(profile: Profile, constraints: ProfileConstraints, presets: Presets | None = None) -> list[str]:
    """Every way `profile` misses its constraints or the minimum a usable profile needs; [] = pass."""
    presets = presets or load_presets()
    problems: list[str] = []
    if constraints.archetype and profile.archetype != constraints.archetype:
        problems.append(f"archetype is {profile.archetype!r}, wanted {constraints.archetype!r}")
    if constraints.domain and profile.domain != constraints.domain:
        problems.append(f"domain is {profile.domain!r}, wanted {constraints.domain!r}")
    if constraints.age_min is not None or constraints.age_max is not None:
        low, high = constraints.age_min or 0, constraints.age_max or 200
        if profile.age is None or not low <= profile.age <= high:
            problems.append(f"age {profile.age} outside {low}-{high}")
    if constraints.tier:
        tier = presets.tier(constraints.tier)
        if profile.difficulty != tier.id or profile.buy_propensity is None or abs(profile.buy_propensity - tier.buy_propensity) > 1e-9:
            problems.append(f"tier {profile.difficulty}/{profile.buy_propensity}, wanted {tier.id}/{tier.buy_propensity}")
    if constraints.role and constraints.role.lower() not in (profile.role or "").lower():
        problems.append(f"role {profile.role!r} does not say {constraints.role!r}")
    for trait in constraints.must_have:
        if trait not in profile.traits:
            problems.append(f"must-have trait missing: {trait!r}")
    text = free_text(profile)
    if len(profile.summary.split()) < 6:
        problems.append("summary shorter than six words")
    if len(profile.summary) > 400:
        problems.append("summary longer than 400 characters")
    if not profile.pain_points:
        problems.append("no pain points")
    if not profile.communication_style:
        problems.append("no speaking style")
    if not profile.role:
        problems.append("no role")
    if constraints.archetype:
        archetype = presets.archetype(constraints.archetype)
        if not archetype.cue_hits(text):
            problems.append(f"text shows nothing of {archetype.id} (none of its cue words)")
    return problems


class Judge:
    """The paper's profile robustness test: a judge model answers 1 (fits the archetype) or 0."""

    def __init__(self, model: Any, presets: Presets) -> None:
        self.model = model
        self.presets = presets
        self.cfg = prompt("profile")["judge"]

    def __call__(self, profile: Profile, constraints: ProfileConstraints, seed: int = 0) -> dict[str, Any]:
        from langchain_core.messages import HumanMessage, SystemMessage

        if not constraints.archetype:
            return {"pass": True, "reason": "no archetype to test against"}
        archetype = self.presets.archetype(constraints.archetype)
        messages = [
            SystemMessage(content=self.cfg["system"]),
            HumanMessage(content=self.cfg["user"].format(archetype=archetype.id, definition=archetype.description, profile=profile.as_text())),
        ]
        answer = str(self.model.invoke(messages, seed=seed).content).strip()
        verdict = re.search(r"[01]", answer)
        if verdict is None:
            return {"pass": False, "reason": f"judge answer had no 0/1 verdict: {answer[:80]!r}", "parsed": False}
        return {"pass": verdict.group(0) == "1", "reason": answer[:200], "parsed": True}


# ---- the generator ------------------------------------------------------------------------


class GenerationReport(BaseModel):
    requested: int
    produced: int
    candidates: int = 0
    unparsed: int = 0
    rule_failures: int = 0
    judge_failures: int = 0
    judged: int = 0
    duplicates: int = 0
    failed: list[dict[str, Any]] = Field(default_factory=list)
    problems: dict[str, int] = Field(default_factory=dict)
    target: dict[str, dict[str, float]] = Field(default_factory=dict)
    realised: dict[str, dict[str, float]] = Field(default_factory=dict)
    ages: dict[str, float] = Field(default_factory=dict)

    @property
    def rule_pass_rate(self) -> float:
        checked = self.candidates - self.unparsed
        return (checked - self.rule_failures) / checked if checked else 0.0


class ProfileGenerator:
    """Constraints → validated, distinct profiles, each with its K_p; see the module docstring."""

    def __init__(
        self,
        model: Any,
        examples: Sequence[Profile],
        presets: Presets | None = None,
        judge: Judge | None = None,
        store: Any = None,
        top_k: int = 4,
        max_attempts: int = 4,
        dedup_threshold: float = 0.9,
        shots: int = 2,
        seed: int = 0,
    ) -> None:
        self.presets = presets or load_presets()
        self.examples = list(examples)
        if not self.examples:
            raise InputError("the profile generator needs at least one real profile as an example")
        self.prompter: Prompter = prompter_for(model)(model, self.presets, self.examples, shots)
        self.judge = judge
        self.store = store
        self.top_k = top_k
        self.max_attempts = max_attempts
        self.dedup_threshold = dedup_threshold
        self.seed = seed
        self._example_vectors = embed([free_text(p) for p in self.examples])

    def duplicate_of(self, vector: np.ndarray, accepted: list[tuple[np.ndarray, str]]) -> str | None:
        for other, name in accepted:
            if float(vector @ other) >= self.dedup_threshold:
                return name
        sims = self._example_vectors @ vector
        j = int(np.argmax(sims))
        if float(sims[j]) >= self.dedup_threshold:
            return f"few-shot example {j} ({self.examples[j].summary[:40]!r}...)"
        return None

    def retrieve(self, profile: Profile, domain: str) -> list[dict[str, Any]]:
        if self.store is None:
            return []
        chains = self.store.retrieve(profile.as_text(), k=self.top_k, domain=domain)
        return [{"id": c.id, "distance": round(float(c.distance or 0.0), 4), "archetype": c.archetype, "outcome": c.outcome} for c in chains]

    def generate(
        self,
        constraints: list[ProfileConstraints],
        on_profile: Callable[[GeneratedProfile], None] | None = None,
        batch_size: int = 4,
    ) -> tuple[list[GeneratedProfile], GenerationReport]:
        report = GenerationReport(requested=len(constraints), produced=0)
        problems: Counter[str] = Counter()
        accepted: list[tuple[np.ndarray, str]] = []
        results: dict[int, GeneratedProfile] = {}
        attempts = {i: 0 for i in range(len(constraints))}
        last_problems: dict[int, list[str]] = {}
        pending = list(range(len(constraints)))
        while pending:
            batch = pending[:batch_size]
            jobs = [(constraints[i], self.seed * 100003 + i * 101 + attempts[i]) for i in batch]
            filled = self.prompter.fill(jobs)
            for i, (fields, _shots) in zip(batch, filled):
                attempts[i] += 1
                report.candidates += 1
                c = constraints[i]
                try:
                    profile = build_profile(fields, c, self.presets)
                except ValueError as exc:
                    report.unparsed += 1
                    found = [f"unusable output: {exc}"]
                else:
                    found = check_profile(profile, c, self.presets)
                    if found:
                        report.rule_failures += 1
                    else:
                        verdict = None
                        if self.judge is not None:
                            report.judged += 1
                            verdict = self.judge(profile, c, seed=attempts[i])
                            if not verdict["pass"]:
                                report.judge_failures += 1
                                found = [f"judge: {verdict['reason'][:80]}"]
                        if not found:
                            vector = embed([free_text(profile)])[0]
                            dup = self.duplicate_of(vector, accepted)
                            if dup is not None:
                                report.duplicates += 1
                                found = [f"near-duplicate of {dup}"]
                            else:
                                accepted.append((vector, f"profile {i}"))
                                item = GeneratedProfile(profile=profile, domain=profile.domain or c.domain or DEFAULT_DOMAIN, constraints=c, attempts=attempts[i], judge=verdict, retrieved=self.retrieve(profile, profile.domain or ""))
                                results[i] = item
                                if on_profile:
                                    on_profile(item)
                for p in found:
                    problems[re.sub(r"'.*", "", p).split(":")[0].strip()] += 1
                if found:
                    last_problems[i] = found
            pending = [i for i in pending if i not in results and attempts[i] < self.max_attempts]
        for i in range(len(constraints)):
            if i not in results:
                report.failed.append({"index": i, "constraints": constraints[i].describe(), "attempts": attempts[i], "problems": last_problems.get(i, [])})
        produced = [results[i] for i in sorted(results)]
        report.produced = len(produced)
        report.problems = dict(problems)
        report.realised = realised_mix(produced)
        ages = [g.profile.age for g in produced if g.profile.age is not None]
        if ages:
            report.ages = {"min": float(min(ages)), "max": float(max(ages)), "mean": round(float(np.mean(ages)), 1)}
        return produced, report


def realised_mix(items: Sequence[GeneratedProfile]) -> dict[str, dict[str, float]]:
    """Shares of archetype, tier and domain among the produced profiles."""
    n = len(items) or 1
    mix: dict[str, dict[str, float]] = {}
    for dim, get in (("archetype", lambda g: g.profile.archetype), ("tier", lambda g: g.profile.difficulty), ("domain", lambda g: g.domain)):
        counts = Counter(str(get(g)) for g in items)
        mix[dim] = {k: round(v / n, 3) for k, v in sorted(counts.items())}
    return mix
