"""A sweep of bad inputs and faults across every command, as a demanding user would try them.

    .venv/bin/python benchmarks/reliability_sweep.py [--limit-seconds 600] [--only SUBSTRING] [--results FILE --label WHAT]

Every case runs the real console entry point in this process (`grouped_sim.cli.app.main`), in a
world folder built once (sample-corpus files, a three-call SOP store, run folders, a sim folder
fitted on 14 calls, copies of the shipped scorers). Model weights and the sentence encoder never
load: a command that reaches them raises `ModelLoad`, which for a valid input means "got past every
check" and for a bad one means "did not stop in time". Four families of cases, every command:

- bad input: malformed lines, wrong encodings, markup in paths, wrong fields and flags;
- damaged artifact: a file grouped-sim wrote, cut short, emptied, zeroed or replaced by another
  program's file (scorer heads and cards, every part of a sim folder, stores, plans, run
  summaries, dialogues, reports, checkpoints, a pairs folder's metadata), through every command
  that reads it: exit 2 naming the file;
- figure that cannot stand: a run of no calls, runs with no customer in common: exit 0 and a
  warning saying so;
- fault: a full disk at each writer, kill -9 mid-run, a second writer, an agent that is down, an
  agent whose code changed, a resume from another folder, checkpoints cut short; these use a fake
  customer model that answers at once.

Each case ends in one verdict:

- clear: the expected exit code, a message naming the file (and the line, where there is one),
  no traceback, and for bad input nothing written anywhere in the world folder;
- recovered: a valid or repaired input went on (reached the models, or finished) as it should;
- poor: the expected exit code, but the message does not name the file or line;
- wrong-exit: another exit code than expected (a bad input accepted, a failure exiting 0, ...);
- traceback: an exception escaped the entry point (what the user sees as a traceback);
- data: something was written on bad input, a temp file was left, or dialogues were lost,
  duplicated or half-written.

Results: a table on stdout and benchmarks/results/reliability_sweep.json.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parent.parent
BAD = b"\xff\xfe"


class ModelLoad(Exception):
    """Raised where model weights or the encoder would load."""


# ---------------------------------------------------------------------------------------- runner


@dataclass
class Outcome:
    code: int | None
    output: str
    trace: str | None
    reached_models: bool


@dataclass
class Case:
    name: str
    command: str
    args: list[str]
    expect: str  # "input" (exit 2), "valid" (reach models or exit 0), "fault" (check decides)
    needles: list[str] = field(default_factory=list)  # texts the message must hold
    check: Callable[[Outcome], str | None] | None = None  # for faults: None (clear) or the verdict
    input_path: str | None = None  # for valid variants: the input that must not be complained about
    setup: Callable[[], Any] | None = None  # context manager factory wrapping the run


@contextlib.contextmanager
def patched(target: Any, name: str, value: Any) -> Iterator[None]:
    old = getattr(target, name)
    setattr(target, name, value)
    try:
        yield
    finally:
        setattr(target, name, old)


def run_cli(args: list[str]) -> Outcome:
    from grouped_sim.cli.app import main

    out, err = io.StringIO(), io.StringIO()
    code: int | None = 0
    trace = None
    reached = False
    argv = sys.argv
    sys.argv = ["grouped-sim", *args]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except ModelLoad:
        code, reached = None, True
    except BaseException:  # noqa: BLE001 - exactly what a user would see as a traceback
        code, trace = None, traceback.format_exc()
    finally:
        sys.argv = argv
    return Outcome(code, " ".join((out.getvalue() + err.getvalue()).split()), trace, reached)


def tree(root: Path) -> dict[str, str]:
    """Every path under root with a hash of its content (Chroma rewrites index files it opens with
    the same bytes, so modification times would count reads as writes)."""
    import hashlib

    return {str(p.relative_to(root)): (hashlib.sha1(p.read_bytes()).hexdigest() if p.is_file() else "dir") for p in root.rglob("*")}


def wrote(before: dict[str, str], after: dict[str, str]) -> bool:
    """Whether anything was created, removed or changed. Inside a store folder that existed before,
    content changes are not counted: Chroma itself adds a row to its acquire_write table and
    rewrites the HNSW length.bin whenever it opens a store, even to read (a file created or removed
    there still counts)."""
    if set(before) != set(after):
        return True
    stores = {k.rsplit("/", 1)[0] + "/" for k in before if k.endswith("/chroma.sqlite3")}
    return any(before[k] != after[k] for k in before if not any(k.startswith(s) for s in stores))


def verdict(case: Case, result: Outcome, written: bool) -> str:
    if result.trace is not None:
        return "traceback"
    if case.expect == "valid":
        # Went on: reached the models, finished, or stopped later on another argument.
        past = result.code == 2 and case.input_path is not None and case.input_path not in result.output
        return "recovered" if result.reached_models or result.code == 0 or past else "wrong-exit"
    if case.expect == "fault":
        return case.check(result) if case.check else "clear"  # type: ignore[return-value]
    if result.reached_models:
        return "wrong-exit"  # a bad input that went on to load models
    if written:
        return "data"
    if result.code != 2:
        return "wrong-exit"
    return "clear" if all(n in result.output for n in case.needles) else "poor"


# ----------------------------------------------------------------------------------------- world


def line(d: Any) -> bytes:
    return d.model_dump_json().encode() + b"\n"


def build_world(w: Path) -> dict[str, Any]:
    from grouped_sim.config import SimulationConfig
    from grouped_sim.corpus import read_corpus
    from grouped_sim.data import sample_corpus_path
    from grouped_sim.graphs.plan import RunPlan, RunSettings, sample_profiles
    import grouped_sim.sop_db.store as stores
    from grouped_sim.sop_db.store import SOPStore

    corpus = read_corpus(sample_corpus_path())
    good = [line(d) for d in corpus[:3]]
    (w / "calls.jsonl").write_bytes(b"".join(good))
    profile = next(d for d in corpus if d.profile).profile
    (w / "profiles.jsonl").write_bytes(profile.model_dump_json().encode() + b"\n")
    (w / "profile.json").write_text(profile.model_dump_json(indent=2), encoding="utf-8")
    # Plain sampling: the run-folder faults are about writing and resuming; a best-of-N picker would
    # load the sentence encoder, which the sweep counts as reaching the models.
    (w / "fast.yaml").write_text("max_turns: 1\nrole_guard_retries: 0\nbest_of: {n: 1}\nruntime: {checkpoint: false, backoff_seconds: 0.0}\n", encoding="utf-8")
    store = w / "store"
    picked = [next(d for d in corpus if d.domain == "food-delivery" and d.profile)] + [d for d in corpus if d.domain == "broadband"][:2]
    if getattr(stores, "build_store", None):
        stores.build_store(str(store), picked)
    else:  # an older tree (the sweep also runs against main, for the before figures)
        SOPStore(store, create=True).upsert_dialogues(picked)
    SOPStore(w / "empty_store", create=True)  # 0 chains, as an older `sop build` of an empty corpus left it
    (w / "plain").mkdir()
    (w / "plain" / "notes.txt").write_text("not a store", encoding="utf-8")
    plan = RunPlan(settings=RunSettings(salesman="hf:smollm2", customer="hf:smollm2"), config=SimulationConfig(mode="prompt-only"), items=sample_profiles(corpus, 2, 0))
    (w / "plan.json").write_text(plan.model_dump_json(), encoding="utf-8")
    (w / "run_ok").mkdir()
    (w / "run_ok" / "dialogues.jsonl").write_bytes(b"".join(good))
    (w / "d_sim.jsonl").write_text(json.dumps({"prompt": "p", "completion": "c", "reference": "r", "context": "x"}) + "\n", encoding="utf-8")
    (w / "d_gen.jsonl").write_text(json.dumps({"prompt": [{"role": "user", "content": "q"}], "completion": [{"role": "assistant", "content": "a"}]}) + "\n", encoding="utf-8")
    pair = {"id": "p1", "dialogue_id": "d1", "turn_index": 1, "domain": "food-delivery", "context": "c", "positive": "r", "negative": "g", "negative_model": "hf:smollm2"}
    (w / "pairs.jsonl").write_text(json.dumps(pair) + "\n" + json.dumps({**pair, "id": "p2"}) + "\n", encoding="utf-8")
    (w / "taxonomy.yaml").write_bytes((ROOT / "sop_db" / "data" / "taxonomy.yaml").read_bytes())
    (w / "presets.yaml").write_bytes((ROOT / "profiles" / "data" / "presets.yaml").read_bytes())
    (w / "spec.yaml").write_text("archetypes: {price-sensitive: 1.0}\n", encoding="utf-8")
    build_artifacts(w, corpus)
    return {"corpus": corpus, "good": good, "profile": profile}


def build_artifacts(w: Path, corpus: list[Any]) -> None:
    """What the artifact cases damage copies of: a sim folder fitted on 14 raw calls (real encoder,
    before loads are refused), the shipped scorers, a finished run with its plan and summary."""
    from grouped_sim.corpus import write_corpus
    from grouped_sim.data import JUDGE_SCORER, REALISM_JUDGE, shipped_scorer_path

    raw = [d.model_copy(update={"profile": None, "meta": {}, "turns": [t.model_copy(update={"sop_stage": None}) for t in d.turns]}) for d in corpus[:14]]
    write_corpus(w / "calls14.jsonl", raw)
    try:
        from grouped_sim.graphs.fit import FitSettings, run_fit
    except ImportError:  # an older tree without fit
        return
    run_fit(FitSettings(corpus=str((w / "calls14.jsonl").resolve())), w / "sim")
    for name, shipped in (("coherence_scorer", JUDGE_SCORER), ("realism_scorer", REALISM_JUDGE)):
        shutil.copytree(shipped_scorer_path(shipped), w / name)


class Files:
    """Makes one corrupted copy of an input per case, in its own folder, before the snapshot."""

    def __init__(self, world: Path) -> None:
        self.world = world
        self.n = 0

    def put(self, name: str, data: bytes | None, folder: bool = False) -> str:
        self.n += 1
        base = self.world / "cases" / f"c{self.n:03d}"
        path = base / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if folder:
            path.mkdir()
        elif data is not None:
            path.write_bytes(data)
        return str(path.relative_to(self.world))

    def copy(self, source: Path, name: str) -> str:
        """A copy of a whole folder (a sim folder, a store, a scorer) in a case folder of its own."""
        self.n += 1
        path = self.world / "cases" / f"c{self.n:03d}" / name
        shutil.copytree(source, path)
        return str(path.relative_to(self.world))


def jsonl_variants(good: list[bytes], wrong_field: bytes, ids: bool) -> list[tuple[str, bytes | None, bool, list[str], str]]:
    """(variant, bytes, is-folder, needle-suffixes, expect) for a JSONL input; needles are appended to the path."""
    first, second = good[0], good[1] if len(good) > 1 else good[0]
    out = [
        ("missing", None, False, [""], "input"),
        ("folder", None, True, [""], "input"),
        ("non-utf8", first + second.replace(b'"', b'"' + BAD, 1)[:-1] + b"\n", False, [":2"], "input"),
        ("bad-json", first + b'{"id": \n', False, [":2"], "input"),
        ("not-object", first + b"[1, 2]\n", False, [":2"], "input"),
        ("wrong-field", first + wrong_field + b"\n", False, [":2"], "input"),
        ("bom", b"\xef\xbb\xbf" + first, False, [":1"], "input"),
        ("crlf", first.rstrip(b"\n") + b"\r\n" + second.rstrip(b"\n") + b"\r\n", False, [], "valid"),
    ]
    if ids:
        out.append(("blank-lines-dup", first + b"\n\n\n\n" + first, False, [":6"], "input"))
    return out


def yaml_variants(good: bytes, wrong_field: bytes) -> list[tuple[str, bytes | None, bool, list[str], str]]:
    return [
        ("missing", None, False, [""], "input"),
        ("folder", None, True, [""], "input"),
        ("non-utf8", good.replace(b"\n", b"\n#" + BAD + b"\n", 1), False, [":2"], "input"),
        ("bad-yaml", b"a: [1\nb: 2\n", False, [":"], "input"),
        ("not-mapping", b"- 1\n- 2\n", False, [""], "input"),
        ("wrong-field", wrong_field, False, [""], "input"),
    ]


# ----------------------------------------------------------------------------------------- cases


def input_cases(w: Path, files: Files, data: dict[str, Any]) -> list[Case]:
    corpus, good = data["corpus"], data["good"]
    bad_turn = json.dumps({"id": "bad-1", "domain": "food-delivery", "turns": [{"role": "narrator", "text": "x"}], "outcome": "refused"}).encode()
    staged = corpus[1].model_copy(update={"turns": [t.model_copy(update={"sop_stage": "haggling"}) for t in corpus[1].turns]})
    profile_line = data["profile"].model_dump_json().encode() + b"\n"
    cases: list[Case] = []

    def jsonl_cases(command: str, make_args: Callable[[str], list[str]], wrong: bytes, ids: bool, lines: list[bytes] | None = None, prefix: str = "") -> None:
        for variant, blob, folder, suffixes, expect in jsonl_variants(lines or good, wrong, ids):
            name = f"{prefix}input.jsonl"
            path = files.put(name, blob, folder)
            needles = [path + s for s in suffixes] if expect == "input" else []
            flag = next((a for a in make_args("X") if a.startswith("--") and make_args("X")[make_args("X").index(a) + 1] == "X"), "")
            cases.append(Case(f"{command} {flag} {variant}".strip(), command, make_args(path), expect, needles, input_path=path))

    # Corpus-shaped inputs of every command that reads one.
    jsonl_cases("simulate", lambda p: ["--out", "o", "--mode", "prompt-only", "--corpus", p], bad_turn, True)
    jsonl_cases("simulate", lambda p: ["--out", "o", "--mode", "prompt-only", "--profiles-file", p], b'{"summary": "A cafe owner", "age": 7}', False, [profile_line, profile_line])
    jsonl_cases("sop build", lambda p: ["--db", "new_db", "--corpus", p], bad_turn, True)
    jsonl_cases("sop mine", lambda p: ["--out", "mined", "--corpus", p], bad_turn, True)
    jsonl_cases("report", lambda p: ["run_ok", "--reference", p], bad_turn, True)
    jsonl_cases("compare", lambda p: ["run_ok", "run_ok", "--names", "a,b", "--reference", p], bad_turn, True)
    jsonl_cases("discriminator data", lambda p: ["--out", "pairs_out", "--corpus", p], bad_turn, True)
    jsonl_cases("discriminator score", lambda p: ["--model", "no_model", "--dialogues", p], bad_turn, True)
    d_sim = (w / "d_sim.jsonl").read_bytes()
    jsonl_cases("train customer-sft", lambda p: ["--data", p, "--out", "adapter"], b'{"prompt": 3, "completion": "c"}', False, [d_sim, d_sim])
    jsonl_cases("train customer-grpo", lambda p: ["--data", p, "--out", "adapter", "--w-pattern", "0"], b'{"prompt": "p", "reference": 3, "context": "c"}', False, [d_sim, d_sim])
    d_gen = (w / "d_gen.jsonl").read_bytes()
    jsonl_cases("train profile-sft", lambda p: ["--data", p, "--out", "adapter"], b'{"prompt": "x", "completion": []}', False, [d_gen, d_gen])
    pairs = (w / "pairs.jsonl").read_bytes()
    jsonl_cases("discriminator train", lambda p: ["--data", p, "--out", "disc"], b'{"id": "p2"}', False, pairs.splitlines(keepends=True))
    jsonl_cases("profiles generate", lambda p: ["--out", "gen.jsonl", "--archetype", "status-quo", "--examples", p], bad_turn, False)  # few-shot examples may repeat
    jsonl_cases("fit", lambda p: ["--corpus", p, "--out", "fitted"], bad_turn, True)
    jsonl_cases("coherence train", lambda p: ["--out", "scorer_out", "--corpus", p], bad_turn, True)
    jsonl_cases("coherence score", lambda p: ["--dialogues", p], bad_turn, True)
    jsonl_cases("sop propose-stages", lambda p: ["--corpus", p, "--out", "stages.yaml"], bad_turn, True)

    # A run's own dialogues.jsonl, read by report and by --resume.
    for variant, blob, folder, suffixes, expect in jsonl_variants(good, bad_turn, True)[2:]:
        run = Path(files.put("run/dialogues.jsonl", blob, folder)).parent
        cases.append(Case(f"report dialogues.jsonl {variant}", "report", [str(run)], expect, [str(run / "dialogues.jsonl") + s for s in suffixes] if expect == "input" else []))
        resumed = Path(files.put("run/dialogues.jsonl", blob, folder)).parent
        (w / resumed / "plan.json").write_bytes((w / "plan.json").read_bytes())
        if variant in ("crlf",):
            continue  # a finished plan: resuming it would run dialogues
        cases.append(Case(f"simulate --resume dialogues.jsonl {variant}", "simulate", ["--resume", str(resumed)], expect, [str(resumed / "dialogues.jsonl") + s for s in suffixes] if expect == "input" else []))

    # Whole JSON documents: plan.json, run.json, report.json, a served profile.
    for variant, blob in [("non-utf8", b'{"settings": ' + BAD + b"}"), ("bad-json", b'{"settings": \n'), ("not-a-plan", b'{"items": 3}'), ("array", b"[]")]:
        run = Path(files.put("run/plan.json", blob)).parent
        cases.append(Case(f"simulate --resume plan.json {variant}", "simulate", ["--resume", str(run)], "input", [str(run / "plan.json")]))
    for variant, blob in [("non-utf8", b"{\n" + BAD + b"}"), ("bad-json", b'{"models": \n'), ("array", b"[1]")]:
        run = Path(files.put("run/run.json", blob)).parent
        (w / run / "dialogues.jsonl").write_bytes(b"".join(good))
        cases.append(Case(f"report run.json {variant}", "report", [str(run)], "input", [str(run / "run.json")]))
    for variant, blob in [("non-utf8", BAD), ("bad-json", b'{"reference": '), ("array", b"[1]"), ("wrong-shape", b'{"reference": 5}')]:
        run = Path(files.put("run/report.json", blob)).parent
        (w / run / "dialogues.jsonl").write_bytes(b"".join(good))
        cases.append(Case(f"compare report.json {variant}", "compare", [str(run), "run_ok"], "input", [str(run / "report.json")]))
    for variant, blob, needle in [
        ("non-utf8", b'{\n "summary": "' + BAD + b'"\n}', ":2"),
        ("missing", None, ""),
        ("array", b"[1]", ""),
        ("domain-42", json.dumps({"profile": data["profile"].model_dump(mode="json"), "domain": 42}).encode(), ""),
        ("bad-field", b'{"summary": "x", "age": 7}', ""),
    ]:
        path = files.put("profile.json", blob)
        cases.append(Case(f"serve --profile {variant}", "serve", ["--profile", path, "--mode", "prompt-only", "--port", str(free_port())], "input", [path + needle]))

    # YAML inputs.
    config_good = (w / "fast.yaml").read_bytes()
    for variant, blob, folder, suffixes, expect in yaml_variants(config_good, b"runtime:\n  concurrency: 0\n"):
        path = files.put("config.yaml", blob, folder)
        cases.append(Case(f"simulate --config {variant}", "simulate", ["--out", "o", "--mode", "prompt-only", "--config", path], expect, [path + s for s in suffixes]))
        path2 = files.put("config.yaml", blob, folder)
        cases.append(Case(f"serve --config {variant}", "serve", ["--profile", "profile.json", "--mode", "prompt-only", "--config", path2, "--port", str(free_port())], expect, [path2 + s for s in suffixes]))
    taxonomy_good = (w / "taxonomy.yaml").read_bytes()
    for variant, blob, folder, suffixes, expect in yaml_variants(taxonomy_good, b"stages: []\n"):
        path = files.put("taxonomy.yaml", blob, folder)
        cases.append(Case(f"report --taxonomy {variant}", "report", ["run_ok", "--taxonomy", path], expect, [path + s for s in suffixes]))
    presets_good = (w / "presets.yaml").read_bytes()
    for variant, blob, folder, suffixes, expect in yaml_variants(presets_good, b"archetypes: 3\n"):
        path = files.put("presets.yaml", blob, folder)
        cases.append(Case(f"profiles generate --presets {variant}", "profiles generate", ["--out", "gen.jsonl", "--archetype", "status-quo", "--presets", path], expect, [path + s for s in suffixes]))
    for variant, blob, folder, suffixes, expect in yaml_variants(taxonomy_good, b"stages: []\n"):
        path = files.put("taxonomy.yaml", blob, folder)
        cases.append(Case(f"fit --taxonomy {variant}", "fit", ["--corpus", "calls.jsonl", "--out", "fitted", "--taxonomy", path], expect, [path + s for s in suffixes], input_path=path))
    for variant, blob, folder, suffixes, expect in yaml_variants((w / "spec.yaml").read_bytes(), b"age_min: 70\nage_max: 20\n"):
        path = files.put("spec.yaml", blob, folder)
        cases.append(Case(f"profiles generate --spec {variant}", "profiles generate", ["--out", "gen.jsonl", "--spec", path], expect, [path + s for s in suffixes]))

    # Names that look like Rich markup.
    for name in ["[bold]calls.jsonl", "[/x]calls.jsonl", "[red]x[/red].jsonl"]:
        path = files.put(name, b'{"id": \n')
        cases.append(Case(f"simulate markup name {name}", "simulate", ["--out", "o", "--mode", "prompt-only", "--corpus", path], "input", [path + ":1"]))
    odd = files.put("[/x]/calls.jsonl", b"[1]\n")
    cases.append(Case("sop build markup folder [/x]", "sop build", ["--db", "new_db", "--corpus", odd], "input", [odd + ":1"]))

    # Stores, specs and flags.
    stage_file = files.put("staged.jsonl", good[0] + line(staged))
    empty = files.put("empty.jsonl", b"\n")
    cases += [
        Case("sop build unknown stage", "sop build", ["--db", "new_db", "--corpus", stage_file], "input", [stage_file + ":2", "sop_stage"]),
        Case("sop build empty corpus", "sop build", ["--db", "new_db", "--corpus", empty], "input", [empty, "no dialogues"]),
        Case("sop build into a folder of notes", "sop build", ["--db", "plain", "--corpus", "calls.jsonl"], "input", ["plain"]),
        Case("sop build --db is a file", "sop build", ["--db", "calls.jsonl"], "input", ["calls.jsonl"]),
        Case("sop mine unknown stage", "sop mine", ["--out", "mined", "--corpus", stage_file], "input", [stage_file + ":2"]),
        Case("sop mine empty corpus", "sop mine", ["--out", "mined", "--corpus", empty], "input", [empty]),
        Case("sop mine --extract bogus", "sop mine", ["--out", "mined", "--extract", "some"], "input", ["--extract"]),
        Case("sop mine --annotator bad spec", "sop mine", ["--out", "mined", "--annotator", "gpt4"], "input", ["gpt4"]),
        Case("sop mine --db is a notes folder", "sop mine", ["--out", "mined", "--corpus", "calls.jsonl", "--db", "plain"], "input", ["plain"]),
        Case("sop mine --labelled non-utf8", "sop mine", ["--out", "mined", "--corpus", "calls.jsonl", "--labelled", files.put("l.jsonl", good[0] + BAD + b"\n")], "input", [":2"]),
        Case("sop query not a store", "sop query", ["--db", "plain", "--profile", "busy"], "input", ["plain"]),
        Case("sop query missing", "sop query", ["--db", "nowhere", "--profile", "busy"], "input", ["nowhere"]),
        Case("sop query a file", "sop query", ["--db", "calls.jsonl", "--profile", "busy"], "input", ["calls.jsonl"]),
        Case("sop query unknown stage", "sop query", ["--db", "store", "--profile", "busy", "--stage", "haggling"], "input", ["haggling"]),
        Case("simulate --sop-db not a store", "simulate", ["--out", "o", "--sop-db", "plain"], "input", ["plain"]),
        Case("simulate --sop-db missing", "simulate", ["--out", "o", "--sop-db", "nowhere"], "input", ["nowhere"]),
        Case("simulate --sop-db a file", "simulate", ["--out", "o", "--sop-db", "calls.jsonl"], "input", ["calls.jsonl"]),
        Case("simulate --sop-db 0 chains", "simulate", ["--out", "o", "--sop-db", "empty_store"], "input", ["empty_store", "0 behaviour chains"]),
        Case("simulate domain not in store", "simulate", ["--out", "o", "--sop-db", "store", "--profiles-file", files.put("p.jsonl", b"\n" + json.dumps({"profile": data["profile"].model_dump(mode="json"), "domain": "insurance"}).encode() + b"\n")], "input", [":2", "insurance"]),
        Case("simulate full mode without a store", "simulate", ["--out", "o"], "input", ["--sop-db"]),
        Case("simulate bad customer spec", "simulate", ["--out", "o", "--mode", "prompt-only", "--customer", "hf-smollm2"], "input", ["hf-smollm2"]),
        Case("simulate unknown backend", "simulate", ["--out", "o", "--mode", "prompt-only", "--customer", "tgi:x"], "input", ["tgi"]),
        Case("simulate bad manager spec", "simulate", ["--out", "o", "--mode", "prompt-only", "--manager", "heavy"], "input", ["heavy"]),
        Case("simulate endpoint without url", "simulate", ["--out", "o", "--mode", "prompt-only", "--salesman", "endpoint:agent"], "input", ["endpoint:agent"]),
        Case("simulate webhook not http", "simulate", ["--out", "o", "--mode", "prompt-only", "--salesman", "webhook:ftp://x"], "input", ["webhook"]),
        Case("simulate python module missing", "simulate", ["--out", "o", "--mode", "prompt-only", "--salesman", "python:no_such_mod_xyz:f"], "input", ["no_such_mod_xyz"]),
        Case("simulate python file missing", "simulate", ["--out", "o", "--mode", "prompt-only", "--salesman", "python:missing.py:f"], "input", ["missing.py"]),
        Case("simulate python no function", "simulate", ["--out", "o", "--mode", "prompt-only", "--salesman", f"python:{ROOT / 'tests' / 'runtime' / 'agents.py'}:nope"], "input", ["nope"]),
        Case("simulate replay corpus missing", "simulate", ["--out", "o", "--mode", "prompt-only", "--salesman", "replay:nothing.jsonl"], "input", ["nothing.jsonl"]),
        Case("simulate key env unset", "simulate", ["--out", "o", "--mode", "prompt-only", "--salesman", "endpoint:a@http://127.0.0.1:9/v1", "--salesman-key-env", "GS_SWEEP_UNSET"], "input", ["GS_SWEEP_UNSET"]),
        Case("simulate key env for a model salesman", "simulate", ["--out", "o", "--mode", "prompt-only", "--salesman-key-env", "HOME"], "input", ["--salesman-key-env"]),
        Case("simulate --mode bogus", "simulate", ["--out", "o", "--mode", "fast"], "input", ["--mode"]),
        Case("simulate --max-turns 0", "simulate", ["--out", "o", "--max-turns", "0"], "input", ["--max-turns"]),
        Case("simulate --resume missing", "simulate", ["--resume", "nowhere"], "input", ["nowhere"]),
        Case("simulate --resume not a run", "simulate", ["--resume", "plain"], "input", ["plain", "plan.json"]),
        Case("simulate --out is a file", "simulate", ["--out", "calls.jsonl", "--mode", "prompt-only"], "input", ["calls.jsonl"]),
        Case("simulate --resume and --out differ", "simulate", ["--resume", "run_ok", "--out", "o"], "input", ["--resume"]),
        Case("simulate without --out", "simulate", ["--mode", "prompt-only"], "input", ["--out"]),
        Case("serve public host without key", "serve", ["--profile", "profile.json", "--host", "0.0.0.0", "--mode", "prompt-only"], "input", ["--api-key"]),
        Case("serve bad customer spec", "serve", ["--profile", "profile.json", "--customer", "smollm2", "--mode", "prompt-only", "--port", str(free_port())], "input", ["smollm2"]),
        Case("serve full mode without store", "serve", ["--profile", "profile.json", "--port", str(free_port())], "input", ["--sop-db"]),
        Case("serve domain not in store", "serve", ["--profile", "profile.json", "--sop-db", "store", "--domain", "insurance", "--port", str(free_port())], "input", ["insurance"]),
        Case("serve port 0", "serve", ["--profile", "profile.json", "--port", "0"], "input", ["--port"]),
        Case("report missing run", "report", ["nowhere"], "input", ["nowhere"]),
        Case("report folder without dialogues", "report", ["plain"], "input", ["plain"]),
        Case("report empty reference", "report", ["run_ok", "--reference", empty], "input", [empty]),
        Case("report unknown reference stage", "report", ["run_ok", "--reference", stage_file], "input", [stage_file + ":2"]),
        Case("report --likeness without reference", "report", ["run_ok", "--likeness", "2"], "input", ["--reference"]),
        Case("report bad judge spec", "report", ["run_ok", "--judge", "gpt-4o"], "input", ["gpt-4o"]),
        Case("report --sop-db not a store", "report", ["run_ok", "--sop-db", "plain"], "input", ["plain"]),
        Case("report --discriminator missing", "report", ["run_ok", "--discriminator", "nowhere"], "input", ["nowhere"]),
        Case("compare names mismatch", "compare", ["run_ok", "run_ok", "--names", "a"], "input", ["--names"]),
        Case("compare duplicate names", "compare", ["run_ok", "run_ok"], "input", ["names"]),
        Case("compare missing run", "compare", ["nowhere", "run_ok"], "input", ["nowhere"]),
        Case("compare missing second run (found before any figure)", "compare", ["run_ok", "nowhere"], "input", ["nowhere"]),
        Case("compare one run", "compare", ["run_ok"], "input", ["two or more run folders"]),
        Case("compare --sop-db missing", "compare", ["run_ok", "run_ok", "--names", "a,b", "--sop-db", "nowhere"], "input", ["nowhere"]),
        Case("profiles generate none of three", "profiles generate", ["--out", "gen.jsonl"], "input", ["exactly one"]),
        Case("profiles generate unknown archetype", "profiles generate", ["--out", "gen.jsonl", "--archetype", "grumpy"], "input", ["grumpy"]),
        Case("profiles generate bad model spec", "profiles generate", ["--out", "gen.jsonl", "--archetype", "status-quo", "--model", "smollm2"], "input", ["smollm2"]),
        Case("profiles generate --sop-db not a store", "profiles generate", ["--out", "gen.jsonl", "--archetype", "status-quo", "--sop-db", "plain"], "input", ["plain"]),
        Case("discriminator data bad negatives spec", "discriminator data", ["--out", "pairs_out", "--negatives", "smollm2"], "input", ["smollm2"]),
        Case("discriminator score missing model", "discriminator score", ["--model", "nowhere", "--dialogues", "calls.jsonl"], "input", ["nowhere"]),
        Case("discriminator train missing data", "discriminator train", ["--data", "nowhere", "--out", "disc"], "input", ["nowhere"]),
        Case("train customer-sft missing data", "train customer-sft", ["--data", "nowhere", "--out", "adapter"], "input", ["nowhere"]),
        Case("train customer-sft empty modules", "train customer-sft", ["--data", "d_sim.jsonl", "--out", "adapter", "--lora-modules", ","], "input", ["--lora-modules"]),
        Case("train customer-grpo missing data", "train customer-grpo", ["--data", "nowhere", "--out", "adapter"], "input", ["nowhere"]),
        Case("train profile-sft missing data", "train profile-sft", ["--data", "nowhere", "--out", "adapter"], "input", ["nowhere"]),
        Case("fit into a folder of notes", "fit", ["--corpus", "calls.jsonl", "--out", "plain"], "input", ["plain"]),
        Case("fit --holdout 1.5", "fit", ["--corpus", "calls.jsonl", "--out", "fitted", "--holdout", "1.5"], "input", ["--holdout"]),
        Case("probe missing folder", "probe", ["nowhere"], "input", ["nowhere"]),
        Case("probe not a sim folder", "probe", ["plain"], "input", ["plain"]),
        Case("probe a run folder", "probe", ["run_ok"], "input", ["run_ok"]),
        Case("probe bad customer spec", "probe", ["plain", "--customer", "smollm2"], "input", ["plain"]),
        Case("simulate --sim not a sim folder", "simulate", ["--out", "o", "--sim", "plain"], "input", ["plain"]),
        Case("serve --sim not a sim folder", "serve", ["--sim", "plain"], "input", ["plain"]),
        Case("serve neither --profile nor --sim", "serve", ["--mode", "prompt-only"], "input", ["--profile"]),
        Case("coherence train --split missing", "coherence train", ["--out", "scorer_out", "--corpus", "calls.jsonl", "--split", "nowhere.json"], "input", ["nowhere.json"]),
        Case("coherence train --split not lists", "coherence train", ["--out", "scorer_out", "--corpus", "calls.jsonl", "--split", files.put("split.json", b'{"train": 3}')], "input", ["split.json"]),
        Case("coherence train --split overlapping", "coherence train", ["--out", "scorer_out", "--corpus", "calls.jsonl", "--split", files.put("split.json", json.dumps({"train": [corpus[0].id], "heldout": [corpus[0].id]}).encode())], "input", ["overlap"]),
        Case("coherence score --model not a scorer", "coherence score", ["--dialogues", "calls.jsonl", "--model", "plain"], "input", ["plain"]),
        Case("sop propose-stages -k 1", "sop propose-stages", ["--corpus", "calls.jsonl", "--out", "stages.yaml", "-k", "1"], "input", ["-k"]),
        Case("sop propose-stages empty corpus", "sop propose-stages", ["--corpus", empty, "--out", "stages.yaml"], "input", [empty]),
        Case("models check unknown name", "models check", ["nope"], "input", ["nope"]),
        Case("models list extra argument", "models list", ["extra"], "input", ["extra"]),
        # Wrong words and codes of issue 25.
        Case("report --fail-under a share above 1", "report", ["run_ok", "--fail-under", "conversion=1.5"], "input", ["conversion", "from 0 to 1"]),
        Case("report --fail-over a negative share", "report", ["run_ok", "--fail-over", "walk_away=-1"], "input", ["walk_away", "from 0 to 1"]),
        Case("simulate --plan-from missing", "simulate", ["--out", "o", "--plan-from", "nowhere"], "input", ["--plan-from nowhere"]),
        Case("simulate hang_up_below above agree_above", "simulate", ["--out", "o", "--mode", "prompt-only", "--config", files.put("order.yaml", b"manager: {hang_up_below: 0.9, agree_above: 0.5}\n")], "input", ["order.yaml", "hang_up_below"]),
        Case("profiles generate --spec unknown archetype", "profiles generate", ["--out", "gen.jsonl", "--spec", files.put("spec.yaml", b"archetypes: {bogus: 1.0}\n")], "input", ["spec.yaml", "bogus"]),
    ]
    return cases


# ------------------------------------------------------------------------------------ artifacts


def damage(data: bytes) -> list[tuple[str, bytes]]:
    """How a file we wrote comes back: cut short, empty, zeroed, or another program's file."""
    return [("truncated", data[: max(1, len(data) // 3)]), ("empty", b""), ("zeroed", b"\0" * len(data)), ("foreign", b"<html><body>not this file</body></html>\n")]


def artifact_cases(w: Path, files: Files, data: dict[str, Any]) -> list[Case]:
    """Files grouped-sim wrote, damaged, through every command that reads them: each must be a
    clear exit 2 naming the damaged file (or its folder), with nothing written."""
    if not (w / "sim").is_dir():
        return []
    cases: list[Case] = []
    agents = ROOT / "tests" / "runtime" / "agents.py"

    def sim_doors(sim: str) -> list[tuple[str, list[str]]]:
        return [
            ("probe", [sim]),
            ("simulate", ["--out", "o", "--sim", sim, "--mode", "prompt-only"]),
            ("serve", ["--sim", sim, "--mode", "prompt-only", "--port", str(free_port())]),
            ("fit", ["--corpus", "calls14.jsonl", "--out", sim]),
        ]

    # The parts of a sim folder: each damaged four ways, read by probe, simulate --sim, serve --sim and a rerun of fit.
    parts = ["fit.json", "split.json", "taxonomy.yaml", "profiles.jsonl", "annotated.jsonl", "dynamics.json", "coherence/judge/head.npz", "coherence/judge/coherence.json", "coherence/picker/head.npz"]
    for part in parts:
        original = (w / "sim" / part).read_bytes()
        for variant, blob in damage(original):
            sim = files.copy(w / "sim", "sim")
            (w / sim / part).write_bytes(blob)
            for command, args in sim_doors(sim):
                needle = sim + "/" + part if command != "fit" or part != "fit.json" else sim
                cases.append(Case(f"{command}: sim folder {part} {variant}", command, args, "input", [needle]))
    # Foreign content of the right syntax: a sim folder's JSON parts with the wrong fields.
    for part, blob in [("dynamics.json", b'{"fitted": true}'), ("split.json", b'{"train": ["x"], "holdout": ["x"]}'), ("fit.json", b'{"settings_digest": 5}')]:
        sim = files.copy(w / "sim", "sim")
        (w / sim / part).write_bytes(blob)
        cases.append(Case(f"probe: sim folder {part} wrong fields", "probe", [sim], "input", [sim + "/" + part]))
    # The sim folder's store.
    store_file = w / "sim" / "sop_db" / "chroma.sqlite3"
    for variant, blob in damage(store_file.read_bytes()):
        sim = files.copy(w / "sim", "sim")
        (w / sim / "sop_db" / "chroma.sqlite3").write_bytes(blob)
        cases.append(Case(f"simulate: sim folder store {variant}", "simulate", ["--out", "o", "--sim", sim], "input", [sim + "/sop_db"]))

    # A store on its own, through every command that opens one.
    for variant, blob in damage((w / "store" / "chroma.sqlite3").read_bytes()):
        store = files.copy(w / "store", "db")
        (w / store / "chroma.sqlite3").write_bytes(blob)
        for command, args in [
            ("sop query", ["--db", store, "--profile", "busy owner"]),
            ("simulate", ["--out", "o", "--sop-db", store]),
            ("report", ["run_ok", "--sop-db", store]),
            ("serve", ["--profile", "profile.json", "--sop-db", store, "--port", str(free_port())]),
            ("profiles generate", ["--out", "gen.jsonl", "--archetype", "status-quo", "--sop-db", store]),
            ("sop build", ["--db", store, "--corpus", "calls.jsonl"]),
        ]:
            cases.append(Case(f"{command}: store chroma.sqlite3 {variant}", command, args, "input", [store]))

    # Scorer folders: the head and the card, through each command that loads them.
    for folder, doors in [
        ("coherence_scorer", [("coherence score", ["--dialogues", "calls.jsonl", "--model"]), ("report", ["run_ok", "--coherence"])]),
        ("realism_scorer", [("report", ["run_ok", "--discriminator"]), ("discriminator score", ["--dialogues", "calls.jsonl", "--model"])]),
    ]:
        card = "coherence.json" if folder.startswith("coherence") else "realism.json"
        for part in ("head.npz", card):
            for variant, blob in damage((w / folder / part).read_bytes()):
                scorer = files.copy(w / folder, "scorer")
                (w / scorer / part).write_bytes(blob)
                for command, args in doors:
                    cases.append(Case(f"{command}: scorer {part} {variant}", command, [*args, scorer], "input", [scorer + "/" + part]))

    # A pairs folder's meta.json (which model wrote the negatives), read by discriminator train --head.
    for variant, blob in damage(json.dumps({"negatives": "hf:smollm2", "source": "calls.jsonl", "params": {}}).encode()) + [("array", b"[1]")]:
        pairs = Path(files.put("pairs/meta.json", blob)).parent
        (w / pairs / "pairs.jsonl").write_bytes((w / "pairs.jsonl").read_bytes())
        cases.append(Case(f"discriminator train --head: meta.json {variant}", "discriminator train", ["--head", "--data", str(pairs), "--out", "head_out"], "input", [str(pairs / "meta.json")]))

    # Run folders: a plan cut short, summaries that disagree with the dialogues, a torn line, a foreign report.
    plan = (w / "plan.json").read_bytes()
    for variant, blob in damage(plan):
        run = Path(files.put("run/plan.json", blob)).parent
        cases.append(Case(f"simulate --resume plan.json {variant}", "simulate", ["--resume", str(run)], "input", [str(run / "plan.json")]))
        cases.append(Case(f"simulate --plan-from plan.json {variant}", "simulate", ["--out", "o2", "--plan-from", str(run), "--salesman", f"python:{agents}:scripted"], "input", [str(run / "plan.json")]))
    good = b"".join(data["good"])
    lost = Path(files.put("run/dialogues.jsonl", good[: good.index(b"\n") + 1])).parent
    (w / lost / "run.json").write_text(json.dumps({"dialogues": 3}), encoding="utf-8")
    cases.append(Case("report: dialogues lost (run.json counts 3, 1 left)", "report", [str(lost)], "input", [str(lost / "dialogues.jsonl"), "run.json records"]))
    cases.append(Case("compare: dialogues lost (run.json counts 3, 1 left)", "compare", ["run_ok", str(lost)], "input", [str(lost / "dialogues.jsonl")]))
    torn = Path(files.put("run/dialogues.jsonl", good[: len(good) - 40])).parent
    (w / torn / "plan.json").write_bytes(plan)
    cases.append(Case("report: torn last line says --resume", "report", [str(torn)], "input", [str(torn / "dialogues.jsonl"), f"--resume {torn}"]))
    foreign = Path(files.put("run/report.json", json.dumps({"reference": None, "summary": {"dialogues": 3}, "units": {"simulated": 5}}).encode())).parent
    (w / foreign / "dialogues.jsonl").write_bytes(good)
    cases.append(Case("compare: report.json with foreign units", "compare", [str(foreign), "run_ok"], "input", [str(foreign / "report.json"), "units.simulated"]))
    return cases


def honest_cases(w: Path, files: Files, data: dict[str, Any]) -> list[Case]:
    """Figures that cannot stand: the command goes on (exit 0) and says so, never prints them bare."""
    good = b"".join(data["good"])
    empty_run = Path(files.put("run/dialogues.jsonl", b"")).parent
    cached = {"reference": None, "summary": {"dialogues": 3}, "units": {"simulated": {}}}
    a = Path(files.put("a/dialogues.jsonl", good)).parent
    (w / a / "report.json").write_text(json.dumps(cached), encoding="utf-8")
    other = [d.model_copy(update={"id": d.id + "-b", "profile": None}) for d in data["corpus"][3:6]]
    b = Path(files.put("b/dialogues.jsonl", b"".join(line(d) for d in other))).parent
    (w / b / "report.json").write_text(json.dumps(cached), encoding="utf-8")

    def said(*needles: str) -> Callable[[Outcome], str | None]:
        return lambda r: ("clear" if all(n in r.output for n in needles) else "poor") if r.code == 0 else "wrong-exit"

    return [
        Case("report of a run with no calls warns every figure is n/a", "report", [str(empty_run), "--discriminator", "none", "--coherence", "none"], "fault", check=said("holds no calls", "n/a")),
        Case("compare of runs without a customer in common says so", "compare", [str(a), str(b), "--names", "a,b"], "fault", check=said("shares no customer", "--plan-from")),
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ----------------------------------------------------------------------------------------- faults


def fake_customer() -> Any:
    from grouped_sim.models.base import LocalChatModel

    class Fake(LocalChatModel):
        @property
        def _llm_type(self) -> str:
            return "sweep-fake"

        def generate_texts(self, prompts: list[str], stop: list[str] | None = None, seed: int | None = None, max_new_tokens: int | None = None) -> list[str]:
            return ["Who is this? I'm busy." for _ in prompts]

    return Fake()


@contextlib.contextmanager
def fake_models() -> Iterator[None]:
    import grouped_sim.app.build as build

    import inspect

    real = build.build_deps
    takes_items = "items" in inspect.signature(real).parameters

    def deps(settings: Any, config: Any, salesman: Any = None, customer: Any = None, items: Any = ()) -> Any:
        return real(settings, config, salesman=salesman, customer=fake_customer(), **({"items": items} if takes_items else {}))

    with patched(build, "build_deps", deps):
        yield


def dialogues_of(path: Path) -> list[dict[str, Any]]:
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    if text and not text.endswith("\n"):
        raise ValueError("half a line")
    return [json.loads(x) for x in text.splitlines() if x.strip()]


REAL_ENCODER: list[Any] = []


def with_encoder(inner: Callable[[], Any]) -> Callable[[], Any]:
    """A fault case that needs the sentence encoder (report computes IRS before it writes)."""

    @contextlib.contextmanager
    def ctx() -> Iterator[None]:
        import grouped_sim.embeddings as embeddings

        with patched(embeddings, "get_encoder", REAL_ENCODER[0]), inner():
            yield

    return ctx


def fault_cases(w: Path) -> list[Case]:
    import grouped_sim.io as gio

    agents = ROOT / "tests" / "runtime" / "agents.py"
    cases: list[Case] = []

    def simulate_args(run: str, n: int = 3, salesman: str = f"python:{agents}:scripted") -> list[str]:
        return ["simulate", "--out", run, "--mode", "prompt-only", "--profiles", str(n), "--config", "fast.yaml", "--salesman", salesman]

    def disk_full_at(predicate: Callable[[str], bool], on_write: bool = False) -> Callable[[], Any]:
        """OSError(ENOSPC) from the writer: os.write (appends, half a line first) or fsync (whole files)."""

        @contextlib.contextmanager
        def ctx() -> Iterator[None]:
            real_write, real_fsync, seen = os.write, os.fsync, {"n": 0}

            def target(fd: int) -> str:
                return os.readlink(f"/proc/self/fd/{fd}")

            def write(fd: int, data: Any) -> int:
                if on_write and predicate(target(fd)):
                    seen["n"] += 1
                    if seen["n"] >= 2:
                        real_write(fd, bytes(data[: len(data) // 2]))
                        raise OSError(errno.ENOSPC, "No space left on device")
                return real_write(fd, data)

            def fsync(fd: int) -> None:
                if not on_write and predicate(target(fd)):
                    raise OSError(errno.ENOSPC, "No space left on device")
                real_fsync(fd)

            with fake_models(), patched(gio.os, "write", write), patched(gio.os, "fsync", fsync):
                yield

        return ctx

    def no_tmp_and(expect_code: int, needle: str, more: Callable[[], str | None] = lambda: None) -> Callable[[Outcome], str | None]:
        def check(r: Outcome) -> str | None:
            if list(w.rglob("*.tmp")):
                return "data"
            problem = more()
            if problem:
                return problem
            if r.code != expect_code:
                return "wrong-exit"
            return "clear" if needle in r.output else "poor"

        return check

    def run_is_whole(run: str, expect: int) -> Callable[[], str | None]:
        def check() -> str | None:
            try:
                got = dialogues_of(w / run / "dialogues.jsonl")
            except ValueError:
                return "data"
            ids = [d["id"] for d in got]
            return "data" if len(ids) != len(set(ids)) or len(ids) < expect else None

        return check

    # A full disk at every writer.
    cases.append(Case("full disk: simulate appending dialogues", "simulate", simulate_args("f1")[1:], "fault", setup=disk_full_at(lambda p: p.endswith("f1/dialogues.jsonl"), on_write=True),
                      check=no_tmp_and(1, "No space left on device", run_is_whole("f1", 1))))
    cases.append(Case("full disk: simulate writing plan.json", "simulate", simulate_args("f2")[1:], "fault", setup=disk_full_at(lambda p: p.endswith("f2/plan.json.tmp")), check=no_tmp_and(1, "plan.json: cannot write it")))
    cases.append(Case("full disk: simulate writing run.json", "simulate", simulate_args("f3")[1:], "fault", setup=disk_full_at(lambda p: p.endswith("f3/run.json.tmp")), check=no_tmp_and(1, "run.json: cannot write it", run_is_whole("f3", 3))))
    for target in ("report.json", "report.html"):
        run = f"rep_{target.split('.')[1]}"

        def prepare(run: str = run) -> None:
            (w / run).mkdir(exist_ok=True)
            shutil.copy(w / "run_ok" / "dialogues.jsonl", w / run / "dialogues.jsonl")

        prepare()
        cases.append(Case(f"full disk: report writing {target}", "report", [run], "fault", setup=with_encoder(disk_full_at(lambda p, t=target: p.endswith(t + ".tmp"))), check=no_tmp_and(1, f"{target}: cannot write it")))
    (w / "rep_cached").mkdir()
    shutil.copy(w / "run_ok" / "dialogues.jsonl", w / "rep_cached" / "dialogues.jsonl")
    # A report compare may reuse (v2: with per-dialogue units), so the fault hits the write, not a model load.
    (w / "rep_cached" / "report.json").write_text(json.dumps({"reference": None, "summary": {"dialogues": 3}, "units": {"simulated": {}, "reference": None}}), encoding="utf-8")
    cases.append(Case("full disk: compare --json", "compare", ["rep_cached", "rep_cached", "--names", "a,b", "--json", "table.json"], "fault", setup=disk_full_at(lambda p: p.endswith("table.json.tmp")), check=no_tmp_and(1, "table.json: cannot write it")))
    cases.append(Case("full disk: compare --markdown", "compare", ["rep_cached", "rep_cached", "--names", "a,b", "--markdown", "table.md"], "fault", setup=disk_full_at(lambda p: p.endswith("table.md.tmp")), check=no_tmp_and(1, "table.md: cannot write it")))
    cases.append(Case("full disk: sop mine mined.jsonl", "sop mine", ["--out", "mine_full", "--corpus", "calls.jsonl", "--db", "mine_full_db"], "fault",
                      setup=disk_full_at(lambda p: p.endswith("mined.jsonl"), on_write=True), check=no_tmp_and(1, "mined.jsonl: cannot write it")))

    # kill -9 mid-run, then resume: each dialogue exactly once.
    def killed_then_resumed() -> Callable[[], Any]:
        @contextlib.contextmanager
        def ctx() -> Iterator[None]:
            driver = (
                "import sys, time\n"
                "sys.argv = ['grouped-sim'] + sys.argv[1:]\n"
                "import grouped_sim.app.build as b\n"
                "from grouped_sim.models.base import LocalChatModel\n"
                "class Slow(LocalChatModel):\n"
                "    @property\n"
                "    def _llm_type(self): return 'slow'\n"
                "    def generate_texts(self, prompts, stop=None, seed=None, max_new_tokens=None):\n"
                "        time.sleep(0.5); return ['Who is this?' for _ in prompts]\n"
                "real = b.build_deps\n"
                "import inspect\n"
                "kw = ['items'] if 'items' in inspect.signature(real).parameters else []\n"
                "b.build_deps = lambda s, c, salesman=None, customer=None, items=(): real(s, c, salesman=salesman, customer=Slow(), **{k: items for k in kw})\n"
                "from grouped_sim.cli.app import main; main()\n"
            )
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            proc = subprocess.Popen([sys.executable, "-c", driver, *simulate_args("killed", 4)], cwd=w, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.time() + 120
            out = w / "killed" / "dialogues.jsonl"
            while time.time() < deadline and proc.poll() is None and not (out.is_file() and out.read_bytes().count(b"\n") >= 1):
                time.sleep(0.05)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            with fake_models():
                yield

        return ctx

    cases.append(Case("kill -9 mid-run, then --resume", "simulate", ["--resume", "killed"], "fault", setup=killed_then_resumed(),
                      check=lambda r: run_is_whole("killed", 4)() or ("clear" if r.code == 0 else "wrong-exit")))

    # A second writer while the first holds the run folder.
    def held(run: str) -> Callable[[], Any]:
        @contextlib.contextmanager
        def ctx() -> Iterator[None]:
            with fake_models():
                run_cli(simulate_args(run, 2)[0:1] + simulate_args(run, 2)[1:])
            hold = "import fcntl, os, sys, time\nfd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\nfcntl.flock(fd, fcntl.LOCK_EX)\nprint('held', flush=True)\ntime.sleep(120)\n"
            proc = subprocess.Popen([sys.executable, "-c", hold, str(w / run / "run.lock")], stdout=subprocess.PIPE, text=True)
            proc.stdout.readline()  # type: ignore[union-attr]
            try:
                yield
            finally:
                proc.kill()
                proc.wait()

        return ctx

    cases.append(Case("second writer on a run folder", "simulate", ["--resume", "held"], "fault", setup=held("held"),
                      check=lambda r: run_is_whole("held", 2)() or ("clear" if r.code == 2 and "is writing this run folder" in r.output else "wrong-exit")))

    # An agent that is down: exit 3 with counts; --retry-failed once it is back.
    @contextlib.contextmanager
    def agent_down() -> Iterator[None]:
        os.environ["GS_TEST_AGENT_DOWN"] = "1"
        try:
            with fake_models():
                yield
        finally:
            os.environ.pop("GS_TEST_AGENT_DOWN", None)

    down_args = simulate_args("down", 2, f"python:{agents}:down_while_flagged")[1:]
    cases.append(Case("agent down: failed run exits non-zero", "simulate", down_args, "fault", setup=agent_down,
                      check=lambda r: "clear" if r.code == 3 and "by whose: salesman 2" in r.output else "wrong-exit"))
    cases.append(Case("agent back: --retry-failed", "simulate", ["--resume", "down", "--retry-failed"], "fault", setup=fake_models,
                      check=lambda r: run_is_whole("down", 2)() or ("clear" if r.code == 0 and not any(d.get("error") for d in dialogues_of(w / "down" / "dialogues.jsonl")) else "wrong-exit")))

    # The agent's code changed between the start and the resume; a resume from another folder.
    def changed_agent() -> Callable[[], Any]:
        @contextlib.contextmanager
        def ctx() -> Iterator[None]:
            shutil.copy(agents, w / "agent_copy.py")
            with fake_models():
                run_cli(["simulate", "--out", "changed", "--mode", "prompt-only", "--profiles", "1", "--config", "fast.yaml", "--salesman", "python:agent_copy.py:scripted"])
            (w / "changed" / "dialogues.jsonl").write_text("", encoding="utf-8")
            with (w / "agent_copy.py").open("a", encoding="utf-8") as handle:
                handle.write("\n# edited\n")
            with fake_models():
                yield

        return ctx

    cases.append(Case("resume after the agent's code changed", "simulate", ["--resume", "changed"], "fault", setup=changed_agent(),
                      check=lambda r: "clear" if r.code == 2 and "code changed" in r.output and dialogues_of(w / "changed" / "dialogues.jsonl") == [] else "wrong-exit"))

    def elsewhere() -> Callable[[], Any]:
        @contextlib.contextmanager
        def ctx() -> Iterator[None]:
            shutil.copy(agents, w / "agent_rel.py")
            with fake_models():
                run_cli(["simulate", "--out", "rel", "--mode", "prompt-only", "--profiles", "1", "--config", "fast.yaml", "--salesman", "python:agent_rel.py:scripted"])
            (w / "rel" / "dialogues.jsonl").write_text("", encoding="utf-8")
            os.chdir(w / "plain")
            try:
                with fake_models():
                    yield
            finally:
                os.chdir(w)

        return ctx

    cases.append(Case("resume from another working directory", "simulate", ["--resume", str(w / "rel")], "fault", setup=elsewhere(),
                      check=lambda r: run_is_whole("rel", 1)() or ("clear" if r.code == 0 else "wrong-exit")))
    # The run's LangGraph checkpoints cut short while a call was left to do: resume must finish the
    # run (the checkpoints only save time) or name the file, never a traceback.
    def torn_checkpoints() -> Callable[[], Any]:
        @contextlib.contextmanager
        def ctx() -> Iterator[None]:
            (w / "ckpt.yaml").write_text((w / "fast.yaml").read_text(encoding="utf-8").replace("checkpoint: false", "checkpoint: true"), encoding="utf-8")
            with fake_models():
                run_cli(["simulate", "--out", "ckpt", "--mode", "prompt-only", "--profiles", "2", "--config", "ckpt.yaml", "--salesman", f"python:{agents}:scripted"])
            kept = (w / "ckpt" / "dialogues.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)[:1]
            (w / "ckpt" / "dialogues.jsonl").write_text("".join(kept), encoding="utf-8")
            db = w / "ckpt" / "checkpoints.sqlite"
            db.write_bytes(db.read_bytes()[: max(1, db.stat().st_size // 3)])
            with fake_models():
                yield

        return ctx

    cases.append(Case("resume with checkpoints.sqlite cut short", "simulate", ["--resume", "ckpt"], "fault", setup=torn_checkpoints(),
                      check=lambda r: run_is_whole("ckpt", 2)() if r.code == 0 else ("clear" if r.code == 2 and "checkpoints.sqlite" in r.output else "wrong-exit")))
    def checkpoints_removed() -> Callable[[], Any]:
        @contextlib.contextmanager
        def ctx() -> Iterator[None]:
            (w / "ckpt" / "checkpoints.sqlite").unlink(missing_ok=True)  # as the error says
            with fake_models():
                yield

        return ctx

    cases.append(Case("checkpoints.sqlite removed as the error says, then --resume", "simulate", ["--resume", "ckpt"], "fault", setup=checkpoints_removed(),
                      check=lambda r: run_is_whole("ckpt", 2)() or ("clear" if r.code == 0 else "wrong-exit")))
    # Rerunning a finished run, and a run folder of another run.
    cases.append(Case("rerun of a finished run loads nothing", "simulate", ["--resume", "down"], "fault", setup=fake_models, check=lambda r: "clear" if r.code == 0 else "wrong-exit"))
    cases.append(Case("another run into the same --out", "simulate", simulate_args("down", 5)[1:], "fault", setup=fake_models,
                      check=lambda r: "clear" if r.code == 2 and "holds a different run" in r.output and len(dialogues_of(w / "down" / "dialogues.jsonl")) == 2 else "wrong-exit"))
    return cases


# ------------------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit-seconds", type=float, default=600.0, help="stop starting new cases after this long")
    parser.add_argument("--only", default=None, help="run only cases whose name contains this")
    parser.add_argument("--results", type=Path, default=RESULTS / "reliability_sweep.json", help="where the JSON results go")
    parser.add_argument("--label", default="this tree", help="what code the sweep ran against (kept in the results)")
    args = parser.parse_args()
    args.results = args.results.resolve()  # the sweep runs inside its world folder

    import grouped_sim.embeddings as embeddings
    import grouped_sim.models.local as local

    started = time.monotonic()
    REAL_ENCODER.append(embeddings.get_encoder)
    base = Path(tempfile.mkdtemp(prefix="gs-sweep-"))
    world = base / "world"
    world.mkdir()
    data = build_world(world)  # builds the store with the real encoder, before loads are refused
    os.chdir(world)
    files = Files(world)
    families = {"bad input": input_cases(world, files, data), "damaged artifact": artifact_cases(world, files, data), "figure that cannot stand": honest_cases(world, files, data), "fault": fault_cases(world)}
    family_of = {id(c): family for family, group in families.items() for c in group}
    cases = [c for group in families.values() for c in group]
    if args.only:
        cases = [c for c in cases if args.only in c.name]

    def refuse(*a: Any, **k: Any) -> Any:
        raise ModelLoad()

    results = []
    with patched(local, "load_weights", refuse), patched(embeddings, "get_encoder", refuse):
        for case in cases:
            if time.monotonic() - started > args.limit_seconds:
                results.append({"case": case.name, "command": case.command, "family": family_of[id(case)], "verdict": "not-run"})
                continue
            before = tree(world)
            with case.setup() if case.setup else contextlib.nullcontext():
                result = run_cli([*case.command.split(), *case.args])
            after = tree(world)
            written = case.expect == "input" and wrote(before, after)
            if written and os.environ.get("GS_SWEEP_DEBUG"):
                print(case.name, sorted(set(after) ^ set(before)), [k for k in before if k in after and before[k] != after[k]])
            v = verdict(case, result, written)
            results.append({"case": case.name, "command": case.command, "family": family_of[id(case)], "verdict": v, "exit": result.code, "message": result.output[-300:], "traceback": (result.trace or "")[-1200:] or None})
    shutil.rmtree(base, ignore_errors=True)

    counts = Counter(r["verdict"] for r in results)
    by_command: dict[str, Counter[str]] = {}
    for r in results:
        by_command.setdefault(r["command"], Counter())[r["verdict"]] += 1
    width = max(len(c) for c in by_command)
    print(f"{'command':<{width}}  cases  clear  recovered  poor  wrong-exit  traceback  data")
    for command, c in sorted(by_command.items()):
        print(f"{command:<{width}}  {sum(c.values()):>5}  {c['clear']:>5}  {c['recovered']:>9}  {c['poor']:>4}  {c['wrong-exit']:>10}  {c['traceback']:>9}  {c['data']:>4}")
    print(f"{'all':<{width}}  {len(results):>5}  {counts['clear']:>5}  {counts['recovered']:>9}  {counts['poor']:>4}  {counts['wrong-exit']:>10}  {counts['traceback']:>9}  {counts['data']:>4}")
    by_family: dict[str, Counter[str]] = {}
    for r in results:
        by_family.setdefault(r["family"], Counter())[r["verdict"]] += 1
    for family, c in by_family.items():
        print(f"  {family}: {sum(c.values())} cases, " + ", ".join(f"{k} {v}" for k, v in sorted(c.items())))
    for r in results:
        if r["verdict"] not in ("clear", "recovered"):
            print(f"  {r['verdict']}: {r['case']} (exit {r['exit']}): {r['message'][-200:]}")
            if r.get("traceback"):
                print("    " + r["traceback"].strip().splitlines()[-1])
    args.results.parent.mkdir(parents=True, exist_ok=True)
    payload = {"code": args.label, "cases": len(results), "verdicts": dict(counts), "by_command": {k: dict(v) for k, v in by_command.items()}, "by_family": {k: dict(v) for k, v in by_family.items()}, "seconds": round(time.monotonic() - started, 1), "results": results}
    args.results.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{len(results)} cases in {payload['seconds']} s; results in {args.results}")


if __name__ == "__main__":
    main()
