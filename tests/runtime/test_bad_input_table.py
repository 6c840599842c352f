"""Every command, walked with bad input: exit code 2, one message naming the file (and the line
where there is one), never a traceback, nothing written, and no model loaded to find out.

Rows are (command, arguments, what the message must say). The world the rows point into is built
once; before and after each row the whole folder is compared, so a row that writes anything
(an output folder, a lock, a temp file, an empty store) fails. `test_every_command_has_a_row`
walks the CLI itself: a new command without a row here fails the suite.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.runtime.fakes import invoke

BAD_BYTE = b"\xff\xfe"


class Loaded(Exception):
    """A command tried to load model weights or the sentence encoder: bad input must fail first."""


def _line(dialogue) -> bytes:
    return dialogue.model_dump_json().encode() + b"\n"


def _torn(path: Path, keep: int = 600) -> None:
    """A file cut short, as a full disk or an interrupted copy leaves it."""
    path.write_bytes(path.read_bytes()[:keep])


def _damaged_artifacts(w: Path, fitted_dir: Path, plan_json: str) -> None:
    """Files grouped-sim wrote, damaged: scorer heads, a sim folder's parts, a store, run folders."""
    import shutil

    from grouped_sim.data import JUDGE_SCORER, REALISM_JUDGE, shipped_scorer_path

    for name, shipped in (("torn_scorer", JUDGE_SCORER), ("torn_realism", REALISM_JUDGE)):
        shutil.copytree(shipped_scorer_path(shipped), w / name)
        _torn(w / name / "head.npz")
    for name in ("sim_torn", "sim_dyn", "sim_ok"):
        shutil.copytree(fitted_dir, w / name)
    _torn(w / "sim_torn" / "coherence" / "judge" / "head.npz")
    (w / "sim_dyn" / "dynamics.json").write_text('{"fitted": true}', encoding="utf-8")
    shutil.copytree(fitted_dir / "sop_db", w / "torn_store")
    _torn(w / "torn_store" / "chroma.sqlite3", 20_000)
    good = (w / "calls.jsonl").read_bytes()
    (w / "run_lost").mkdir()
    (w / "run_lost" / "dialogues.jsonl").write_bytes(b"")
    (w / "run_lost" / "run.json").write_text(json.dumps({"dialogues": 3, "outcomes": {"refused": 3}}), encoding="utf-8")
    (w / "run_torn").mkdir()
    (w / "run_torn" / "plan.json").write_text(plan_json, encoding="utf-8")
    (w / "run_torn" / "dialogues.jsonl").write_bytes(good[: good.rindex(b"\n", 0, -1) + 40])
    (w / "probe_other" / "fitted").mkdir(parents=True)  # an earlier probe of other customers (another --n)
    (w / "probe_other" / "fitted" / "plan.json").write_text(plan_json, encoding="utf-8")
    (w / "run_ckpt").mkdir()
    (w / "run_ckpt" / "plan.json").write_text(plan_json, encoding="utf-8")
    (w / "run_ckpt" / "dialogues.jsonl").write_bytes(b"")
    (w / "run_ckpt" / "checkpoints.sqlite").write_bytes(b"SQLite format 3\x00" + b"\x07" * 2000)
    (w / "pairs_meta").mkdir()
    pair = {"id": "p1", "dialogue_id": "d1", "turn_index": 1, "domain": "food-delivery", "context": "c", "positive": "r", "negative": "g", "negative_model": "hf:smollm2"}
    (w / "pairs_meta" / "pairs.jsonl").write_text(json.dumps(pair) + "\n" + json.dumps({**pair, "id": "p2", "dialogue_id": "d2"}) + "\n", encoding="utf-8")
    (w / "pairs_meta" / "meta.json").write_text("[1]", encoding="utf-8")
    (w / "run_foreign_report").mkdir()
    (w / "run_foreign_report" / "dialogues.jsonl").write_bytes(good)
    (w / "run_foreign_report" / "report.json").write_text(json.dumps({"reference": None, "summary": {"dialogues": 3}, "units": {"simulated": 5}}), encoding="utf-8")


@pytest.fixture(scope="module")
def world(tmp_path_factory, corpus, fitted_dir) -> Path:
    from grouped_sim.config import SimulationConfig
    from grouped_sim.graphs.plan import RunPlan, RunSettings, sample_profiles

    w = tmp_path_factory.mktemp("world")
    good = b"".join(_line(d) for d in corpus[:3])
    (w / "calls.jsonl").write_bytes(good)
    (w / "latin1.jsonl").write_bytes(_line(corpus[0]) + _line(corpus[1]).replace(b'"text":"', b'"text":"caf' + BAD_BYTE, 1))
    (w / "[bold]calls.jsonl").write_bytes(b"{oops\n")
    (w / "[").mkdir()
    (w / "[" / "x]").mkdir()
    (w / "[" / "x]" / "[").mkdir()
    (w / "[/x]").mkdir(exist_ok=True)
    (w / "[/x]" / "calls.jsonl").write_bytes(b'{"id": 1}\n')
    (w / "dup.jsonl").write_bytes(_line(corpus[0]) + b"\n" * 8 + _line(corpus[0]))
    staged = corpus[1].model_copy(update={"turns": [t.model_copy(update={"sop_stage": "haggling"}) if i == 2 else t for i, t in enumerate(corpus[1].turns)]})
    (w / "stage.jsonl").write_bytes(_line(corpus[0]) + _line(staged))
    (w / "empty.jsonl").write_bytes(b"\n\n")
    (w / "config.yaml").write_bytes(b"max_turns: 2\nseed: " + BAD_BYTE + b"\n")
    (w / "fields.yaml").write_bytes(b"max_turns: 2\nruntime:\n  concurrency: 0\n")
    profile = next(d for d in corpus if d.profile).profile
    (w / "profiles.jsonl").write_bytes(b"\n".join([profile.model_dump_json().encode()] * 2) + b"\n" + b'{"summary": "' + BAD_BYTE + b'"}\n')
    (w / "profiles42.jsonl").write_text(json.dumps({"profile": profile.model_dump(mode="json"), "domain": 42}) + "\n", encoding="utf-8")
    (w / "profile.json").write_bytes(b'{\n  "summary": "' + BAD_BYTE + b'"\n}\n')
    settings = RunSettings(salesman="hf:smollm2", customer="hf:smollm2")
    plan = RunPlan(settings=settings, config=SimulationConfig(mode="prompt-only"), items=sample_profiles(corpus, 2, 0))
    (w / "run_plan").mkdir()
    (w / "run_plan" / "plan.json").write_bytes(b'{"settings": ' + BAD_BYTE + b"}")
    (w / "run_written").mkdir()
    (w / "run_written" / "plan.json").write_text(plan.model_dump_json(), encoding="utf-8")
    (w / "run_written" / "dialogues.jsonl").write_bytes(_line(corpus[0]) + b'{"id": "x", "domain": "d", "turns": "none"}\n' + _line(corpus[1]))
    (w / "run_bytes").mkdir()
    (w / "run_bytes" / "dialogues.jsonl").write_bytes((w / "latin1.jsonl").read_bytes())
    (w / "run_ok").mkdir()
    (w / "run_ok" / "dialogues.jsonl").write_bytes(good)
    (w / "run_summary").mkdir()
    (w / "run_summary" / "dialogues.jsonl").write_bytes(good)
    (w / "run_summary" / "run.json").write_bytes(b'{"models": \n')
    (w / "run_report").mkdir()
    (w / "run_report" / "dialogues.jsonl").write_bytes(good)
    (w / "run_report" / "report.json").write_bytes(b'{"reference": {"name": ')
    (w / "taxonomy.yaml").write_bytes(b"stages:\n  - id: " + BAD_BYTE + b"\n")
    (w / "presets.yaml").write_bytes(BAD_BYTE)
    (w / "spec.yaml").write_bytes(b"archetypes:\n  price-sensitive: [0.5\n")
    (w / "d_sim.jsonl").write_bytes(b'{"prompt": "p", "completion": "c", "reference": "r", "context": "c"}\n\n{"prompt": 3, "completion": "c", "reference": "r", "context": "c"}\n')
    (w / "d_gen.jsonl").write_bytes(b'{"prompt": "not chat messages", "completion": []}\n')
    (w / "pairs.jsonl").write_bytes(b'{"id": "a"}\n')
    (w / "plain").mkdir()
    (w / "plain" / "notes.txt").write_text("not a store", encoding="utf-8")
    (w / "order.yaml").write_text("manager:\n  hang_up_below: 0.9\n  agree_above: 0.5\n", encoding="utf-8")
    (w / "lean.yaml").write_text("customer:\n  engine: lean\n", encoding="utf-8")  # an engine since removed
    (w / "spec_bogus.yaml").write_text("archetypes: {price-sensitive: 0.5, bogus: 0.5}\n", encoding="utf-8")
    (w / "unterminated.jsonl").write_bytes(good + b'{"id": "abc\n')
    (w / "onebad.jsonl").write_bytes(good + b"{oops\n")
    _damaged_artifacts(w, fitted_dir, plan.model_dump_json())
    return w


# (command, args, expected text). Paths are relative to the world folder (the working directory).
ROWS: list[tuple[str, list[str], str]] = [
    ("simulate", ["--out", "o", "--corpus", "latin1.jsonl", "--mode", "prompt-only"], "latin1.jsonl:2: not UTF-8 text (byte 0xff at byte offset"),
    ("simulate", ["--out", "o", "--corpus", "[bold]calls.jsonl", "--mode", "prompt-only"], "[bold]calls.jsonl:1: field '<json>': not valid JSON"),
    ("simulate", ["--out", "o", "--profiles-file", "[/x]/calls.jsonl", "--mode", "prompt-only"], "[/x]/calls.jsonl:1: field 'summary'"),
    ("simulate", ["--out", "o", "--config", "config.yaml", "--mode", "prompt-only"], "config.yaml:2: the config file is not UTF-8 text"),
    ("simulate", ["--out", "o", "--config", "fields.yaml", "--mode", "prompt-only"], "fields.yaml: field 'runtime.concurrency'"),
    ("simulate", ["--out", "o", "--profiles-file", "profiles.jsonl", "--mode", "prompt-only"], "profiles.jsonl:3: not UTF-8 text"),
    ("simulate", ["--out", "o", "--profiles-file", "profiles42.jsonl", "--mode", "prompt-only"], "profiles42.jsonl:1: field 'domain': expected a string, got int"),
    ("simulate", ["--resume", "run_plan"], "run_plan/plan.json:1: the plan file is not UTF-8 text"),
    ("simulate", ["--resume", "run_written"], "run_written/dialogues.jsonl:2: field 'turns'"),
    ("simulate", ["--out", "o", "--mode", "prompt-only", "--salesman", "python:missing_agent.py:respond"], "missing_agent.py not found"),
    ("simulate", ["--out", "o", "--mode", "prompt-only", "--salesman-key-env", "HOME"], "--salesman-key-env HOME: only an endpoint: salesman sends a key"),
    ("simulate", ["--out", "o", "--sop-db", "plain"], "plain: no SOP store here (not a store)"),
    ("simulate", ["--out", "o", "--mode", "prompt-only", "--customer", "vllm"], "missing backend prefix"),
    ("simulate", ["--out", "o", "--mode", "prompt-only", "--executor", "spark"], "--executor 'spark': expected local or ray"),
    ("simulate", ["--out", "o", "--mode", "prompt-only", "--ray-workers", "4"], "--ray-workers: only with --executor ray (this run is local)"),
    ("serve", ["--profile", "profile.json", "--mode", "prompt-only"], "profile.json:2: the profile file is not UTF-8 text"),
    ("serve", ["--profile", "profiles42.jsonl", "--mode", "prompt-only", "--port", "18099"], "profiles42.jsonl: field 'domain'"),
    ("serve", ["--profile", "calls.jsonl", "--host", "0.0.0.0", "--mode", "prompt-only"], "--host 0.0.0.0: serving beyond loopback needs --api-key"),
    ("report", ["run_bytes"], "run_bytes/dialogues.jsonl:2: not UTF-8 text"),
    ("report", ["run_ok", "--reference", "empty.jsonl"], "empty.jsonl: --reference holds no dialogues"),
    ("report", ["run_ok", "--reference", "stage.jsonl"], "stage.jsonl:2: field 'turns.2.sop_stage': 'haggling' is not a stage"),
    ("report", ["run_ok", "--reference", "dup.jsonl"], "dup.jsonl:10: field 'id': duplicate id"),
    ("report", ["run_ok", "--taxonomy", "taxonomy.yaml"], "taxonomy.yaml:2: the taxonomy file is not UTF-8 text"),
    ("report", ["run_summary"], "run_summary/run.json:2: the run summary is not valid JSON"),
    ("report", ["run_ok", "--sop-db", "plain"], "plain: no SOP store here"),
    ("compare", ["run_report", "run_ok"], "run_report/report.json:1: the report is not valid JSON"),
    ("compare", ["run_ok", "run_ok", "--names", "a,b", "--reference", "latin1.jsonl"], "latin1.jsonl:2: not UTF-8 text"),
    ("sop build", ["--db", "db", "--corpus", "dup.jsonl"], "dup.jsonl:10: field 'id': duplicate id 'fd-001' (first on line 1)"),
    ("sop build", ["--db", "db", "--corpus", "stage.jsonl"], "stage.jsonl:2: field 'turns.2.sop_stage'"),
    ("sop build", ["--db", "db", "--corpus", "empty.jsonl"], "empty.jsonl: no dialogues in the corpus"),
    ("sop build", ["--db", "plain"], "plain: the folder holds files and is not an SOP store"),
    ("sop build", ["--db", "db", "--corpus", "[bold]calls.jsonl"], "[bold]calls.jsonl:1"),
    ("sop query", ["--db", "plain", "--profile", "busy owner"], "plain: no SOP store here (not a store)"),
    ("sop query", ["--db", "nowhere", "--profile", "busy owner"], "nowhere: no SOP store here (no such folder)"),
    ("sop mine", ["--out", "mined", "--corpus", "stage.jsonl"], "stage.jsonl:2: field 'turns.2.sop_stage'"),
    ("sop mine", ["--out", "mined", "--corpus", "latin1.jsonl"], "latin1.jsonl:2: not UTF-8 text"),
    ("sop mine", ["--out", "mined", "--corpus", "calls.jsonl", "--db", "plain"], "plain: the folder holds files and is not an SOP store"),
    ("sop mine", ["--out", "mined", "--corpus", "calls.jsonl", "--executor", "spark"], "--executor 'spark': expected local or ray"),
    ("sop mine", ["--out", "mined", "--corpus", "calls.jsonl", "--ray-workers", "2"], "--ray-workers: only with --executor ray (this run is local)"),
    ("train customer-sft", ["--data", "d_sim.jsonl", "--out", "adapter"], "d_sim.jsonl:3: field 'prompt': missing or not a string"),
    ("train customer-grpo", ["--data", "d_sim.jsonl", "--out", "adapter"], "d_sim.jsonl:3: field 'prompt'"),
    ("train profile-sft", ["--data", "d_gen.jsonl", "--out", "adapter"], "d_gen.jsonl:1: field 'prompt': expected a list of chat messages"),
    ("profiles generate", ["--out", "p.jsonl", "--spec", "spec.yaml"], "spec.yaml:3: spec file is not valid YAML"),
    ("profiles generate", ["--out", "p.jsonl", "--archetype", "status-quo", "--presets", "presets.yaml"], "presets.yaml:1: the presets file is not UTF-8 text"),
    ("profiles generate", ["--out", "p.jsonl", "--archetype", "status-quo", "--examples", "latin1.jsonl"], "latin1.jsonl:2"),
    ("discriminator data", ["--out", "pairs", "--corpus", "latin1.jsonl"], "latin1.jsonl:2: not UTF-8 text"),
    ("discriminator data", ["--out", "pairs", "--negatives", "smollm2"], "missing backend prefix"),
    ("discriminator data", ["--out", "pairs", "--executor", "spark"], "--executor 'spark': expected local or ray"),
    ("discriminator data", ["--out", "pairs", "--ray-gpus-per-worker", "1"], "--ray-gpus-per-worker: only with --executor ray (this run is local)"),
    ("discriminator train", ["--data", "pairs.jsonl", "--out", "disc"], "pairs.jsonl:1: field"),
    ("discriminator score", ["--model", "disc", "--dialogues", "latin1.jsonl"], "latin1.jsonl:2: not UTF-8 text"),
    ("fit", ["--corpus", "latin1.jsonl", "--out", "fitted"], "latin1.jsonl:2: not UTF-8 text"),
    ("fit", ["--corpus", "dup.jsonl", "--out", "fitted"], "dup.jsonl:10: field 'id': duplicate id"),
    ("fit", ["--corpus", "calls.jsonl", "--out", "fitted", "--taxonomy", "taxonomy.yaml"], "taxonomy.yaml:2: the taxonomy file is not UTF-8 text"),
    ("sop propose-stages", ["--corpus", "latin1.jsonl", "--out", "stages.yaml"], "latin1.jsonl:2: not UTF-8 text"),
    ("sop propose-stages", ["--corpus", "empty.jsonl", "--out", "stages.yaml"], "empty.jsonl: 0 distinct salesman moves"),
    ("coherence train", ["--out", "scorer", "--corpus", "latin1.jsonl"], "latin1.jsonl:2: not UTF-8 text"),
    ("coherence train", ["--out", "scorer", "--corpus", "calls.jsonl", "--split", "plain"], "plain/coherence.json: split file not found"),
    ("coherence score", ["--dialogues", "latin1.jsonl"], "latin1.jsonl:2: not UTF-8 text"),
    ("judge train", ["--out", "judge", "--corpus", "latin1.jsonl"], "latin1.jsonl:2: not UTF-8 text"),
    ("judge train", ["--out", "judge", "--corpus", "empty.jsonl"], "empty.jsonl: no dialogues"),
    ("judge train", ["--out", "plain", "--corpus", "calls.jsonl"], "plain: exists and is not a judge folder"),
    ("coherence score", ["--dialogues", "calls.jsonl", "--model", "plain"], "plain: not a coherence scorer folder"),
    ("report", ["run_ok", "--coherence", "plain"], "plain: not a coherence scorer folder"),
    ("probe", ["plain"], "plain: not a sim folder"),
    ("probe", ["run_ok", "--customer", "smollm2"], "run_ok: not a sim folder"),
    # Artifacts we wrote, damaged: one error (file, what is wrong, the command that rebuilds it) whichever command reads them.
    ("coherence score", ["--dialogues", "calls.jsonl", "--model", "torn_scorer"], "torn_scorer/head.npz: damaged or foreign, cannot be read as the coherence scorer (File is not a zip file); rebuild it: grouped-sim coherence train"),
    ("report", ["run_ok", "--coherence", "torn_scorer"], "torn_scorer/head.npz: damaged or foreign"),
    ("report", ["run_ok", "--discriminator", "torn_realism"], "torn_realism/head.npz: damaged or foreign, cannot be read as the realism scorer"),
    ("probe", ["sim_torn"], "sim_torn/coherence/judge/head.npz: damaged or foreign"),
    ("probe", ["sim_torn"], "sim_torn/coherence/judge, then rerun grouped-sim fit --corpus"),
    ("simulate", ["--out", "o", "--sim", "sim_dyn", "--mode", "prompt-only"], "sim_dyn/dynamics.json: not the sim folder's fitted dynamics this grouped-sim writes"),
    ("sop query", ["--db", "torn_store", "--profile", "busy owner"], "torn_store: damaged or foreign, cannot be read as the SOP store"),
    ("report", ["run_lost"], "run_lost/dialogues.jsonl: holds 0 of the 3 dialogues run.json records"),
    ("report", ["run_torn"], "rebuild it: grouped-sim simulate --resume run_torn"),
    ("discriminator train", ["--head", "--data", "pairs_meta", "--out", "head"], "pairs_meta/meta.json: expected a JSON object; rebuild it: grouped-sim discriminator data"),
    ("probe", ["sim_ok", "--n", "2", "--out", "probe_other"], "probe_other/fitted: holds a probe of other customers or settings (another --n"),
    ("probe", ["sim_ok", "--executor", "spark"], "--executor 'spark': expected local or ray"),
    ("probe", ["sim_ok", "--ray-address", "auto"], "--ray-address: only with --executor ray (this run is local)"),
    ("simulate", ["--resume", "run_ckpt"], "run_ckpt/checkpoints.sqlite: damaged or foreign, cannot be read as the checkpoint database"),
    ("compare", ["run_foreign_report", "run_ok"], "run_foreign_report/report.json: not the report this grouped-sim writes (field 'units.simulated'"),
    # Wrong words and codes (issue 25).
    ("report", ["run_ok", "--fail-under", "conversion=1.5"], "conversion is a share of calls, from 0 to 1"),
    ("report", ["run_ok", "--fail-over", "walk_away=-1"], "walk_away is a share of calls, from 0 to 1"),
    ("simulate", ["--out", "o", "--plan-from", "nope"], "--plan-from nope: no such run folder"),
    ("compare", ["run_ok"], "compare needs two or more run folders (got 1)"),
    ("compare", ["run_ok", "nowhere"], "nowhere: run folder not found"),
    ("simulate", ["--out", "o", "--config", "order.yaml", "--mode", "prompt-only"], "order.yaml: field 'manager': hang_up_below (0.9) must be below agree_above (0.5)"),
    ("simulate", ["--out", "o", "--config", "lean.yaml", "--mode", "prompt-only"], "lean.yaml: field 'customer': engine: lean was removed"),
    ("profiles generate", ["--out", "p.jsonl", "--spec", "spec_bogus.yaml"], "spec_bogus.yaml: archetype 'bogus': unknown"),
    ("report", ["run_ok", "--reference", "unterminated.jsonl"], "unterminated.jsonl:4: field '<json>': not valid JSON (Unterminated string starting at column"),
    ("sop mine", ["--out", "mined", "--corpus", "onebad.jsonl"], "onebad.jsonl: 1 bad line (listed above)"),
    ("models check", ["nope"], "no embedded model called 'nope'"),
    ("models list", ["extra"], "unexpected extra argument"),
    ("models warm", ["extra"], "unexpected extra argument"),
    ("train export-lora", ["--adapter", "nowhere", "--out", "a.gguf"], "--adapter nowhere: no such folder"),
]


def _tree(root: Path) -> list[tuple[str, int, int]]:
    return sorted((str(p.relative_to(root)), p.stat().st_size if p.is_file() else -1, p.stat().st_mtime_ns if p.is_file() else 0) for p in root.rglob("*"))


@pytest.fixture()
def no_models(monkeypatch):
    import grouped_sim.embeddings as embeddings
    import grouped_sim.models.local as local

    def refuse(*args, **kwargs):
        raise Loaded()

    monkeypatch.setattr(local, "load_weights", refuse)
    monkeypatch.setattr(embeddings, "get_encoder", refuse)
    monkeypatch.delenv("GROUPED_SIM_SERVE_KEY", raising=False)


@pytest.mark.parametrize(("command", "args", "expected"), ROWS, ids=[f"{c}-{i}" for i, (c, _, _) in enumerate(ROWS)])
def test_bad_input_exits_2_with_a_clear_message_and_writes_nothing(command: str, args: list[str], expected: str, world: Path, no_models, monkeypatch, capsys) -> None:
    monkeypatch.chdir(world)
    before = _tree(world)
    result = invoke([*command.split(), *args], capsys)
    assert result.traceback is None, result.traceback
    assert result.code == 2, f"exit {result.code}: {result.output[-600:]}"
    assert expected in result.output, result.output[-600:]
    assert _tree(world) == before, "the command wrote something"


def test_every_command_has_a_row() -> None:
    import typer

    from grouped_sim.cli.app import app

    def walk(command, prefix=()):
        subcommands = getattr(command, "commands", None)  # a group (typer's own click types)
        if subcommands:
            for name, sub in subcommands.items():
                yield from walk(sub, (*prefix, name))
        else:
            yield " ".join(prefix)

    commands = set(walk(typer.main.get_command(app)))
    assert commands - {c for c, _, _ in ROWS} == set()
    assert len(commands) >= 14


# The served customer's API walked with bad requests: an OpenAI-shaped 4xx that says what is wrong,
# never an answer to a request it should refuse. (headers, body, status, what the message must say)
HELLO = [{"role": "user", "content": "Hi, is this the owner? It's Alex from QuickBite."}]
SERVE_ROWS: list[tuple[dict[str, str], dict, int, str]] = [
    ({"Authorization": "k"}, {"model": "customer-0", "messages": HELLO}, 401, "send 'Authorization: Bearer KEY'"),  # the key without "Bearer "
    ({"Authorization": "Basic k"}, {"model": "customer-0", "messages": HELLO}, 401, "send 'Authorization: Bearer KEY'"),
    ({"Authorization": "Bearer k"}, {"model": "customer-0"}, 400, "messages: Field required"),
    ({"Authorization": "Bearer k"}, {"model": "customer-0", "messages": []}, 400, "messages: List should have at least 1 item"),
]


@pytest.fixture(scope="module")
def served(corpus):
    from tests.runtime.test_serve_limits import _app, _service
    from tests.runtime.test_servers import serving

    with serving(_app(_service(corpus), key="k")) as url:
        yield url


@pytest.mark.parametrize(("headers", "body", "status", "expected"), SERVE_ROWS, ids=[f"serve-http-{i}" for i in range(len(SERVE_ROWS))])
def test_serve_refuses_bad_requests_with_a_clear_openai_error(headers, body, status, expected, served) -> None:
    import httpx

    answer = httpx.post(f"{served}/v1/chat/completions", json=body, headers=headers, timeout=10)
    assert answer.status_code == status, answer.text
    assert set(answer.json()) == {"error"} and expected in answer.json()["error"]["message"], answer.text


def test_a_correct_key_is_still_served(served) -> None:
    import httpx

    answer = httpx.post(f"{served}/v1/chat/completions", json={"model": "customer-0", "messages": HELLO}, headers={"Authorization": "bearer k"}, timeout=10)
    assert answer.status_code == 200 and answer.json()["choices"][0]["message"]["content"]
