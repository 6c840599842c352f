"""report.html: one self-contained page (inline CSS, inline SVG, a few lines of inline JS).

Nothing is fetched from the network, so the page opens from a file, an e-mail attachment or a CI
artifact. Sections: headline table (simulated vs real), plots, judge and likeness details, and a
browsable, filterable list of every dialogue with each turn's stage, latent state and action.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from html import escape
from typing import Any

from grouped_sim.report import svg
from grouped_sim.report.compute import METRICS, flat_metrics, reference_metrics
from grouped_sim.schemas import Dialogue, Outcome

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#1f3b5c;color:#fff;padding:16px 28px}header h1{margin:0 0 4px;font-size:22px}
header p{margin:2px 0;font-size:13px;opacity:.9}main{padding:12px 28px 40px;max-width:1200px}
h2{border-bottom:2px solid #1f3b5c;padding-bottom:4px;margin-top:28px;font-size:18px}
table{border-collapse:collapse;font-size:13px;background:#fff}th,td{border:1px solid #ddd;padding:4px 8px;text-align:left}
th{background:#eef2f7}td.num{text-align:right;font-variant-numeric:tabular-nums}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(460px,1fr));gap:16px}
figure.wide{grid-column:1/-1}figure.wide svg{max-width:900px}figure{background:#fff;border:1px solid #ddd;margin:0;padding:8px}figcaption{font-size:13px;font-weight:600;margin-bottom:4px}
.note{font-size:12px;color:#666}details{background:#fff;border:1px solid #ddd;margin:4px 0;padding:4px 8px}
summary{cursor:pointer;font-size:13px}.turn-salesman td:first-child{color:#2f6db5}.turn-customer td:first-child{color:#e07b39}
.tag{display:inline-block;padding:0 6px;border-radius:8px;font-size:11px;background:#eef2f7;margin-left:4px}
.o-agreed{background:#d6f0dc}.o-hung_up,.o-refused{background:#f6d8d5}.o-callback{background:#fbecc9}
#filter{padding:4px 8px;width:320px;font-size:13px}
"""

SCRIPT = """
document.getElementById('filter').addEventListener('input', function (e) {
  var q = e.target.value.toLowerCase();
  document.querySelectorAll('#dialogues details').forEach(function (d) {
    d.style.display = d.textContent.toLowerCase().indexOf(q) >= 0 ? '' : 'none';
  });
});
"""


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3f}"
    return escape(str(value))


def _headline(report: dict[str, Any]) -> str:
    sim, ref = flat_metrics(report), reference_metrics(report)
    has_ref = report.get("reference") is not None
    rows = []
    for key, label, _, better in METRICS:
        if sim[key] is None and ref.get(key) is None:
            continue
        hint = {"up": "higher is better", "down": "lower is better", "ref": "closer to real is better", "zero": "closer to 0 is better"}.get(better, "")
        cells = f'<td>{escape(label)}</td><td class="num">{_fmt(sim[key])}</td>'
        if has_ref:
            cells += f'<td class="num">{_fmt(ref.get(key))}</td>'
        rows.append(f'<tr>{cells}<td class="note">{hint}</td></tr>')
    head = "<tr><th>metric</th><th>simulated</th>" + ("<th>real</th>" if has_ref else "") + "<th></th></tr>"
    return f"<table>{head}{''.join(rows)}</table>"


def _plots(report: dict[str, Any]) -> str:
    has_ref = report.get("reference") is not None
    figs: list[tuple[str, ...]] = []
    lengths = report["distributions"]["reply_lengths"]
    figs.append(("Customer reply length", svg.histogram({"simulated": lengths["simulated"], **({"real": lengths["reference"]} if has_ref else {})}, "reply lengths", "words per customer reply"), "Share of customer replies per length bin."))
    div = report["diversity"]
    irs_series = {"simulated": [(p["turn"], p["irs"]) for p in div["simulated"]["irs_by_turn"]]}
    if has_ref and div["reference"]:
        irs_series["real"] = [(p["turn"], p["irs"]) for p in div["reference"]["irs_by_turn"]]
    figs.append(("IRS by turn (sliding window)", svg.lines(irs_series, "IRS by turn", "customer turn", "IRS", y_max=1.0), f"Window of {div['simulated']['irs_window']} adjacent pairs; a falling curve means the customer repeats itself."))
    taxonomy = report.get("taxonomy") or []
    sim_counts = div["simulated"]["stage_counts"]
    stages = [s for s in taxonomy if s in sim_counts or (has_ref and s in (div["reference"] or {}).get("stage_counts", {}))] or list(sim_counts)
    stage_series = {"simulated": _shares(sim_counts, stages)}
    if has_ref and div["reference"]:
        stage_series["real"] = _shares(div["reference"]["stage_counts"], stages)
    figs.append(("SOP stage coverage", svg.grouped_bars(stages, stage_series, "SOP stage coverage", "share of turns"), "Share of turns at each stage of the taxonomy.", "wide"))
    mix = report["fidelity"]["outcome_mix"]
    outcomes = [o.value for o in Outcome]
    if mix["simulated"]:
        out_series = {"simulated": [mix["simulated"][o] for o in outcomes]}
        if mix.get("reference"):
            out_series["real"] = [mix["reference"][o] for o in outcomes]
        figs.append(("Outcome mix", svg.grouped_bars(outcomes, out_series, "outcome mix", "share of calls", y_max=1.0), "How calls ended."))
    for traj in report.get("trajectories", []):
        pts = traj["points"]
        chart = svg.lines(
            {k: [(p["turn"], p[k]) for p in pts] for k in ("interest", "trust", "patience")},
            f"state of {traj['dialogue_id']}", "customer turn", "score", y_max=1.0, width=460, height=200,
        )
        figs.append((f"State: {traj['dialogue_id']}", chart, f"{traj.get('archetype') or ''} → {traj['outcome']}; intents: {' → '.join(p['intent'] for p in pts)}"))
    return '<div class="grid">' + "".join(
        f"<figure class='{fig[3] if len(fig) > 3 else ''}'><figcaption>{escape(fig[0])}</figcaption>{fig[1]}<div class='note'>{escape(fig[2])}</div></figure>" for fig in figs
    ) + "</div>"


def _shares(counts: dict[str, int], stages: Sequence[str]) -> list[float]:
    total = sum(counts.values()) or 1
    return [counts.get(s, 0) / total for s in stages]


def _judge(report: dict[str, Any]) -> str:
    judge = report.get("judge")
    if not judge:
        return "<p class='note'>No judge was run (pass <code>--judge SPEC</code>).</p>"
    rows = []
    for name, dim in judge["dimensions"].items():
        crit = ", ".join(f"{k} {_fmt(v)}" for k, v in dim["criteria"].items())
        rows.append(f"<tr><td>{escape(name)}</td><td class='num'>{_fmt(dim['score'])}</td><td>{crit}</td><td class='num'>{dim['missing']}</td></tr>")
    return f"<p>Judge: <code>{escape(str(judge.get('judge')))}</code>, {judge['dialogues']} dialogues.</p><table><tr><th>dimension</th><th>score (0-10)</th><th>criteria</th><th>missing</th></tr>{''.join(rows)}</table>"


def _likeness(report: dict[str, Any]) -> str:
    like = report.get("likeness")
    if not like:
        return "<p class='note'>No teacher-forced replay was run (pass <code>--likeness N</code> with <code>--reference</code>).</p>"
    rows = "".join(f"<tr><td>{k}</td><td class='num'>{_fmt(like[k]['mean'])}</td><td class='num'>{_fmt(like[k]['std'])}</td></tr>" for k in ("bleu4", "rouge1", "rouge2", "rougeL", "embedding_cosine"))
    return f"<p>{like['evaluated']} of {like['pairs']} real customer turns compared (customer model <code>{escape(str(like.get('customer')))}</code>).</p><table><tr><th>score</th><th>mean</th><th>std</th></tr>{rows}</table>"


def _state_cell(turn: Any) -> str:
    if turn.state is None:
        return ""
    s = turn.state
    return f"i {s.interest:.2f} · t {s.trust:.2f} · p {s.patience:.2f} · {s.intent.value}"


def _dialogues(dialogues: Sequence[Dialogue]) -> str:
    items = []
    for d in dialogues:
        rows = "".join(
            f"<tr class='turn-{t.role}'><td>{t.role}</td><td>{escape(t.text)}</td><td>{escape(t.sop_stage or '')}</td><td>{_state_cell(t)}</td><td>{escape(t.action.value if t.action else '')}</td></tr>"
            for t in d.turns
        )
        archetype = d.profile.archetype if d.profile and d.profile.archetype else ""
        profile = f"<p class='note'>{escape(d.profile.as_text())}</p>" if d.profile else ""
        ending = d.termination_reason.value if d.termination_reason else ""
        items.append(
            f"<details><summary><code>{escape(d.id)}</code> <span class='tag o-{d.outcome.value}'>{d.outcome.value}</span>"
            f"<span class='tag'>{escape(d.domain)}</span><span class='tag'>{escape(archetype)}</span><span class='tag'>{escape(ending)}</span>"
            f" {len(d.turns)} turns</summary>{profile}<table><tr><th>role</th><th>text</th><th>stage</th><th>state</th><th>action</th></tr>{rows}</table></details>"
        )
    return "".join(items)


def render_html(report: dict[str, Any], dialogues: Sequence[Dialogue]) -> str:
    run = report.get("run") or {}
    models = run.get("models") or {}
    config = run.get("config") or {}
    ref = report.get("reference")
    subtitle = " · ".join(
        x
        for x in (
            f"run {run.get('dir', '')}",
            f"mode {config.get('mode', '?')}",
            f"customer {models.get('customer', '?')}",
            f"salesman {models.get('salesman', '?')}",
            f"manager {models.get('manager', '?')}",
            f"config {run.get('config_digest', '?')}",
        )
    )
    ref_line = f"reference: {escape(str(ref['name']))} ({ref['dialogues']} real dialogues)" if ref else "no reference corpus (pass --reference F for the real-vs-simulated figures)"
    data = escape(json.dumps({k: report[k] for k in ("summary", "reference")}, default=str))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>grouped-sim report</title><style>{CSS}</style></head>
<body data-summary="{data}">
<header><h1>grouped-sim report</h1><p>{escape(subtitle)}</p><p>{ref_line}</p>
<p>{report['summary']['dialogues']} dialogues · {report['summary']['customer_turns']} customer turns · generated {escape(report['generated_at'])}</p></header>
<main>
<section id="summary"><h2>Headline figures</h2>{_headline(report)}
<p class="note">TLV: variance of customer reply lengths within a call. IRS: 1 − mean similarity of adjacent customer replies. SNR: share of SOP stages a call visits. Walk-away: calls the customer ended by hanging up or refusing. Depth bias: how much deeper into the sales funnel simulated non-buyers sit than real ones (papers/003). See docs/evaluation.md.</p></section>
<section id="plots"><h2>Plots</h2>{_plots(report)}</section>
<section id="judge"><h2>Judge</h2>{_judge(report)}</section>
<section id="likeness"><h2>Teacher-forced likeness</h2>{_likeness(report)}</section>
<section id="dialogues"><h2>Dialogues</h2><p><input id="filter" type="search" placeholder="filter by id, outcome, archetype, text ..."></p>{_dialogues(dialogues)}</section>
</main><script>{SCRIPT}</script></body></html>
"""
