"""LLM-as-judge scoring of simulated customers (papers/004 §2.2.1), rubrics in data/prompts/judge.yaml.

Three dimensions, each the mean of its 0-10 criteria:
- Profile Consistency: category_alignment, profile_adherence;
- Business Realism: brevity, naturalness, context_immersion;
- Interaction Logic: intent_responsiveness, logical_consistency.

Any langchain-core chat model can judge (build it from a spec in the CLI). Judges answer in JSON,
but real answers come wrapped in prose or code fences, with single quotes, trailing commas or
"7/10": `parse_scores` digs the numbers out of all of those. An answer that still does not parse,
or names a score outside 0-10, is asked again (`retries`), then recorded as *missing* (None) and
reported as a count, never as a zero that would drag the mean down.

Results are cached one line per dialogue in a JSONL file keyed by dialogue id, judge spec and
rubric version, appended as produced, so a long judging run can be stopped and resumed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, Field

from grouped_sim.io import JsonlAppender, iter_cache
from grouped_sim.jsontext import json_objects, strip_fences
from grouped_sim.metrics._common import mean
from grouped_sim.prompts import prompt, prompt_version
from grouped_sim.metrics.fidelity import TurnJudge
from grouped_sim.transcript import transcript_text
from grouped_sim.schemas import Dialogue

SCORE_MIN, SCORE_MAX = 0.0, 10.0


def dimensions() -> dict[str, dict[str, Any]]:
    """The judge dimensions in rubric order: {name: {title, role, criteria, guidance}}."""
    return prompt("judge")["dimensions"]


def criteria(dimension: str) -> list[str]:
    return list(dimensions()[dimension]["criteria"])


def judge_messages(dimension: str, dialogue: Dialogue) -> list[BaseMessage]:
    """The prompt for one dimension of one dialogue."""
    cfg = prompt("judge")
    dim = dimensions()[dimension]
    profile = dialogue.profile.as_text() if dialogue.profile else "(no persona given)"
    archetype = (dialogue.profile.archetype if dialogue.profile else None) or "unspecified"
    lines = [cfg["context"].format(profile=profile, archetype=archetype, transcript=transcript_text(dialogue.turns)), ""]
    lines.append(f"Grade {dim['title']} on these criteria:")
    for name, text in dim["criteria"].items():
        lines.append(f"- {name}: {text}")
    lines += ["", dim["guidance"], "", cfg["answer_format"].format(keys=", ".join(f'"{k}": <0-10>' for k in dim["criteria"]))]
    return [SystemMessage(content=dim["role"]), HumanMessage(content="\n".join(lines))]


# --------------------------------------------------------------------------- parsing

def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        m = re.match(r"\s*(-?\d+(?:\.\d+)?)\s*(?:/\s*10)?\s*$", value)
        return float(m.group(1)) if m else None
    return None


def _lookup(obj: dict[str, Any], key: str) -> Any:
    """A criterion's value at the top level or under "scores", also as "<key>_score"."""
    for holder in (obj.get("scores") if isinstance(obj.get("scores"), dict) else {}, obj):
        for name in (key, f"{key}_score"):
            if name in holder:
                return holder[name]
    return None


def parse_scores(text: str, keys: Sequence[str]) -> dict[str, float] | None:
    """The 0-10 score of every key from a judge's answer, or None when any is absent or out of range."""
    for obj in json_objects(text):
        got = {k: _number(_lookup(obj, k)) for k in keys}
        if all(v is not None for v in got.values()):
            return got if all(SCORE_MIN <= v <= SCORE_MAX for v in got.values()) else None  # type: ignore[operator]
    # Last resort: "key": 7 pairs in otherwise broken JSON or prose.
    cleaned = strip_fences(text)
    got = {}
    for k in keys:
        m = re.search(rf"[\"']?{re.escape(k)}(?:_score)?[\"']?\s*[:=]\s*[\"']?(-?\d+(?:\.\d+)?)", cleaned)
        if not m:
            return None
        got[k] = float(m.group(1))
    return got if all(SCORE_MIN <= v <= SCORE_MAX for v in got.values()) else None


def parse_verdict(text: str) -> bool | None:
    """The role-inversion judge's {"inverted": true|false}, or None when it cannot be read."""
    for obj in json_objects(text):
        if isinstance(obj.get("inverted"), bool):
            return obj["inverted"]
    m = re.search(r"[\"']?inverted[\"']?\s*[:=]\s*[\"']?(true|false|yes|no)\b", strip_fences(text), re.IGNORECASE)
    return None if not m else m.group(1).lower() in ("true", "yes")


# --------------------------------------------------------------------------- judging


class DimensionResult(BaseModel):
    """One dimension of one dialogue: criterion scores, their mean, or None when the judge failed."""

    scores: dict[str, float] | None = None
    score: float | None = None
    attempts: int = 0
    error: str | None = None


class JudgeRecord(BaseModel):
    """One cached line of judge.jsonl."""

    dialogue_id: str
    judge: str
    rubric_version: str
    dimensions: dict[str, DimensionResult] = Field(default_factory=dict)


def _text_of(message: Any) -> str:
    content = getattr(message, "content", message)
    if isinstance(content, list):
        return " ".join(str(part.get("text", part)) if isinstance(part, dict) else str(part) for part in content)
    return str(content)


def judge_dimension(model: BaseChatModel, dimension: str, dialogue: Dialogue, retries: int = 2) -> DimensionResult:
    """Ask, parse, re-ask up to `retries` times; a failure is recorded with its reason."""
    keys = criteria(dimension)
    messages = judge_messages(dimension, dialogue)
    error = "no answer"
    for attempt in range(1, retries + 2):
        try:
            answer = _text_of(model.invoke(messages))
        except Exception as exc:  # an endpoint hiccup is a missing score, not a crashed report
            error = f"judge call failed: {type(exc).__name__}: {exc}"[:300]
            continue
        scores = parse_scores(answer, keys)
        if scores is not None:
            return DimensionResult(scores=scores, score=sum(scores.values()) / len(scores), attempts=attempt)
        error = f"unparseable answer: {answer[:200]!r}"
    return DimensionResult(attempts=retries + 1, error=error)


def judge_dialogue(model: BaseChatModel, dialogue: Dialogue, judge_name: str, retries: int = 2) -> JudgeRecord:
    return JudgeRecord(
        dialogue_id=dialogue.id,
        judge=judge_name,
        rubric_version=prompt_version("judge"),
        dimensions={name: judge_dimension(model, name, dialogue, retries) for name in dimensions()},
    )


def load_cache(path: Path | str, judge_name: str) -> dict[str, JudgeRecord]:
    """Finished records for this judge and rubric version (a torn last line is ignored)."""
    done: dict[str, JudgeRecord] = {}
    for record in iter_cache(path, JudgeRecord):
        if record.judge == judge_name and record.rubric_version == prompt_version("judge"):
            done[record.dialogue_id] = record
    return done


def judge_run(
    model: BaseChatModel,
    dialogues: Sequence[Dialogue],
    judge_name: str,
    cache_path: Path | str,
    retries: int = 2,
    on_progress: Callable[[JudgeRecord], None] | None = None,
) -> list[JudgeRecord]:
    """Judge every dialogue not already in the cache, appending each record as it is produced."""
    done = load_cache(cache_path, judge_name)
    records: list[JudgeRecord] = []
    with JsonlAppender(cache_path) as sink:
        for dialogue in dialogues:
            record = done.get(dialogue.id)
            if record is None:
                record = judge_dialogue(model, dialogue, judge_name, retries)
                sink.write_line(record.model_dump_json())
            records.append(record)
            if on_progress:
                on_progress(record)
    return records


def aggregate(records: Sequence[JudgeRecord]) -> dict[str, Any]:
    """Per dimension: mean score, mean of each criterion, and how many dialogues are missing."""
    out: dict[str, Any] = {"judge": records[0].judge if records else None, "dialogues": len(records), "dimensions": {}}
    for name in dimensions():
        results = [r.dimensions.get(name) or DimensionResult(error="not judged") for r in records]
        out["dimensions"][name] = {
            "score": mean(r.score for r in results),
            "criteria": {k: mean(r.scores[k] if r.scores else None for r in results) for k in criteria(name)},
            "missing": sum(r.score is None for r in results),
        }
    out["overall"] = mean(d["score"] for d in out["dimensions"].values())
    return out


def role_inversion_judge(model: BaseChatModel, retries: int = 2) -> TurnJudge:
    """A (context, reply) -> bool | None judge for `fidelity.role_inversion`."""
    template = prompt("judge")["role_inversion"]

    def judge(context: str, reply: str) -> bool | None:
        messages = [HumanMessage(content=template.format(context=context or "(the call has just started)", reply=reply))]
        for _ in range(retries + 1):
            try:
                verdict = parse_verdict(_text_of(model.invoke(messages)))
            except Exception:
                verdict = None
            if verdict is not None:
                return verdict
        return None

    return judge
