"""Tiny inline-SVG charts for the HTML report: no plotting library, no external files.

Five shapes cover every plot the report draws: grouped bars (outcome mix, stage coverage),
bars with 95 % interval whiskers (conversion by archetype, the funnel), overlaid histograms (reply
lengths), lines (IRS by turn, state trajectories), and a forest plot of paired differences. Each returns an
`<svg>` string with its own axis labels and legend, sized by viewBox so it scales with the page.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

PALETTE = ["#2f6db5", "#e07b39", "#3a9d5d", "#b5443a", "#7a5bb5", "#8c8c8c"]
FONT = 'font-family="system-ui, sans-serif" font-size="11"'


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * exp:
            return step * exp
    return 10 * exp  # pragma: no cover - the loop always returns


def _fmt(v: float) -> str:
    return f"{v:.2f}".rstrip("0").rstrip(".") if abs(v) < 100 else f"{v:.0f}"


def _frame(width: int, height: int, body: list[str], title: str) -> str:
    return (
        f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>" + "".join(body) + "</svg>"
    )


def _axes(left: int, top: int, w: int, h: int, y_max: float, y_label: str, ticks: int | None = None) -> list[str]:
    if ticks is None:  # 5 ticks for 0.5, 2.5, 5 ... (steps of 0.1, 0.5, 1), else 4 (0.25, 0.5, ...)
        ticks = 5 if f"{y_max:g}".replace(".", "").lstrip("0").startswith(("5", "25")) else 4
    out = [f'<line x1="{left}" y1="{top + h}" x2="{left + w}" y2="{top + h}" stroke="#444"/>', f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + h}" stroke="#444"/>']
    for i in range(ticks + 1):
        v = y_max * i / ticks
        y = top + h - h * i / ticks
        out.append(f'<line x1="{left - 3}" y1="{y:.1f}" x2="{left + w}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" {FONT}>{_fmt(v)}</text>')
    out.append(f'<text x="12" y="{top + h / 2:.1f}" transform="rotate(-90 12 {top + h / 2:.1f})" text-anchor="middle" {FONT}>{escape(y_label)}</text>')
    return out


def _legend(names: Sequence[str], x: int, y: int) -> list[str]:
    out = []
    for i, name in enumerate(names):
        out.append(f'<rect x="{x}" y="{y + i * 16}" width="10" height="10" fill="{PALETTE[i % len(PALETTE)]}"/>')
        out.append(f'<text x="{x + 14}" y="{y + i * 16 + 9}" {FONT}>{escape(name)}</text>')
    return out


def empty_chart(title: str, message: str = "no data") -> str:
    return _frame(480, 80, [f'<text x="240" y="45" text-anchor="middle" {FONT} fill="#888">{escape(message)}</text>'], title)


def grouped_bars(categories: Sequence[str], series: dict[str, Sequence[float]], title: str, y_label: str, y_max: float | None = None) -> str:
    """One group of bars per category, one bar per series (e.g. simulated vs real)."""
    if not categories or not series:
        return empty_chart(title)
    width, left, top, bottom = max(480, 48 * len(categories) + 200), 70, 14, 96
    plot_w, plot_h = width - left - 130, 190
    top_value = y_max or _nice_max(max((v for vals in series.values() for v in vals), default=1.0))
    body = _axes(left, top, plot_w, plot_h, top_value, y_label)
    group_w = plot_w / len(categories)
    bar_w = group_w * 0.8 / len(series)
    for s, (name, values) in enumerate(series.items()):
        for c, value in enumerate(values):
            h = plot_h * min(value, top_value) / top_value
            x = left + c * group_w + group_w * 0.1 + s * bar_w
            body.append(
                f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w:.1f}" height="{h:.1f}" fill="{PALETTE[s % len(PALETTE)]}">'
                f"<title>{escape(name)} · {escape(categories[c])}: {_fmt(value)}</title></rect>"
            )
    for c, cat in enumerate(categories):
        x = left + c * group_w + group_w / 2
        body.append(f'<text x="{x:.1f}" y="{top + plot_h + 12}" text-anchor="end" transform="rotate(-35 {x:.1f} {top + plot_h + 12})" {FONT}>{escape(cat)}</text>')
    body += _legend(list(series), left + plot_w + 14, top + 4)
    return _frame(width, top + plot_h + bottom, body, title)


def histogram(samples: dict[str, Sequence[float]], title: str, x_label: str, bins: int = 12) -> str:
    """Overlaid normalised histograms (share of replies per bin), one outline per sample."""
    present = {k: list(v) for k, v in samples.items() if len(v)}
    if not present:
        return empty_chart(title)
    hi = max(max(v) for v in present.values())
    lo = 0.0
    width_bin = max(1.0, math.ceil((hi - lo + 1) / bins))
    edges = [lo + i * width_bin for i in range(bins + 1)]
    shares: dict[str, list[float]] = {}
    for name, values in present.items():
        counts = [0] * bins
        for v in values:
            counts[min(bins - 1, int((v - lo) // width_bin))] += 1
        shares[name] = [c / len(values) for c in counts]
    width, left, top, plot_w, plot_h = 560, 48, 14, 400, 190
    y_top = _nice_max(max(max(s) for s in shares.values()))
    body = _axes(left, top, plot_w, plot_h, y_top, "share of replies")
    bw = plot_w / bins
    for s, (name, vals) in enumerate(shares.items()):
        color = PALETTE[s % len(PALETTE)]
        for i, share in enumerate(vals):
            h = plot_h * share / y_top
            body.append(
                f'<rect x="{left + i * bw:.1f}" y="{top + plot_h - h:.1f}" width="{bw:.1f}" height="{h:.1f}" fill="{color}" fill-opacity="0.35" stroke="{color}">'
                f"<title>{escape(name)}: {_fmt(edges[i])}-{_fmt(edges[i + 1])} words: {share:.0%}</title></rect>"
            )
    for i in range(0, bins + 1, max(1, bins // 6)):
        body.append(f'<text x="{left + i * bw:.1f}" y="{top + plot_h + 14}" text-anchor="middle" {FONT}>{_fmt(edges[i])}</text>')
    body.append(f'<text x="{left + plot_w / 2:.1f}" y="{top + plot_h + 32}" text-anchor="middle" {FONT}>{escape(x_label)}</text>')
    body += _legend([f"{k} (n={len(present[k])})" for k in shares], left + plot_w + 8, top + 4)
    return _frame(width + 80, top + plot_h + 44, body, title)


def lines(series: dict[str, Sequence[tuple[float, float]]], title: str, x_label: str, y_label: str, y_max: float | None = None, width: int = 560, height: int = 240) -> str:
    """Line chart of (x, y) points per series, with dots so single points still show."""
    present = {k: list(v) for k, v in series.items() if v}
    if not present:
        return empty_chart(title)
    xs = [x for pts in present.values() for x, _ in pts]
    x_lo, x_hi = min(xs), max(xs)
    x_span = (x_hi - x_lo) or 1.0
    y_top = y_max or _nice_max(max(y for pts in present.values() for _, y in pts))
    left, top = 48, 14
    plot_w, plot_h = width - left - 140, height - top - 44
    body = _axes(left, top, plot_w, plot_h, y_top, y_label)

    def px(x: float) -> float:
        return left + plot_w * (x - x_lo) / x_span

    def py(y: float) -> float:
        return top + plot_h - plot_h * min(max(y, 0.0), y_top) / y_top

    for s, (name, pts) in enumerate(present.items()):
        color = PALETTE[s % len(PALETTE)]
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
        body.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        for x, y in pts:
            body.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{color}"><title>{escape(name)}: {_fmt(x)} → {_fmt(y)}</title></circle>')
    for x in sorted(set(xs)):
        body.append(f'<text x="{px(x):.1f}" y="{top + plot_h + 14}" text-anchor="middle" {FONT}>{_fmt(x)}</text>')
    body.append(f'<text x="{left + plot_w / 2:.1f}" y="{top + plot_h + 32}" text-anchor="middle" {FONT}>{escape(x_label)}</text>')
    body += _legend(list(present), left + plot_w + 12, top + 4)
    return _frame(width, height, body, title)


Estimate = tuple[float | None, float | None, float | None]
"""(value, low, high) of a figure with its interval; None where missing."""


def interval_bars(categories: Sequence[str], series: dict[str, Sequence[Estimate]], title: str, y_label: str, y_max: float | None = None) -> str:
    """Grouped bars with 95 % interval whiskers (conversion by archetype, the funnel)."""
    if not categories or not series:
        return empty_chart(title)
    width, left, top, bottom = max(760, 56 * len(categories) + 240), 110, 14, 110
    plot_w, plot_h = width - left - 150, 190
    highs = [v for vals in series.values() for est in vals for v in (est[0], est[2]) if v is not None]
    top_value = y_max or _nice_max(max(highs, default=1.0))
    body = _axes(left, top, plot_w, plot_h, top_value, y_label)
    group_w = plot_w / len(categories)
    bar_w = group_w * 0.8 / len(series)

    def y(v: float) -> float:
        return top + plot_h - plot_h * max(0.0, min(v, top_value)) / top_value

    for s, (name, values) in enumerate(series.items()):
        color = PALETTE[s % len(PALETTE)]
        for c, (value, low, high) in enumerate(values):
            x = left + c * group_w + group_w * 0.1 + s * bar_w
            if value is None:
                continue
            tip = f"{escape(name)} · {escape(categories[c])}: {_fmt(value)}" + (f" [{_fmt(low)}, {_fmt(high)}]" if low is not None and high is not None else "")
            body.append(f'<rect x="{x:.1f}" y="{y(value):.1f}" width="{bar_w:.1f}" height="{top + plot_h - y(value):.1f}" fill="{color}" fill-opacity="0.75"><title>{tip}</title></rect>')
            if low is not None and high is not None:
                cx = x + bar_w / 2
                body.append(f'<line x1="{cx:.1f}" y1="{y(low):.1f}" x2="{cx:.1f}" y2="{y(high):.1f}" stroke="#222" stroke-width="1.5"/>')
                for v in (low, high):
                    body.append(f'<line x1="{cx - 4:.1f}" y1="{y(v):.1f}" x2="{cx + 4:.1f}" y2="{y(v):.1f}" stroke="#222" stroke-width="1.5"/>')
    for c, cat in enumerate(categories):
        x = left + c * group_w + group_w / 2
        body.append(f'<text x="{x:.1f}" y="{top + plot_h + 12}" text-anchor="end" transform="rotate(-35 {x:.1f} {top + plot_h + 12})" {FONT}>{escape(cat)}</text>')
    body += _legend(list(series), left + plot_w + 14, top + 4)
    return _frame(width, top + plot_h + bottom, body, title)


def forest(rows: Sequence[tuple[str, float | None, float | None, float | None, bool | None]], title: str, x_label: str) -> str:
    """Differences with their intervals around a zero line, one row each (label, diff, low, high,
    beyond noise): the paired comparison of two agents. Beyond-noise rows are drawn solid."""
    present = [r for r in rows if r[1] is not None]
    if not present:
        return empty_chart(title)
    span = max(abs(v) for r in present for v in r[1:4] if v is not None) or 1.0
    span = _nice_max(span)
    left, right, top, row_h = 190, 30, 14, 22
    width = 640
    plot_w = width - left - right
    height = top + row_h * len(present) + 44

    def x(v: float) -> float:
        return left + plot_w * (v + span) / (2 * span)

    body = [f'<line x1="{x(0):.1f}" y1="{top}" x2="{x(0):.1f}" y2="{top + row_h * len(present)}" stroke="#888" stroke-dasharray="3,3"/>']
    for i, (label, diff, low, high, beyond) in enumerate(present):
        cy = top + row_h * i + row_h / 2
        color = PALETTE[3] if beyond else PALETTE[5]
        body.append(f'<text x="{left - 8}" y="{cy + 4:.1f}" text-anchor="end" {FONT}>{escape(label)}</text>')
        if low is not None and high is not None:
            body.append(f'<line x1="{x(low):.1f}" y1="{cy:.1f}" x2="{x(high):.1f}" y2="{cy:.1f}" stroke="{color}" stroke-width="2"/>')
        tip = f"{escape(label)}: {_fmt(diff)}" + (f" [{_fmt(low)}, {_fmt(high)}]" if low is not None and high is not None else "") + (" beyond noise" if beyond else "")
        fill = color if beyond else "#fff"
        body.append(f'<circle cx="{x(diff):.1f}" cy="{cy:.1f}" r="4" fill="{fill}" stroke="{color}" stroke-width="2"><title>{tip}</title></circle>')  # type: ignore[arg-type]
    axis_y = top + row_h * len(present)
    body.append(f'<line x1="{left}" y1="{axis_y}" x2="{left + plot_w}" y2="{axis_y}" stroke="#444"/>')
    for v in (-span, -span / 2, 0.0, span / 2, span):
        body.append(f'<text x="{x(v):.1f}" y="{axis_y + 14}" text-anchor="middle" {FONT}>{_fmt(v)}</text>')
    body.append(f'<text x="{left + plot_w / 2:.1f}" y="{axis_y + 32}" text-anchor="middle" {FONT}>{escape(x_label)}</text>')
    return _frame(width, height, body, title)
