"""Input is validated whole before anything is written, stores are never seen half-built or empty,
read-only commands never create a store, and fidelity is never lost silently.

One tiny store (two dialogues, real MiniLM, real Chroma) is built for the module; model weights
never load: a command that tried would raise `Loaded`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.runtime.fakes import invoke, with_fake_customer


class Loaded(Exception):
    """A command tried to load model weights."""


@pytest.fixture(autouse=True)
def no_weights(monkeypatch):
    import grouped_sim.models.local as local

    monkeypatch.setattr(local, "load_weights", lambda *a, **k: (_ for _ in ()).throw(Loaded()))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, corpus) -> Path:
    """A store of one food-delivery and one broadband call, built by the atomic builder."""
    import grouped_sim.sop_db.store as stores

    picked = [next(d for d in corpus if d.domain == "food-delivery" and d.profile), next(d for d in corpus if d.domain == "broadband")]
    path = tmp_path_factory.mktemp("tiny") / "db"
    if hasattr(stores, "build_store"):
        assert stores.build_store(str(path), picked)["chains"] == 2
    else:  # an older tree
        stores.SOPStore(path, create=True).upsert_dialogues(picked)
    return path


def _corpus_file(path: Path, dialogues, blank_lines: int = 0) -> Path:
    path.write_text(("\n" * blank_lines).join(d.model_dump_json() + "\n" for d in dialogues), encoding="utf-8")
    return path


def _snapshot(root: Path) -> list[tuple[str, int]]:
    return sorted((str(p.relative_to(root)), p.stat().st_size if p.is_file() else -1) for p in root.rglob("*"))


def test_sop_build_checks_every_stage_label_before_creating_anything(tmp_path: Path, corpus, capsys) -> None:
    bad = corpus[1].model_copy(update={"turns": [t.model_copy(update={"sop_stage": "haggling"}) if i == 3 else t for i, t in enumerate(corpus[1].turns)]})
    path = _corpus_file(tmp_path / "calls.jsonl", [corpus[0], bad])
    result = invoke(["sop", "build", "--corpus", str(path), "--db", str(tmp_path / "db")], capsys)
    assert result.code == 2 and f"{path}:2: field 'turns.3.sop_stage': 'haggling' is not a stage of the taxonomy" in result.output, result.output
    assert not (tmp_path / "db").exists() and not list(tmp_path.glob(".db.*"))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n", encoding="utf-8")
    result = invoke(["sop", "build", "--corpus", str(empty), "--db", str(tmp_path / "db")], capsys)
    assert result.code == 2 and "no dialogues" in result.output and not (tmp_path / "db").exists()
    busy = tmp_path / "notes"
    busy.mkdir()
    (busy / "todo.txt").write_text("mine", encoding="utf-8")
    result = invoke(["sop", "build", "--db", str(busy)], capsys)
    assert result.code == 2 and "not an SOP store" in result.output and _snapshot(busy) == [("todo.txt", 4)]


def test_a_store_rebuild_is_all_or_nothing(tiny: Path, tmp_path: Path, corpus, monkeypatch) -> None:
    import shutil

    from grouped_sim.sop_db.store import SOPStore, build_store

    copy = tmp_path / "db"
    shutil.copytree(tiny, copy)
    assert build_store(str(copy), corpus[:1])["chains"] == 2  # upserts by id: the same dialogue again
    monkeypatch.setattr(SOPStore, "_upsert_turns", lambda self, dialogues: (_ for _ in ()).throw(RuntimeError("killed mid-build")))
    with pytest.raises(RuntimeError):
        build_store(str(copy), [d for d in corpus if d.domain == "insurance"][:2])
    monkeypatch.undo()
    assert SOPStore(copy).count() == 2 and sorted(p.name for p in tmp_path.iterdir()) == ["db"]


def test_read_only_commands_never_create_a_store(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "results"
    folder.mkdir()
    for args in (["sop", "query", "--db", str(folder), "--profile", "busy owner"], ["simulate", "--out", str(tmp_path / "run"), "--sop-db", str(folder), "--profiles", "1"]):
        result = invoke(args, capsys)
        assert result.code == 2 and "no SOP store here (not a store)" in result.output, result.output
        assert list(folder.iterdir()) == []


def test_full_mode_refuses_an_empty_store_and_a_domain_it_does_not_hold(tiny: Path, tmp_path: Path, corpus, capsys) -> None:
    from grouped_sim.sop_db.store import SOPStore

    empty = tmp_path / "empty_db"
    SOPStore(empty, create=True)  # what an older `sop build` of an empty corpus left behind
    result = invoke(["simulate", "--out", str(tmp_path / "a"), "--sop-db", str(empty), "--profiles", "1"], capsys)
    assert result.code == 2 and "0 behaviour chains" in result.output and result.traceback is None, result.output
    profiles = tmp_path / "profiles.jsonl"
    insurance = next(d for d in corpus if d.domain == "insurance" and d.profile)
    profiles.write_text("\n" + json.dumps({"profile": insurance.profile.model_dump(mode="json"), "domain": "insurance"}) + "\n", encoding="utf-8")
    result = invoke(["simulate", "--out", str(tmp_path / "b"), "--sop-db", str(tiny), "--profiles-file", str(profiles)], capsys)
    assert result.code == 2 and "profiles.jsonl:2: domain 'insurance' has no behaviour chains" in result.output, result.output
    assert "its domains: broadband, food-delivery" in result.output
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_run_that_retrieves_nothing_says_so_in_run_json(tiny: Path, tmp_path: Path, corpus, capsys, monkeypatch) -> None:
    import grouped_sim.app.build as build
    from grouped_sim.data import sample_corpus_path

    from tests.runtime.conftest import HERE

    real = build.build_deps
    monkeypatch.setattr(build, "build_deps", with_fake_customer(real))
    own = next(d for d in corpus if d.domain == "food-delivery" and d.profile)  # the store's only food-delivery call
    only = tmp_path / "one.jsonl"
    _corpus_file(only, [own])
    config = tmp_path / "c.yaml"
    config.write_text("max_turns: 1\nrole_guard_retries: 0\nruntime: {checkpoint: false}\n", encoding="utf-8")
    args = ["simulate", "--out", str(tmp_path / "run"), "--sop-db", str(tiny), "--corpus", str(only), "--profiles", "1", "--config", str(config), "--salesman", f"python:{HERE / 'agents.py'}:scripted"]
    result = invoke(args, capsys)
    assert result.code == 0, result.output
    warnings = json.loads((tmp_path / "run" / "run.json").read_text(encoding="utf-8"))["warnings"]
    assert warnings and "no behaviour chain retrieved" in warnings[0] and "no behaviour chain retrieved" in result.output
    assert sample_corpus_path()  # (the sample corpus itself is untouched)


def test_sop_mine_writes_nothing_when_a_line_is_bad(tmp_path: Path, corpus, capsys) -> None:
    bad = corpus[2].model_copy(update={"turns": [t.model_copy(update={"sop_stage": "small_talk"}) for t in corpus[2].turns]})
    path = _corpus_file(tmp_path / "raw.jsonl", [corpus[0], corpus[1], bad])
    result = invoke(["sop", "mine", "--corpus", str(path), "--out", str(tmp_path / "mined")], capsys)
    assert result.code == 2 and f"{path}:3: field 'turns.0.sop_stage'" in result.output and "nothing was written" in result.output, result.output
    assert not (tmp_path / "mined").exists()


def test_report_refuses_an_empty_or_mislabelled_reference_and_warns_about_its_own_labels(tmp_path: Path, corpus, capsys) -> None:
    run = tmp_path / "run"
    run.mkdir()
    odd = corpus[0].model_copy(update={"turns": [t.model_copy(update={"sop_stage": "chit_chat"}) if i == 1 else t for i, t in enumerate(corpus[0].turns)]})
    _corpus_file(run / "dialogues.jsonl", [odd, corpus[1]])
    empty = tmp_path / "real.jsonl"
    empty.write_text("\n", encoding="utf-8")
    before = _snapshot(run)
    result = invoke(["report", str(run), "--reference", str(empty)], capsys)
    assert result.code == 2 and "holds no dialogues" in result.output and _snapshot(run) == before
    labelled = _corpus_file(tmp_path / "labelled.jsonl", [corpus[2], odd], blank_lines=2)
    result = invoke(["compare", str(run), str(run), "--names", "a,b", "--reference", str(labelled)], capsys)
    assert result.code == 2 and f"{labelled}:4: field 'turns.1.sop_stage': 'chit_chat'" in result.output, result.output
    assert _snapshot(run) == before
    made = invoke(["report", str(run), "--coherence", "none"], capsys)
    assert made.code == 0, made.output
    assert "stages outside the taxonomy are left out of SNR and coverage: chit_chat (1)" in made.output
    assert json.loads((run / "report.json").read_text(encoding="utf-8"))["warnings"] == ["turns labelled with stages outside the taxonomy are left out of SNR and coverage: chit_chat (1)"]
