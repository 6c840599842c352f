"""Real runs of the embedded model: a population spec is met, every profile passes its check, no
near-duplicates, and `simulate --profiles-file` runs a generated profile end to end."""

from __future__ import annotations

import json
from itertools import combinations
from pathlib import Path

import pytest
from typer.testing import CliRunner

from grouped_sim.cli.app import app
from grouped_sim.embeddings import embed
from grouped_sim.schemas import Profile
from grouped_sim.profiles.generator import check_profile, free_text
from grouped_sim.profiles.spec import ProfileConstraints

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory, store_dir: Path) -> tuple[Path, dict]:
    """One real CLI run: 2 profiles, one price-sensitive one status-quo, ages 30-45, broadband."""
    out = tmp_path_factory.mktemp("gen") / "profiles.jsonl"
    spec = out.parent / "spec.yaml"
    spec.write_text("archetypes: {price-sensitive: 0.5, status-quo: 0.5}\ntiers: {hard: 0.5, easy: 0.5}\ndomains: {broadband: 1}\nage_min: 30\nage_max: 45\n")
    result = CliRunner().invoke(
        app,
        ["profiles", "generate", "--spec", str(spec), "-n", "2", "--out", str(out), "--sop-db", str(store_dir), "--max-attempts", "6", "--seed", "1"],
    )
    assert result.exit_code == 0, result.output
    print(result.output)
    return out, json.loads(out.with_name(out.name + ".report.json").read_text())


def test_population_spec_is_met_and_each_profile_passes_its_check(generated: tuple[Path, dict]) -> None:
    out, report = generated
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    print(f"rule-check pass rate {report['rule_pass_rate']:.0%} over {report['candidates']} candidates; problems {report['problems']}")
    assert len(lines) == report["produced"] >= 1
    for line in lines:
        profile = Profile.model_validate(line["profile"])
        assert check_profile(profile, ProfileConstraints.model_validate(line["constraints"])) == []
        assert line["domain"] == "broadband" and 30 <= profile.age <= 45
        assert len(line["retrieved"]) == 4 and all(r["id"] for r in line["retrieved"])
    if report["produced"] == 2:
        assert report["realised"]["archetype"] == {"price-sensitive": 0.5, "status-quo": 0.5}
        assert report["realised"]["tier"] == {"easy": 0.5, "hard": 0.5}


def test_generated_profiles_are_distinct_people(generated: tuple[Path, dict]) -> None:
    out, report = generated
    profiles = [Profile.model_validate(json.loads(line)["profile"]) for line in out.read_text().splitlines()]
    vectors = embed([free_text(p) for p in profiles])
    for a, b in combinations(range(len(profiles)), 2):
        assert float(vectors[a] @ vectors[b]) < 0.9, (profiles[a].summary, profiles[b].summary)


def test_simulate_runs_a_generated_profile_end_to_end(generated: tuple[Path, dict], store_dir: Path, tmp_path: Path) -> None:
    out, _ = generated
    one = tmp_path / "one.jsonl"
    one.write_text(out.read_text().splitlines()[0] + "\n")
    run = tmp_path / "run"
    result = CliRunner().invoke(app, ["simulate", "--profiles-file", str(one), "--out", str(run), "--sop-db", str(store_dir), "--max-turns", "2", "--seed", "0"])
    assert result.exit_code == 0, result.output
    dialogues = [json.loads(line) for line in (run / "dialogues.jsonl").read_text().splitlines()]
    assert len(dialogues) == 1
    assert dialogues[0]["profile"] == json.loads(one.read_text())["profile"]
    assert any(t["role"] == "customer" and t["text"] for t in dialogues[0]["turns"])
