"""The command line as a user meets it: help that explains, bad input that exits 2 with a clear line."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from grouped_sim.cli.app import app
from tests.cli_main import run_main

runner = CliRunner()


@pytest.mark.parametrize("command", [[], ["simulate"], ["sop"], ["sop", "build"], ["sop", "query"]])
def test_every_command_explains_itself(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.output and len(result.output) > 300


def test_bad_corpus_line_exits_2_naming_file_and_line(tmp_path: Path, monkeypatch, capsys) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "domain": "insurance", "turns": [], "outcome": "refused"}\n')
    code, text = run_main(["sop", "build", "--corpus", str(bad), "--db", str(tmp_path / "db")], monkeypatch, capsys)
    assert code == 2
    assert "bad.jsonl:1" in text.replace("\n", "") and "turns" in text
    assert not (tmp_path / "db").exists()


def test_bad_model_spec_exits_2_before_loading_anything(tmp_path: Path, monkeypatch, capsys, store_dir: Path) -> None:
    args = ["simulate", "--out", str(tmp_path / "run"), "--sop-db", str(store_dir), "--customer", "gpt4"]
    code, text = run_main(args, monkeypatch, capsys)
    assert code == 2 and "missing backend prefix" in text


def test_full_mode_without_a_store_says_how_to_build_one(tmp_path: Path, monkeypatch, capsys) -> None:
    code, text = run_main(["simulate", "--out", str(tmp_path / "run")], monkeypatch, capsys)
    assert code == 2 and "--sop-db" in text


def test_query_prints_chains(store_dir: Path) -> None:
    result = runner.invoke(app, ["sop", "query", "--db", str(store_dir), "--profile", "skeptical broadband customer wants numbers", "-k", "2"])
    assert result.exit_code == 0, result.output
    assert result.output.count("#1 ") == 1 and "#2 " in result.output
