"""`grouped-sim report` and `compare` as a user runs them, on run folders cut from the sample corpus."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from grouped_sim.cli.app import app
from grouped_sim.corpus import write_corpus
from tests.cli_main import run_main

runner = CliRunner()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, corpus) -> dict[str, Path]:
    """Two 'runs': real dialogues stand in for simulated ones (the metrics read both alike)."""
    root = tmp_path_factory.mktemp("runs")
    out = {}
    for name, part in (("a", corpus[:6]), ("b", corpus[40:44])):
        folder = root / name
        write_corpus(folder / "dialogues.jsonl", part)
        (folder / "run.json").write_text(json.dumps({"models": {"customer": "hf:smollm2"}, "config": {"mode": "full" if name == "a" else "prompt-only"}}))
        out[name] = folder
    return out


@pytest.mark.parametrize("command", [["report"], ["compare"]])
def test_commands_explain_themselves(command):
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0 and "Usage" in result.output and "--reference" in result.output


def test_report_then_compare(runs, corpus_path, tmp_path, monkeypatch, capsys):
    code, text = run_main(["report", str(runs["a"]), "--reference", str(corpus_path), "--coherence", "none"], monkeypatch, capsys)
    assert code == 0, text
    report = json.loads((runs["a"] / "report.json").read_text())
    assert report["summary"]["dialogues"] == 6 and report["reference"]["dialogues"] == 75
    # realism is graded by the shipped realism judge unless --discriminator names another scorer
    realism = report["fidelity"]["realism"]
    assert realism["scorer"] == "shipped:realism-judge" and 0.0 < realism["simulated"] < 1.0 and 0.0 < realism["reference"] < 1.0
    assert report["figures"]["realism"]["sim_ci"] is not None
    assert report["run"]["config"]["mode"] == "full"  # the config that produced the run is recorded
    assert 0.0 < report["diversity"]["simulated"]["irs"] <= 1.0  # real MiniLM φ
    assert report["fidelity"]["walk_away_rate"]["gap"] is not None
    page = (runs["a"] / "report.html").read_text()
    assert page.count("<details id='d-") == 6 and "walk-away rate" in text

    md, js = tmp_path / "table.md", tmp_path / "table.json"
    code, text = run_main(["compare", str(runs["a"]), str(runs["b"]), "--names", "full,prompt-only", "--reference", str(corpus_path), "--markdown", str(md), "--json", str(js)], monkeypatch, capsys)
    assert code == 0, text
    table = json.loads(js.read_text())
    assert table["columns"] == ["full", "prompt-only", "real (reference)"]
    dialogues = next(r for r in table["rows"] if r["key"] == "dialogues")["values"]
    assert dialogues == {"full": 6, "prompt-only": 4, "real (reference)": 75}
    # Different customers: no paired section, and every output says so (with the way to pair them).
    assert table["paired"] == [] and len(table["warnings"]) == 1 and "shares no customer" in table["warnings"][0]
    assert "--plan-from" in table["warnings"][0] and "shares no customer" in " ".join(text.split())
    assert md.read_text().startswith("> **warning:** prompt-only shares no customer with full")
    assert "| metric | full | prompt-only | real (reference) |" in md.read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["report", "{tmp}/nope"], "run folder not found"),
        (["report", "{tmp}"], "no dialogues.jsonl"),
        (["report", "{run}", "--likeness", "2"], "--reference"),
        (["report", "{run}", "--discriminator", "{tmp}"], "not a discriminator folder"),
        (["report", "{run}", "--judge", "gpt4"], "gpt4"),
        (["compare", "{run}", "{run}"], "--names"),
    ],
)
def test_bad_input_exits_2_with_a_clear_line(args, message, runs, tmp_path, monkeypatch, capsys):
    filled = [a.format(tmp=tmp_path, run=runs["b"]) for a in args]
    code, text = run_main(filled, monkeypatch, capsys)
    assert code == 2, text
    assert message in text.replace("\n", "")


@pytest.mark.slow
def test_teacher_forced_likeness_with_the_embedded_customer_model(tmp_path, corpus, corpus_path, monkeypatch, capsys):
    """The one test that runs SmolLM2: replays a short real call and scores each generated turn."""
    short = min(corpus, key=lambda d: len(d.turns))
    ref = tmp_path / "ref.jsonl"
    write_corpus(ref, [short])
    run = tmp_path / "run"
    write_corpus(run / "dialogues.jsonl", [short])
    code, text = run_main(["report", str(run), "--reference", str(ref), "--likeness", "1", "--customer", "hf:smollm2", "--coherence", "none"], monkeypatch, capsys)
    assert code == 0, text
    like = json.loads((run / "report.json").read_text())["likeness"]
    replayed = sum(1 for t in short.turns[1:] if t.role == "customer")
    assert like["pairs"] == replayed and like["customer"] == "hf:smollm2"
    assert len((run / "likeness.jsonl").read_text().splitlines()) == replayed
    if like["evaluated"]:
        assert 0.0 <= like["bleu4"]["mean"] <= 1.0 and -1.0 <= like["embedding_cosine"]["mean"] <= 1.0


@pytest.mark.slow
def test_the_default_coherence_is_the_shipped_judge_on_a_draw_of_calls_never_its_training_calls(tmp_path, corpus, monkeypatch, capsys):
    """The one report test that reads replies with the 1.5B: the judge grades at most
    --coherence-calls calls a side, and a reference call it was trained on is never graded as real."""
    from grouped_sim.discriminator.judge import CoherenceJudge, shipped_judge_path

    trained = set(CoherenceJudge(shipped_judge_path()).card.split["train"])
    short = [d.model_copy(update={"turns": d.turns[:4]}) for d in corpus]  # one or two replies a call: cheap to read
    seen = [d for d in short if d.id in trained][:1] + [d for d in short if d.id not in trained][:3]
    run = tmp_path / "run"
    write_corpus(run / "dialogues.jsonl", [d for d in short if d.id not in trained][3:6])
    ref = tmp_path / "ref.jsonl"
    write_corpus(ref, seen)
    code, text = run_main(["report", str(run), "--reference", str(ref), "--coherence-calls", "3", "--discriminator", "none"], monkeypatch, capsys)
    assert code == 0, text
    block = json.loads((run / "report.json").read_text())["fidelity"]["coherence"]
    assert block["scorer"] == "shipped:coherence-llm-judge"
    assert block["calls"] == {"simulated": 3, "reference": 3, "cap": 3, "reference_left_out": 1}
    assert 0.0 <= block["mean"]["sim"] <= 1.0 and 0.0 <= block["mean"]["real"] <= 1.0
    assert block["replies"]["reference"] >= 3
