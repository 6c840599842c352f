"""report.html: one self-contained page (inline CSS, inline SVG, a few lines of inline JS).

Nothing is fetched from the network, so the page opens from a file, an e-mail attachment or a CI
artifact. Sections: the agent's scorecard (conversion, the funnel and where calls are lost,
objections, habits, pass^k), then the simulator's fidelity (headline table, simulated vs real,
each figure with its 95 % interval and, against real calls, the gap and the noise floor), plots,
judge and likeness details, and a browsable, filterable list of every dialogue with each turn's
stage, latent state and action. `render_compare_html` is the page of `grouped-sim compare --html`.
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
.beyond{font-weight:700;color:#b5443a}.ci{color:#666;font-size:12px}.cards{display:flex;flex-wrap:wrap;gap:10px;margin:8px 0}
.card{background:#fff;border:1px solid #ddd;padding:8px 12px;min-width:150px}.card b{font-size:20px;display:block}
.warnings{background:#fff7e0;border:1px solid #e0b84a;padding:4px 16px;margin-top:16px}.warnings h2{border:0;margin:8px 0 0;font-size:16px}
"""

SCRIPT = """
function openHash() {
  var el = location.hash && document.getElementById(decodeURIComponent(location.hash.slice(1)));
  if (el && el.tagName === 'DETAILS') { el.open = true; el.scrollIntoView(); }
}
window.addEventListener('hashchange', openHash);
openHash();
document.getElementById('filter').addEventListener('input', function (e) {
  var q = e.target.value.toLowerCase();
  document.querySelectorAll('#dialogues details').forEach(function (d) {
    d.style.display = d.textContent.toLowerCase().indexOf(q) >= 0 ? '' : 'none';
  });
});
"""


def warnings_html(warnings: Sequence[str]) -> str:
    """The page's warnings (the same strings as its JSON's `warnings`), first on the page; "" without any."""
    if not warnings:
        return ""
    items = "".join(f"<li>{escape(w)}</li>" for w in warnings)
    return f"<section id='warnings' class='warnings'><h2>Warnings: figures that cannot stand are shown as n/a</h2><ul>{items}</ul></section>"


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3f}"
    return escape(str(value))


def _ci(ci: Sequence[float] | None) -> str:
    return f" <span class='ci'>[{ci[0]:.3f}, {ci[1]:.3f}]</span>" if ci else ""


def _headline(report: dict[str, Any]) -> str:
    """Simulated vs real, each figure with its interval; against real calls the gap, its interval
    and the noise floor (the gap is bold red when it is beyond noise)."""
    from grouped_sim.report.figures import shown

    sim, ref = flat_metrics(report), reference_metrics(report)
    figures = report.get("figures") or {}
    has_ref = report.get("reference") is not None
    rows = []
    for key, label, _, better in METRICS:
        if key in AGENT_KEYS or (sim[key] is None and ref.get(key) is None):
            continue
        hint = {"up": "higher is better", "down": "lower is better", "ref": "closer to real is better", "zero": "closer to 0 is better"}.get(better, "")
        fig = figures.get(key)
        is_gap = bool(fig) and fig.get("kind") in ("gap", "distance")
        own = " class='num beyond'" if is_gap and fig.get("beyond_noise") else " class='num'"  # type: ignore[union-attr]
        cells = f"<td>{escape(label)}</td><td{own}>{_fmt(sim[key])}{_ci(shown(fig)[1])}</td>"
        if has_ref:
            real_value = ref.get(key) if ref.get(key) is not None else (fig.get("real") if fig and fig.get("kind") == "stat" else None)
            real_ci = fig.get("real_ci") if fig and fig.get("kind") == "stat" and real_value is not None else None
            cells += f'<td class="num">{_fmt(real_value)}{_ci(real_ci)}</td>'
            if fig and fig.get("kind") == "stat" and fig.get("gap") is not None:
                mark = " class='num beyond'" if fig.get("beyond_noise") else " class='num'"
                cells += f"<td{mark}>{fig['gap']:+.3f}{_ci(fig.get('ci'))}</td><td class='num'>{_fmt(fig.get('noise_floor'))}</td>"
            elif is_gap:
                what = "the row is the gap" if fig["kind"] == "gap" else "the row is the distance"  # type: ignore[index]
                cells += f"<td class='note'>{what}</td><td class='num'>{_fmt(fig.get('noise_floor'))}</td>"  # type: ignore[union-attr]
            else:
                cells += "<td></td><td></td>"
        rows.append(f'<tr>{cells}<td class="note">{hint}</td></tr>')
    head = "<tr><th>metric</th><th>simulated [95 % CI]</th>" + ("<th>real [95 % CI]</th><th>gap [95 % CI]</th><th>noise floor</th>" if has_ref else "") + "<th></th></tr>"
    note = (
        "<p class='note'>Intervals: 95 % bootstrap over dialogues. Gap: simulated − real; <span class='beyond'>bold red</span> when "
        "its interval excludes 0 and it is larger than the noise floor (the same figure between two random halves of the real calls).</p>"
        if has_ref else "<p class='note'>Intervals: 95 % bootstrap over dialogues.</p>"
    )
    return f"<table>{head}{''.join(rows)}</table>{note}"


AGENT_KEYS = {"conversion", "conversion_with_callback", "cut_off", "exit_turn", "words_per_turn", "talk_ratio", "questions", "pushes_in_a_row"}


def _est(fig: dict[str, Any] | None, side: str = "sim") -> tuple[float | None, float | None, float | None]:
    if not fig or fig.get(side) is None:
        return (None, None, None)
    ci = fig.get(f"{side}_ci") or [None, None]
    return (fig[side], ci[0], ci[1])


def _fig_cell(fig: dict[str, Any] | None, side: str = "sim") -> str:
    value, low, high = _est(fig, side)
    if value is None:
        return "<td class='num'>n/a</td>"
    ci = f" <span class='ci'>[{low:.2f}, {high:.2f}]</span>" if low is not None else ""
    return f"<td class='num'>{value:.3f}{ci}</td>"


def _gap_cell(fig: dict[str, Any] | None) -> str:
    if not fig or fig.get("gap") is None:
        return "<td></td>"
    cls = "num beyond" if fig.get("beyond_noise") else "num"
    ci = fig.get("ci")
    return f"<td class='{cls}'>{fig['gap']:+.3f}" + (f" <span class='ci'>[{ci[0]:+.2f}, {ci[1]:+.2f}]</span>" if ci else "") + "</td>"


def _scorecard(report: dict[str, Any]) -> str:
    card = report.get("scorecard")
    if not card:
        return "<p class='note'>No scorecard in this report (made before report version 2): run <code>grouped-sim report</code> again.</p>"
    has_ref = report.get("reference") is not None
    excluded = card["excluded"]["calls"]
    parts = []
    cards = [("conversion (agreed)", card["conversion"]), ("agreed or callback", card["conversion_with_callback"]), ("walked away", card["walk_away"]),
             ("cut off by max turns", card["cut_off"]), ("salesman turns per call", card["exit_turn"])]
    if card.get("pass_k"):
        k = card["pass_k"]["k"]
        cards.append((f"pass^{k} (agreed in all {k} trials)", card["pass_k"]["conversion"][str(k)]))
    tiles = []
    for label, fig in cards:
        value, low, high = _est(fig)
        shown_value = "n/a" if value is None else f"{value:.2f}"
        ci = f"95 % CI [{low:.2f}, {high:.2f}]" if low is not None else ""
        real = f" · real {fig['real']:.2f}" if has_ref and fig.get("real") is not None else ""
        tiles.append(f"<div class='card'>{escape(label)}<b>{shown_value}</b><span class='ci'>{ci}{real}</span></div>")
    parts.append(f"<div class='cards'>{''.join(tiles)}</div>")
    parts.append(
        f"<p class='note'>{card['calls']} calls scored"
        + (f"; {excluded} left out (errors not blamed on the agent: {escape(json.dumps(card['excluded']['by_whose_error']))})" if excluded else "")
        + (f"; {card['salesman_errors']} ended by the agent's own errors (counted as not converted)" if card["salesman_errors"] else "")
        + ". Intervals: 95 % bootstrap over calls. Definitions: docs/scorecard.md.</p>"
    )
    groups = card["by_archetype"]
    series = {"conversion": [_est(g["conversion"]) for g in groups.values()], "agreed or callback": [_est(g["conversion_with_callback"]) for g in groups.values()]}
    if has_ref:
        series["real: conversion"] = [_est(g["conversion"], "real") for g in groups.values()]
    figs = [("Conversion by archetype, with 95 % intervals", svg.interval_bars([f"{k} (n={g['n']})" for k, g in groups.items()], series, "conversion by archetype", "share of calls", y_max=1.0))]
    funnel = card["funnel"]
    f_series = {"this agent": [_est(funnel["reach"][s]) for s in funnel["stages"]]}
    if has_ref:
        f_series["real salesman"] = [_est(funnel["reach"][s], "real") for s in funnel["stages"]]
    figs.append(("Funnel: share of calls reaching each stage", svg.interval_bars(funnel["stages"], f_series, "funnel", "share of calls", y_max=1.0)))
    parts.append('<div class="grid">' + "".join(f"<figure class='wide'><figcaption>{escape(t)}</figcaption>{c}</figure>" for t, c in figs) + "</div>")
    parts.append("<h3>Conversion by group</h3>" + _group_table(card, has_ref))
    parts.append("<h3>Where calls are lost</h3>" + _lost_table(funnel["lost"]))
    parts.append("<h3>Objections</h3>" + _objections_table(card["objections"]))
    parts.append("<h3>The agent's habits, buyers vs non-buyers</h3>" + _habits_table(card["habits"], has_ref))
    if card.get("pass_k"):
        parts.append("<h3>pass^k</h3>" + _pass_k_table(card["pass_k"]))
    return "".join(parts)


def _group_table(card: dict[str, Any], has_ref: bool) -> str:
    head = "<tr><th>group</th><th>calls</th><th>conversion</th><th>agreed or callback</th><th>walked away</th>" + ("<th>real: conversion</th><th>gap</th>" if has_ref else "") + "</tr>"
    rows = []
    for block, title in (("by_archetype", "archetype"), ("by_tier", "tier"), ("by_domain", "domain")):
        for name, g in card[block].items():
            cells = f"<td>{title}: {escape(name)}</td><td class='num'>{g['n']}</td>{_fig_cell(g['conversion'])}{_fig_cell(g['conversion_with_callback'])}{_fig_cell(g['walk_away'])}"
            if has_ref:
                cells += _fig_cell(g["conversion"], "real") + _gap_cell(g["conversion"])
            rows.append(f"<tr>{cells}</tr>")
    return f"<table>{head}{''.join(rows)}</table><p class='note'>A profile without a difficulty tier is placed in the tier whose buy propensity is nearest its own.</p>"


def _lost_table(lost: dict[str, Any]) -> str:
    if not lost["calls"]:
        return "<p class='note'>No call was lost (no walk-away or refusal).</p>"
    rows = []
    for stage, g in lost["by_stage"].items():
        turns = ", ".join(f"turn {t}: {n}" for t, n in sorted(g["turns"].items(), key=lambda kv: int(kv[0])))
        moves = "".join(
            f"<li><a href='#d-{escape(m['dialogue_id'])}'>{escape(m['dialogue_id'])}</a> (turn {m['turn']}, {escape(m['outcome'])}, {escape(m['archetype'])}): “{escape(m['move'])}”</li>"
            for m in g["moves"]
        )
        rows.append(
            f"<tr><td>{escape(stage)}</td><td class='num'>{g['calls']}</td>{_fig_cell(g['share_of_calls'])}<td class='num'>{g['mean_turn']:.1f}</td>"
            f"<td>{turns}<details><summary>last salesman moves</summary><ul>{moves}</ul></details></td></tr>"
        )
    head = "<tr><th>stage of the last salesman move</th><th>calls lost</th><th>share of all calls</th><th>mean turn</th><th>turns, and the moves</th></tr>"
    return f"<p class='note'>{lost['calls']} calls ended in a walk-away or refusal; grouped by the stage of the agent's last move before it.</p><table>{head}{''.join(rows)}</table>"


def _objections_table(objections: dict[str, Any]) -> str:
    if not objections:
        return "<p class='note'>No objection was raised (or the run has no stage tags or customer states).</p>"
    rows = "".join(
        f"<tr><td>{escape(kind)}</td><td class='num'>{o['raised_calls']}</td>{_fig_cell(o['raised'])}<td class='num'>{_fmt(o['resolved_calls'])}</td>{_fig_cell(o['resolved'])}</tr>"
        for kind, o in objections.items()
    )
    head = "<tr><th>objection</th><th>calls raised</th><th>share of calls</th><th>calls resolved</th><th>resolved, of raised</th></tr>"
    return f"<table>{head}{rows}</table><p class='note'>Raised: the customer's state had it open at some point. Resolved: raised, and no longer open when the call ended.</p>"


def _habits_table(habits: dict[str, Any], has_ref: bool) -> str:
    labels = {"words_per_turn": "salesman words per turn", "talk_ratio": "talk ratio (salesman share of words)", "questions": "questions per call", "pushes_in_a_row": "longest run of pushes (pitch/closing)"}
    rows = []
    for name, h in habits.items():
        cells = f"<td>{labels.get(name, name)}</td>{_fig_cell(h['all'])}{_fig_cell(h['buyers'])}{_fig_cell(h['non_buyers'])}"
        if has_ref:
            cells += _fig_cell(h["all"], "real")
        rows.append(f"<tr>{cells}</tr>")
    head = "<tr><th>habit</th><th>all calls</th><th>buyers (agreed or callback)</th><th>non-buyers (refused or hung up)</th>" + ("<th>real salesman</th>" if has_ref else "") + "</tr>"
    return f"<table>{head}{''.join(rows)}</table>"


def _pass_k_table(pass_k: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><td>pass^{k}</td>{_fig_cell(pass_k['conversion'][k])}{_fig_cell(pass_k['conversion_with_callback'][k])}</tr>" for k in pass_k["conversion"]
    )
    return (
        f"<p class='note'>{pass_k['customers']} customers, {pass_k['k']} or more trials each: pass^k is the chance that k trials of a customer, "
        f"drawn without replacement, all succeed, averaged over customers (tau-bench).</p>"
        f"<table><tr><th>k</th><th>agreed</th><th>agreed or callback</th></tr>{rows}</table>"
    )


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
            f"<details id='d-{escape(d.id)}'><summary><code>{escape(d.id)}</code> <span class='tag o-{d.outcome.value}'>{d.outcome.value}</span>"
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
<main>{warnings_html(report.get("warnings") or [])}
<section id="scorecard"><h2>The agent under test: scorecard</h2>{_scorecard(report)}</section>
<section id="summary"><h2>The simulator's fidelity: headline figures</h2>{_headline(report)}
<p class="note">TLV: variance of customer reply lengths within a call. IRS: 1 − mean similarity of adjacent customer replies. SNR: share of SOP stages a call visits. Walk-away: calls the customer ended by hanging up or refusing. Depth bias: how much deeper into the sales funnel simulated non-buyers sit than real ones (papers/003). See docs/evaluation.md.</p></section>
<section id="plots"><h2>Plots</h2>{_plots(report)}</section>
<section id="judge"><h2>Judge</h2>{_judge(report)}</section>
<section id="likeness"><h2>Teacher-forced likeness</h2>{_likeness(report)}</section>
<section id="dialogues"><h2>Dialogues</h2><p><input id="filter" type="search" placeholder="filter by id, outcome, archetype, text ..."></p>{_dialogues(dialogues)}</section>
</main><script>{SCRIPT}</script></body></html>
"""


def _paired_section(block: dict[str, Any]) -> str:
    from grouped_sim.report.paired import paired_rows

    a, b = block["a"], block["b"]
    rows = [(label, fig["diff"], *(fig["ci"] or [None, None]), fig["beyond_noise"]) for label, fig in paired_rows(block) if fig["diff"] is not None]
    rates = ("conversion", "conversion with callback", "walk away", "cut off")
    groups = [
        ("outcomes: share of calls", [r for r in rows if r[0] in rates]),
        ("exit turn and habits (in their own units)", [r for r in rows if r[0] not in rates and not r[0].startswith("reached ")]),
        ("share of calls reaching each stage", [r for r in rows if r[0].startswith("reached ")]),
    ]
    charts = "".join(
        f"<figure class='wide'><figcaption>{escape(b)} − {escape(a)}: {escape(title)} (filled: beyond noise)</figcaption>"
        f"{svg.forest(chosen, title, f'{b} minus {a}, with 95 % interval')}</figure>"
        for title, chosen in groups
    )
    table_rows = []
    for label, fig in paired_rows(block):
        if fig["diff"] is None:
            continue
        ci = fig["ci"]
        cls = "num beyond" if fig["beyond_noise"] else "num"
        mc = fig.get("mcnemar")
        table_rows.append(
            f"<tr><td>{escape(label)}</td><td class='num'>{_fmt(fig['a'])}</td><td class='num'>{_fmt(fig['b'])}</td>"
            f"<td class='{cls}'>{fig['diff']:+.3f}" + (f" <span class='ci'>[{ci[0]:+.3f}, {ci[1]:+.3f}]</span>" if ci else "") + "</td>"
            f"<td class='num'>{_fmt(fig['noise_floor'])}</td><td class='num'>{mc['p'] if mc else ''}</td></tr>"
        )
    lists = []
    for title, items in (("won", block["won"]), ("lost", block["lost"])):
        entries = "".join(
            f"<li>{escape(r['archetype'])} / {escape(r['tier'])} / {escape(r['domain'])}: {r['a_converted']} → {r['b_converted']} of {r['trials']} trials; "
            f"{escape(r['summary'] or '')} <span class='note'>(" + ", ".join(f"{escape(c['a']['dialogue_id'])} {escape(c['a']['outcome'])} → {escape(c['b']['dialogue_id'])} {escape(c['b']['outcome'])}" for c in r["calls"]) + ")</span></li>"
            for r in items
        )
        lists.append(f"<h3>Customers {escape(b)} {title} ({len(items)})</h3><ul>{entries or '<li>none</li>'}</ul>")
    seeds = "same customers and seeds" if block["same_seeds"] else "same customers, different seeds (paired by customer and trial)"
    lost = "".join(f"<tr><td>{escape(stage)}</td><td class='num'>{n['a']}</td><td class='num'>{n['b']}</td></tr>" for stage, n in block["lost_at"].items())
    return (
        f"<section id='paired-{escape(b)}'><h2>{escape(b)} vs {escape(a)}, paired</h2>"
        f"<p>{block['pairs']} pairs of calls over {block['customers']} customers ({seeds}); left out: {escape(json.dumps(block['excluded']))}; "
        f"unpaired calls: {escape(json.dumps(block['unpaired']))}.</p><div class='grid'>{charts}</div>"
        f"<table><tr><th>figure</th><th>{escape(a)}</th><th>{escape(b)}</th><th>{escape(b)} − {escape(a)} [95 % CI]</th><th>noise floor</th><th>McNemar p</th></tr>{''.join(table_rows)}</table>"
        "<p class='note'>Interval: bootstrap over customers (all trials of a customer together). <span class='beyond'>Bold red</span>: beyond noise "
        f"(the interval excludes 0 and the difference is larger than the same figure between two random halves of {escape(a)}'s customers).</p>"
        f"<h3>Where each loses calls (stage of the agent's last move before a walk-away)</h3><table><tr><th>stage</th><th>{escape(a)}</th><th>{escape(b)}</th></tr>{lost}</table>"
        + "".join(lists) + "</section>"
    )


def render_compare_html(table: dict[str, Any], paired: Sequence[dict[str, Any]] = ()) -> str:
    """The page of `grouped-sim compare --html`: the side-by-side table, then each paired comparison."""
    from grouped_sim.report.compare import HINTS, cell

    head = "<tr><th>metric</th>" + "".join(f"<th>{escape(c)}</th>" for c in table["columns"]) + "</tr>"
    rows = "".join(
        f"<tr><td>{escape((row['label'] + ' ' + HINTS[row['better']]).strip())}</td>" + "".join(f"<td class='num'>{escape(cell(row, c))}</td>" for c in table["columns"]) + "</tr>"
        for row in table["rows"]
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>grouped-sim compare</title><style>{CSS}</style></head>
<body><header><h1>grouped-sim compare</h1><p>{escape(' · '.join(table['columns']))}; baseline: {escape(str(table.get('baseline')))}</p></header>
<main>{warnings_html(table.get("warnings") or [])}{''.join(_paired_section(p) for p in paired)}
<section id="table"><h2>Side by side</h2><table>{head}{rows}</table>
<p class="note">Each value with its [95 % bootstrap interval over dialogues]; Δ: difference to the first run, * when beyond noise (its interval excludes 0 and it exceeds the noise floor).</p></section>
</main></body></html>
"""
