"""`grouped-sim fit` on raw transcripts (no profiles, no stage labels) and its input errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

CLI = [sys.executable, "-c", "from grouped_sim.cli.app import main; main()"]


def test_fit_writes_a_sim_folder_from_raw_transcripts(fitted_dir: Path) -> None:
    fit = json.loads((fitted_dir / "fit.json").read_text())
    assert fit["train"] + fit["holdout"] == 38 and fit["holdout"] == 10
    assert fit["profiles"] == {"given": 0, "llm": 0, "derived": 38, "failed": 0}
    assert fit["stages"]["tagged"] > 0 and fit["stages"]["given"] == 0
    assert fit["store"]["chains"] == fit["train"]
    dynamics = fit["dynamics"]
    assert dynamics["estimator"].startswith("discrete-time competing-risks hazard")
    assert dynamics["fitted"] is True or dynamics["reason"]
    split = json.loads((fitted_dir / "split.json").read_text())
    assert not set(split["train"]) & set(split["holdout"])
    # The domain's coherence judge and picker: disjoint halves of the training calls, measured on the held-out ones.
    judge, picker = (json.loads((fitted_dir / "coherence" / role / "coherence.json").read_text()) for role in ("judge", "picker"))
    assert not set(judge["split"]["train"]) & set(picker["split"]["train"])
    assert sorted(judge["split"]["train"] + picker["split"]["train"]) == sorted(split["train"])
    assert judge["split"]["heldout"] == picker["split"]["heldout"] == sorted(split["holdout"])
    assert all(fit["coherence"][role]["trained"] for role in ("judge", "picker"))


def test_profiles_never_carry_the_outcome_and_held_out_ones_only_the_calls_start(fitted_dir: Path, raw_corpus: Path) -> None:
    from grouped_sim.corpus import read_corpus
    from grouped_sim.graphs.fit import SimFolder

    calls = {d.id: d for d in read_corpus(raw_corpus)}
    folder = SimFolder(fitted_dir)
    for record in folder.load_profiles("train") + folder.load_profiles("holdout"):
        text = json.dumps(record.profile.model_dump(mode="json")).lower()
        assert record.profile.buy_propensity is None and "hung_up" not in text and calls[record.id].outcome.value not in text
    for record in folder.load_profiles("holdout"):
        replies = [t.text for t in calls[record.id].customer_turns()]
        late = replies[-1]
        if len(replies) >= 3 and late not in replies[: -(len(replies) * 2 // 3)]:
            assert late not in json.dumps(record.profile.model_dump(mode="json"))  # the decision is at the end of a call


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_rerun_leaves_the_folder_as_it_was_and_other_input_is_refused(fitted_dir: Path, raw_corpus: Path, tmp_path: Path) -> None:
    before = _files(fitted_dir)  # every file, the store's and the scorers' included
    done = subprocess.run(CLI + ["fit", "--corpus", str(raw_corpus), "--out", str(fitted_dir), "--holdout", "0.25", "--seed", "1"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "already fitted" in done.stdout and "nothing rewritten" in done.stdout
    assert _files(fitted_dir) == before
    other = subprocess.run(CLI + ["fit", "--corpus", str(raw_corpus), "--out", str(fitted_dir), "--seed", "2"], capture_output=True, text=True, timeout=300)
    assert other.returncode == 2 and "holds a fit of another corpus or other settings" in " ".join(other.stderr.split())


def _fit(tmp_path: Path, lines: list[str] | None, extra: list[str] = ()) -> subprocess.CompletedProcess:
    corpus = tmp_path / "calls.jsonl"
    if lines is not None:
        corpus.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return subprocess.run(CLI + ["fit", "--corpus", str(corpus), "--out", str(tmp_path / "out"), *extra], capture_output=True, text=True, timeout=120)


def good(n: int) -> str:
    return json.dumps({"id": f"d-{n}", "domain": "x", "outcome": "refused", "turns": [{"role": "salesman", "text": "hello"}, {"role": "customer", "text": "no"}]})


@pytest.mark.parametrize(
    ("lines", "extra", "expected"),
    [
        ([good(1), json.dumps({"id": "d-2", "domain": "x", "turns": [{"role": "salesman", "text": "hello?"}]})], [], "calls.jsonl:2: field '<line>': a dialogue needs at least one customer turn"),
        ([], [], "calls.jsonl: no dialogues in the corpus"),
        ([good(1), good(2)], ["--holdout", "0.9"], "leaves 0 of 2 dialogues to fit on"),
        ([good(1), good(2), good(3)], ["--taxonomy", "TAXONOMY"], "taxonomy.yaml:3: taxonomy file is not valid YAML"),
    ],
)
def test_bad_input_is_a_clear_error_naming_file_and_line(tmp_path: Path, lines, extra, expected) -> None:
    taxonomy = tmp_path / "taxonomy.yaml"
    taxonomy.write_text("stages:\n  - id: [broken\n", encoding="utf-8")
    done = _fit(tmp_path, lines, [str(taxonomy) if e == "TAXONOMY" else e for e in extra])
    message = " ".join(done.stderr.split())
    assert done.returncode == 2, done.stderr
    assert expected in message and "Traceback" not in done.stderr
    assert message.startswith("error:")  # input is checked before any progress is shown
    assert not (tmp_path / "out" / "fit.json").exists()


def test_a_damaged_part_is_named_with_its_repair_and_a_removed_part_is_redone(fitted_dir: Path, raw_corpus: Path, tmp_path: Path, capsys) -> None:
    import shutil

    from grouped_sim.graphs.fit import SimFolder
    from tests.runtime.fakes import invoke

    sim = tmp_path / "sim"
    shutil.copytree(fitted_dir, sim)
    fit = ["fit", "--corpus", str(raw_corpus), "--out", str(sim), "--holdout", "0.25", "--seed", "1"]
    head = sim / "coherence" / "judge" / "head.npz"
    head.write_bytes(head.read_bytes()[:300])  # cut short, as a full disk leaves it
    damaged = invoke(fit, capsys)
    assert damaged.code == 2 and f"{head}: damaged or foreign" in damaged.output and f"remove {head.parent}, then rerun grouped-sim fit" in damaged.output
    shutil.copy(fitted_dir / "coherence" / "judge" / "head.npz", head)
    taxonomy = sim / "taxonomy.yaml"
    taxonomy.write_text("stages: [", encoding="utf-8")
    damaged = invoke(fit, capsys)
    assert damaged.code == 2 and f"{taxonomy}:1: taxonomy file is not valid YAML" in damaged.output and f"remove {taxonomy}, then rerun" in damaged.output
    taxonomy.unlink()  # as the message says
    redone = invoke(fit, capsys)
    assert redone.code == 0, redone.output
    SimFolder(sim).check()  # whole again, every part read
    assert taxonomy.read_bytes() == (fitted_dir / "taxonomy.yaml").read_bytes()
