"""probe.html: the matched-pair probe on one self-contained page (inline CSS and SVG, no network).

For each simulated variant: every figure with its interval next to the noise floor (a gap counts
only when it is larger than the same figure between two halves of the real calls), the
confusion matrix of decisions, and one row per held-out customer with both sides of the call.
"""

from __future__ import annotations

from html import escape
from typing import Any

from grouped_sim.report.html import CSS, warnings_html

LABELS = {
    "decision_agreement": "decision agreement with the real person",
    "walk_away_rate": "walk-away rate (hung up or refused)",
    "agree_rate": "agree rate",
    "callback_rate": "callback rate",
    "exit_turn_w1": "exit turn: Wasserstein to real",
    "reply_length_w1": "reply length (words): Wasserstein to real",
    "nonbuyer_depth_bias": "non-buyers: decision depth, sim vs real",
    "coherence": "coherence: P(reply answers the call)",
}
DECISIONS = ("agreed", "refused", "walked_away", "callback", "undecided")


def _num(value: Any) -> str:
    return "n/a" if value is None else f"{value:.3f}" if isinstance(value, float) else escape(str(value))


def _ci(ci: list[float] | None) -> str:
    return "n/a" if not ci else f"[{ci[0]:.3f}, {ci[1]:.3f}]"


def gap_chart(figures: dict[str, dict[str, Any]]) -> str:
    """Each figure's gap and 95 % interval (dot and bar) against its noise floor (grey band around 0)."""
    rows = [(k, f) for k, f in figures.items() if f.get("gap") is not None and f.get("ci")]
    if not rows:
        return ""
    span = max(max(abs(f["ci"][0]), abs(f["ci"][1]), f.get("noise_floor") or 0.0) for _, f in rows) or 1.0
    width, left, row_h = 760, 300, 26
    x = lambda v: left + (width - left - 20) * (v + span) / (2 * span)  # noqa: E731
    body = [f'<line x1="{x(0):.1f}" y1="0" x2="{x(0):.1f}" y2="{row_h * len(rows)}" stroke="#444"/>']
    for i, (key, f) in enumerate(rows):
        y = i * row_h + row_h / 2
        floor = f.get("noise_floor") or 0.0
        body.append(f'<rect x="{x(-floor):.1f}" y="{y - 8:.1f}" width="{x(floor) - x(-floor):.1f}" height="16" fill="#ddd"/>')
        colour = "#b5443a" if f.get("beyond_noise") else "#2f6db5"
        body.append(f'<line x1="{x(f["ci"][0]):.1f}" y1="{y:.1f}" x2="{x(f["ci"][1]):.1f}" y2="{y:.1f}" stroke="{colour}" stroke-width="3"/>')
        body.append(f'<circle cx="{x(f["gap"]):.1f}" cy="{y:.1f}" r="4" fill="{colour}"/>')
        body.append(f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{escape(LABELS.get(key, key))}</text>')
    height = row_h * len(rows) + 4
    return f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="gaps and noise floors">{"".join(body)}</svg>'


def _figures_table(figures: dict[str, dict[str, Any]]) -> str:
    head = "<tr><th>figure</th><th>sim</th><th>real</th><th>gap</th><th>95 % interval of the gap</th><th>noise floor</th><th>beyond noise</th></tr>"
    cells = []
    for key, f in figures.items():
        if f.get("why"):
            cells.append(f"<tr><td>{escape(LABELS.get(key, key))}</td><td colspan=6>n/a: {escape(f['why'])}</td></tr>")
            continue
        beyond = {True: "yes", False: "no", None: "n/a"}[f.get("beyond_noise")]
        cells.append(
            f"<tr><td>{escape(LABELS.get(key, key))}</td><td class=num>{_num(f.get('sim'))}</td><td class=num>{_num(f.get('real'))}</td>"
            f"<td class=num>{_num(f.get('gap'))}</td><td class=num>{_ci(f.get('ci'))}</td><td class=num>{_num(f.get('noise_floor'))}</td><td>{beyond}</td></tr>"
        )
    return f"<table>{head}{''.join(cells)}</table>"


def _confusion(confusion: dict[str, dict[str, int]], intervals: dict[str, dict[str, list[float] | None]] | None = None) -> str:
    """Counts of real → simulated decisions; with intervals, each cell's Wilson 95 % interval as a share of its row."""
    head = "<tr><th>real ↓ / simulated →</th>" + "".join(f"<th>{d}</th>" for d in DECISIONS) + "</tr>"

    def cell(real: str, sim: str) -> str:
        ci = (intervals or {}).get(real, {}).get(sim)
        return f"<td class=num>{confusion[real][sim]}{f' <small>{_ci(ci)}</small>' if ci and confusion[real][sim] else ''}</td>"

    body = "".join(f"<tr><th>{real}</th>" + "".join(cell(real, sim) for sim in DECISIONS) + "</tr>" for real in DECISIONS if sum(confusion[real].values()))
    return f"<table>{head}{body}</table>"


def reliability_chart(bins: list[dict[str, Any]]) -> str:
    """Reliability diagram: mean P(agree) of each bin against the share that really agreed (dot
    area: customers in the bin); on the diagonal the probabilities mean what they say."""
    if not bins:
        return ""
    size, pad = 260, 36
    pos = lambda v: pad + (size - 2 * pad) * v  # noqa: E731
    flip = lambda v: size - pos(v)  # noqa: E731
    body = [
        f'<rect x="{pad}" y="{pad}" width="{size - 2 * pad}" height="{size - 2 * pad}" fill="none" stroke="#999"/>',
        f'<line x1="{pos(0):.1f}" y1="{flip(0):.1f}" x2="{pos(1):.1f}" y2="{flip(1):.1f}" stroke="#bbb" stroke-dasharray="4 3"/>',
        f'<text x="{size / 2}" y="{size - 6}" text-anchor="middle" font-size="11">predicted P(agree)</text>',
        f'<text x="12" y="{size / 2}" text-anchor="middle" font-size="11" transform="rotate(-90 12 {size / 2})">share who agreed</text>',
    ]
    biggest = max(b["n"] for b in bins)
    for b in bins:
        radius = 3 + 7 * (b["n"] / biggest) ** 0.5
        body.append(f'<circle cx="{pos(b["predicted"]):.1f}" cy="{flip(b["observed"]):.1f}" r="{radius:.1f}" fill="#2f6db5" fill-opacity="0.7"><title>{b["n"]} customers</title></circle>')
    return f'<svg viewBox="0 0 {size} {size}" width="{size}" role="img" aria-label="reliability diagram">{"".join(body)}</svg>'


def _decisions(check: dict[str, Any] | None) -> str:
    """Rates, agreement and the proper scores of P(agree) with their baselines."""
    if not check:
        return "<p class=note>no decision scores: no held-out real customer decided, or the sim folder has no base rates</p>"
    s = check["scores"]
    rates = "".join(
        f"<tr><td>{escape(r['outcome'])}</td><td class=num>{_num(r['predicted'])}</td><td class=num>{_num(r['real'])}</td><td class=num>{_ci(r['real_ci'])}</td>"
        f"<td>{ {True: 'yes', False: 'no', None: 'n/a'}[r['within']] }</td></tr>"
        for r in check["rates"]
    )
    scores = "".join(
        f"<tr><td>{label}</td><td class=num>{_num(s[key]['value'])} {_ci(s[key]['ci'])}</td><td class=num>{_num(s[key + '_base_rate']['value'])}</td><td class=num>{_num(s[key + '_majority']['value'])}</td></tr>"
        for key, label in (("brier", "Brier score of P(agree)"), ("log_loss", "log loss of P(agree)"))
    )
    verdict = {True: "beats", False: "does not beat", None: "cannot be compared with"}[s["beats_base_rate"]]
    return (
        f"<p class=note>{check['n']} customers with a known decision; probabilities from {escape(check['probability'])}. "
        f"Same decision as the real person: {_num(check['same_decision']['value'])} {_ci(check['same_decision']['ci'])}; the majority guess: {_num(check['majority_same'])}. "
        f"P(agree) {verdict} the base rate {_num(s['base_rate'])} (Brier difference {_num(s['brier_gain']['value'])} {_ci(s['brier_gain']['ci'])}).{(' ' + escape(s['note'])) if s.get('note') else ''}{(' ' + escape(check['note'])) if check.get('note') else ''}</p>"
        f"<table><tr><th>outcome</th><th>simulated rate</th><th>real rate</th><th>95 % interval of the real rate</th><th>inside</th></tr>{rates}</table>"
        f"<table><tr><th>score (lower is better)</th><th>simulator</th><th>base rate</th><th>majority guess</th></tr>{scores}</table>"
        f"<figure><figcaption>reliability of P(agree) (dashed: perfectly calibrated)</figcaption>{reliability_chart(s['reliability'])}</figure>"
    )


def _rows(rows: list[dict[str, Any]]) -> str:
    out = []
    for r in rows:
        forced = " (forced: the script ran out)" if r["forced"] else ""
        forced += f"; decided by {escape(r['decided_by'])}" if r.get("decided_by") else ""
        title = f"{escape(r['id'])}: real {r['real']} at move {r['real_exit']}, simulated {r['sim']} at move {r['sim_exit']}{forced}"
        pairs = "".join(
            f"<tr><td>{i + 1}</td><td>{escape(real)}</td><td>{escape(sim)}</td></tr>"
            for i, (real, sim) in enumerate(zip(r["real_replies"] + [""] * 40, r["sim_replies"] + [""] * 40))
            if real or sim
        )
        out.append(f"<details><summary>{title}</summary><table><tr><th>#</th><th>real customer</th><th>simulated customer</th></tr>{pairs}</table></details>")
    return "".join(out)


def render_probe_html(probe: dict[str, Any]) -> str:
    sections = []
    for name, variant in probe["variants"].items():
        sections.append(
            f"<h2>{escape(name)}</h2><p class=note>{variant['n']} held-out customers; {variant['forced']} decisions given by the manager when the script ran out; "
            f"{variant['errors']} errors. Always guessing the most common real decision would agree {_num(variant['majority_baseline'])} of the time.</p>"
            f"<figure class=wide><figcaption>gap (dot) and 95 % interval (bar) per figure; grey: the noise floor between two halves of the real calls; red: beyond noise</figcaption>{gap_chart(variant['figures'])}</figure>"
            f"{_figures_table(variant['figures'])}<h3>decisions</h3>{_confusion(variant['confusion'], variant.get('confusion_intervals'))}{_decisions(variant.get('decisions'))}"
            f"<p class=note>where the simulated decisions came from: {escape(', '.join(f'{k} {v}' for k, v in sorted((variant.get('decided_by') or {}).items())))}</p>"
            f"<h3>customers</h3>{_rows(variant['rows'])}"
        )
    header = f"<header><h1>grouped-sim probe</h1><p>{escape(probe['sim_folder'])}: {probe['n']} held-out real customers against the real salesman's moves; customer model {escape(probe['customer'])}</p></header>"
    return f"<!doctype html><html><head><meta charset=utf-8><title>grouped-sim probe</title><style>{CSS}</style></head><body>{header}<main>{warnings_html(probe.get('warnings') or [])}{''.join(sections)}</main></body></html>"
