"""A figure that cannot stand is never printed as if it could: no calls, no pairs, silences stored,
an interrupted command. Each says so in the terminal and, where there is one, in the JSON a
program reads (`warnings`) and on the HTML page. (Probe and scorer cards: tests/fitting and
tests/discriminator; the exit-2 cases: test_bad_input_table.py.)
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.runtime.fakes import invoke


def _write(path: Path, dialogues) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(d.model_dump_json() + "\n" for d in dialogues), encoding="utf-8")
    return path


def test_a_report_of_no_calls_says_every_figure_is_na(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    _write(run / "dialogues.jsonl", [])
    result = invoke(["report", str(run), "--discriminator", "none", "--coherence", "none"], capsys)
    assert result.code == 0, result.output
    assert "warning: the run holds no calls (dialogues.jsonl is empty): every figure is n/a" in result.output
    report = json.loads((run / "report.json").read_text(encoding="utf-8"))
    assert report["summary"]["dialogues"] == 0 and report["warnings"] == ["the run holds no calls (dialogues.jsonl is empty): every figure is n/a"]
    assert "id='warnings'" in (run / "report.html").read_text(encoding="utf-8")


def test_compare_says_which_calls_were_left_out_of_the_pairing() -> None:
    from grouped_sim.report.paired import pairing_warnings

    partial = {"customers": 1, "unpaired": {"a": 2, "b": 2}, "excluded": {"a_not_scored": 0, "b_not_scored": 0}}
    said = pairing_warnings(partial, ("v1", "v2"), "runs/v1")
    assert "v2 vs v1: 1 customer in common; 2 calls of v1 and 2 calls of v2 have no twin in the other run" in said[0]
    assert "a noise floor needs at least 4" in said[1]
    none = pairing_warnings(None, ("v1", "v2"), "runs/v1")
    assert "v2 shares no customer with v1" in none[0] and "grouped-sim simulate --plan-from runs/v1 --out DIR" in none[0]
    whole = {"customers": 6, "unpaired": {"a": 0, "b": 0}, "excluded": {"a_not_scored": 0, "b_not_scored": 0}}
    assert pairing_warnings(whole, ("v1", "v2"), "runs/v1") == []


def test_compare_writes_its_warnings_in_markdown_and_html() -> None:
    from grouped_sim.report.compare import to_markdown
    from grouped_sim.report.html import render_compare_html

    table = {"columns": ["a", "b"], "baseline": "a", "rows": [], "warnings": ["b shares no customer with a"]}
    assert to_markdown(table, []).startswith("> **warning:** b shares no customer with a")
    assert "<li>b shares no customer with a</li>" in render_compare_html(table, [])


def test_sop_build_names_every_turn_stored_with_empty_text(tmp_path: Path, corpus, capsys) -> None:
    silent = corpus[1].model_copy(update={"turns": [t.model_copy(update={"text": ""}) if i == 1 else t for i, t in enumerate(corpus[1].turns)]})
    path = _write(tmp_path / "calls.jsonl", [corpus[0], silent])
    result = invoke(["sop", "build", "--db", str(tmp_path / "db"), "--corpus", str(path)], capsys)
    assert result.code == 0, result.output
    assert f"warning: {path}:2: turn 1 (customer) has empty text; stored as an empty step of its behaviour chain" in result.output


def test_ctrl_c_says_what_it_left_and_exits_130(tmp_path: Path, corpus, capsys, monkeypatch) -> None:
    import grouped_sim.corpus as corpus_module

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(corpus_module, "read_corpus", interrupted)
    run = tmp_path / "run"
    _write(run / "dialogues.jsonl", corpus[:1])
    result = invoke(["report", str(run), "--coherence", "none"], capsys)
    assert result.code == 130 and result.traceback is None
    assert "stopped: interrupted (Ctrl-C): every file is whole" in result.output and "--resume" in result.output
    assert sorted(p.name for p in run.iterdir()) == ["dialogues.jsonl"]


@pytest.mark.parametrize("text", ["Unterminated string starting at column", "Expecting value at column"])
def test_json_errors_read_as_one_sentence(tmp_path: Path, text: str, capsys) -> None:
    broken = tmp_path / "plan.json"
    broken.write_text('{"a": "open' if "Unterminated" in text else '{"a": }', encoding="utf-8")
    from grouped_sim.errors import InputError
    from grouped_sim.io import read_json

    with pytest.raises(InputError) as error:
        read_json(broken, "plan file")
    assert text in str(error.value) and "at at" not in str(error.value)
