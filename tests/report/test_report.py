"""report.json content, the side-by-side table, the HTML page and the teacher-forced replay loop."""

from __future__ import annotations

import json
import re

import pytest

from grouped_sim.report.compare import REAL, comparison, to_markdown
from grouped_sim.report.compute import compute_report, fill_stages, flat_metrics
from grouped_sim.report.html import render_html
from grouped_sim.report.teacher import replay_targets, teacher_forced_pairs

TAXONOMY = ["opening", "pitch", "price_objection", "goodbye"]


def test_report_has_every_figure_and_real_vs_simulated_gaps(sim_run, real_run, embed):
    report = compute_report(sim_run, taxonomy_ids=TAXONOMY, reference=real_run, reference_name="real.jsonl", embed_fn=embed, run_info={"config": {"mode": "full"}})
    json.dumps(report)  # JSON-ready
    assert report["summary"] == {"dialogues": 2, "customer_turns": 5, "errors": 0, "terminations": {"customer_agreed": 1, "customer_hung_up": 1}}
    sim_div = report["diversity"]["simulated"]
    assert sim_div["snr"] == pytest.approx((3 / 4 + 2 / 4) / 2)
    assert sim_div["sop_coverage"] == 1.0
    assert report["diversity"]["reference"]["snr"] is None  # the reference carries no stage labels
    fid = report["fidelity"]
    assert fid["walk_away_rate"] == {"simulated": 0.5, "reference": 1.0, "gap": -0.5}
    assert fid["outcome_mix"]["simulated"]["agreed"] == 0.5
    # lengths: simulated 3, 2, 3, 1, 4 words; real 1, 1, 2, 2, 1
    assert fid["reply_length"]["mean"] == {"simulated": 2.6, "reference": 1.4, "gap": pytest.approx(1.2)}
    assert fid["reply_length"]["wasserstein"] == pytest.approx(1.2)
    assert report["distributions"]["reply_lengths"]["simulated"] == [3, 2, 3, 1, 4]
    assert fid["realism"] is None and report["judge"] is None and report["likeness"] is None
    assert [t["dialogue_id"] for t in report["trajectories"]] == ["s1", "s2"]
    assert report["trajectories"][0]["points"][2] == {"turn": 3, "interest": 0.4, "trust": 0.3, "patience": 0.3, "intent": "resist"}


def test_report_without_reference_or_dialogues(sim_run, embed):
    alone = compute_report(sim_run, taxonomy_ids=TAXONOMY, embed_fn=embed)
    assert alone["reference"] is None
    assert alone["fidelity"]["walk_away_rate"] == {"simulated": 0.5, "reference": None, "gap": None}
    assert alone["fidelity"]["reply_length"]["wasserstein"] is None
    assert alone["diversity"]["reference"] is None
    empty = compute_report([], taxonomy_ids=TAXONOMY, embed_fn=embed)
    assert empty["summary"]["dialogues"] == 0
    assert all(v is None for k, v in flat_metrics(empty).items() if k not in ("dialogues", "tlv_share"))
    assert "grouped-sim report" in render_html(empty, [])


def test_realism_uses_the_injected_scorer(sim_run, real_run, embed):
    def scorer(contexts, replies):
        return [0.9 if len(r.split()) <= 2 else 0.1 for r in replies]

    report = compute_report(sim_run, taxonomy_ids=TAXONOMY, reference=real_run, embed_fn=embed, scorer=scorer, scorer_name="disc")
    # simulated replies of <= 2 words: "who is this"(3) "no time"(2) "not interested, bye"(3) "ok"(1) "how much is it?"(4)
    assert report["fidelity"]["realism"]["simulated"] == pytest.approx((0.1 + 0.9 + 0.1 + 0.9 + 0.1) / 5)
    assert report["fidelity"]["realism"]["reference"] == pytest.approx(0.9)


def test_fill_stages_tags_unlabelled_moves_and_their_replies(real_run):
    tagged, n = fill_stages(real_run, lambda texts: ["pitch" if "0" in t else "goodbye" for t in texts])
    assert n == 10  # 5 salesman moves and the 5 replies that follow them
    assert [t.sop_stage for t in tagged[0].turns] == ["pitch", "pitch", "goodbye", "goodbye"]
    assert real_run[0].turns[0].sop_stage is None  # the input is not modified
    report = compute_report(real_run, taxonomy_ids=TAXONOMY, embed_fn=lambda t: __import__("numpy").eye(len(t), 4), stage_tagger=lambda texts: ["pitch"] * len(texts))
    assert report["diversity"]["simulated"]["snr"] == pytest.approx(0.25)
    assert report["stages_tagged"] == {"simulated": 10, "reference": 0}


def test_comparison_table_puts_runs_and_real_side_by_side(sim_run, real_run, embed):
    full = compute_report(sim_run, taxonomy_ids=TAXONOMY, reference=real_run, reference_name="real", embed_fn=embed)
    prompt_only = compute_report(sim_run[:1], taxonomy_ids=TAXONOMY, reference=real_run, reference_name="real", embed_fn=embed)
    table = comparison({"full": full, "prompt-only": prompt_only})
    assert table["columns"] == ["full", "prompt-only", REAL]
    rows = {r["key"]: r["values"] for r in table["rows"]}
    assert rows["dialogues"] == {"full": 2, "prompt-only": 1, REAL: 2}
    assert rows["walk_away"] == {"full": 0.5, "prompt-only": 1.0, REAL: 1.0}
    shares = rows["tlv_share"]
    assert shares["full"] + shares["prompt-only"] == pytest.approx(1.0)
    assert "judge_pc" not in rows  # no judge ran: the row is left out rather than filled with n/a
    md = to_markdown(table)
    assert md.splitlines()[0] == f"| metric | full | prompt-only | {REAL} |"
    # each value with its 95 % interval; later runs with their difference to the first (* beyond noise)
    assert "| walk-away rate ≈ real | 0.500 [0.000, 1.000] | 1.000 [1.000, 1.000] Δ+0.500 | 1.000 [1.000, 1.000] |" in md


def test_html_is_self_contained_with_every_section(sim_run, real_run, embed):
    report = compute_report(sim_run, taxonomy_ids=TAXONOMY, reference=real_run, reference_name="real.jsonl", embed_fn=embed)
    page = render_html(report, sim_run)
    assert page.startswith("<!DOCTYPE html>")
    # Self-contained: nothing is loaded from elsewhere.
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", page, re.IGNORECASE)
    assert not re.search(r"<link\b|<img\b[^>]*src=\"(?!data:)|@import", page, re.IGNORECASE)
    for section in ("summary", "plots", "judge", "likeness", "dialogues"):
        assert f'<section id="{section}">' in page
    for caption in ("Customer reply length", "IRS by turn", "SOP stage coverage", "Outcome mix", "State: s1"):
        assert caption in page
    assert page.count("<svg") >= 6  # lengths, IRS, stages, outcomes, two state trajectories
    assert page.count("<details id='d-") == 2 and "price_objection" in page and "i 0.40 · t 0.30 · p 0.30 · resist" in page
    assert "&lt;b&gt;busy&lt;/b&gt;" in page and "<b>busy</b>" not in page  # dialogue text is escaped
    assert page.count("<section") == page.count("</section>")


def test_teacher_forced_replay_caches_and_resumes(tmp_path, real_run):
    assert [(d.id, i) for d, i in replay_targets(real_run)] == [("r1", 1), ("r1", 3), ("r2", 1), ("r2", 3), ("r2", 5)]
    calls = []

    def generate(dialogue, index):
        calls.append((dialogue.id, index))
        if len(calls) == 3:
            raise KeyboardInterrupt  # the user stops a long replay
        return f"reply to {dialogue.turns[index - 1].text}"

    cache = tmp_path / "likeness.jsonl"
    with pytest.raises(KeyboardInterrupt):
        teacher_forced_pairs(real_run, generate, "hf:x", cache)
    assert len(cache.read_text().splitlines()) == 2  # the two finished turns were kept
    calls.clear()
    ticks = []
    pairs = teacher_forced_pairs(real_run, lambda d, i: f"reply to {d.turns[i - 1].text}", "hf:x", cache, on_progress=lambda: ticks.append(1))
    assert len(pairs) == 5 and len(ticks) == 5
    assert pairs[0] == ("reply to pitch number 0", "yeah?")
    assert len(cache.read_text().splitlines()) == 5  # only the three missing turns were generated
    other = teacher_forced_pairs(real_run[:1], lambda d, i: "other model", "hf:y", cache)
    assert other[0][0] == "other model"  # a different customer model never reuses these generations
