"""grouped_sim.jsontext: JSON objects out of model answers (mining, judge, profile generator)."""

from __future__ import annotations

import pytest

from grouped_sim.jsontext import json_objects, parse_json_object


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ('Answer: {"a": {"b": "}"}, "c": [1, 2,],} thanks', {"a": {"b": "}"}, "c": [1, 2]}),
        ('```JSON\n{"summary": "don\'t call me"}\n```', {"summary": "don't call me"}),
        ("{'ok': True, 'n': None, 'xs': [1, 2,],}", {"ok": True, "n": None, "xs": [1, 2]}),
        ('{"quote": "she said \\"}\\" twice"}', {"quote": 'she said "}" twice'}),
        ('first {"a": } then {"b": 2}', {"b": 2}),
    ],
)
def test_parse_json_object_finds_the_first_usable_object(answer: str, expected: dict) -> None:
    assert parse_json_object(answer) == expected


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("sure! here is the profile", "no JSON object in the answer"),
        ('{"summary": "a long profile that ran out of tok', "unterminated JSON object (the answer was cut off)"),
        ('{"summary" "no colon"}', "invalid JSON (Expecting ':' delimiter at column 12)"),
    ],
)
def test_parse_json_object_says_why_nothing_was_usable(answer: str, reason: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_json_object(answer)
    assert str(info.value) == reason


def test_json_objects_returns_every_parseable_object_in_order() -> None:
    assert json_objects('x {"a": 1} y {broken} z {"b": 2}') == [{"a": 1}, {"b": 2}]
    assert json_objects("no braces here") == []
