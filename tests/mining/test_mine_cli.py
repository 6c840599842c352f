"""`grouped-sim sop mine` end to end on a small raw corpus: outputs, bad lines, resume, idempotence."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from grouped_sim.cli.app import app
from grouped_sim.errors import InputError
from grouped_sim.schemas import Dialogue


def _raw_corpus(corpus: list[Dialogue], path: Path) -> None:
    """Five labelled dialogues, two with labels stripped, one bad line and one duplicate id."""
    lines = []
    for i, dialogue in enumerate(corpus[:5]):
        if i >= 3:
            dialogue = dialogue.model_copy(update={"turns": [t.model_copy(update={"sop_stage": None}) for t in dialogue.turns]})
        lines.append(dialogue.model_dump_json())
    lines.insert(2, '{"id": "broken", "domain": "broadband", "turns": []}')
    lines.append(corpus[0].model_dump_json())
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_mine_writes_datasets_store_and_reports_bad_lines_then_resumes(corpus: list[Dialogue], tmp_path: Path) -> None:
    raw = tmp_path / "raw.jsonl"
    _raw_corpus(corpus, raw)
    out = tmp_path / "mined"
    runner = CliRunner()
    refused = runner.invoke(app, ["sop", "mine", "--corpus", str(raw), "--out", str(out)])
    # Every bad line is listed, and by default nothing is written (the input-error exit code, 2).
    assert isinstance(refused.exception, InputError) and refused.exception.exit_code == 2, refused.output
    shown = " ".join(refused.output.split())
    assert "raw.jsonl:3: field 'turns'" in shown and "raw.jsonl:7: field 'id': duplicate id 'fd-001'" in shown
    assert not out.exists()
    # --skip-bad-lines: the valid dialogues are mined and the bad lines recorded.
    first = runner.invoke(app, ["sop", "mine", "--corpus", str(raw), "--out", str(out), "--skip-bad-lines"])
    assert first.exit_code == 0, first.output
    assert "2 bad lines skipped" in " ".join(first.output.split())

    summary = json.loads((out / "mine.json").read_text())
    assert summary["dialogues"] == 5
    assert summary["bad_lines"][0].startswith(f"{raw}:3: field 'turns'")
    assert summary["bad_lines"][1] == f"{raw}:7: field 'id': duplicate id 'fd-001' (first on line 1)"
    assert summary["profiles"] == {"given": 5}
    annotated = [Dialogue.model_validate_json(line) for line in (out / "annotated_corpus.jsonl").read_text().splitlines()]
    assert [d.id for d in annotated] == [d.id for d in corpus[:5]]
    assert all(t.sop_stage for d in annotated for t in d.turns)
    tagged = [t for d in annotated[3:] for t in d.turns]
    assert all(t.meta["stage_source"] == "knn" for t in tagged)
    assert summary["store"]["chains"] == 5

    from datasets import load_dataset

    d_gen = load_dataset("json", data_files=str(out / "D_gen.jsonl"), split="train")
    d_sim = load_dataset("json", data_files=str(out / "D_sim.jsonl"), split="train")
    assert len(d_gen) == 5 and {"instruction", "profile", "prompt", "completion"} <= set(d_gen.column_names)
    assert len(d_sim) == sum(1 for d in corpus[:5] for i, t in enumerate(d.turns) if t.role == "customer" and i > 0)

    before = (out / "annotated_corpus.jsonl").read_text()
    second = runner.invoke(app, ["sop", "mine", "--corpus", str(raw), "--out", str(out), "--skip-bad-lines"])
    assert "5 dialogues, 5 already mined, 0 to do" in " ".join(second.output.split())
    assert (out / "annotated_corpus.jsonl").read_text() == before
    assert len((out / "mined.jsonl").read_text().splitlines()) == 5
