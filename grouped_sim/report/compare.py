"""Side by side: the headline figures of several runs (and the real corpus) in one table.

Like Table 2 of papers/004: one column per simulator variant (full, no-sop, prompt-only, another
customer model), one row per metric, plus a "real" column with the reference corpus's own values
where a metric has one, and the TLV share across the compared runs (TLV is unbounded, so the paper
compares runs by their share of the summed TLV).

Every cell carries its 95 % interval over dialogues, and every run after the first its difference
to the first run (the baseline): the difference, its interval, the noise floor (the figure between
two random halves of the baseline's calls) and whether it is beyond noise. Differences come from
the per-dialogue units report.json keeps, so reports made before intervals (no units) show the
values alone. Runs of the same customers (simulate --plan-from) are also compared pair by pair
(grouped_sim.report.paired).
"""

from __future__ import annotations

from typing import Any

from grouped_sim.metrics.diversity import normalised_tlv_shares
from grouped_sim.report.compute import METRICS, figure_interval, flat_metrics, reference_interval, reference_metrics
from grouped_sim.report.figures import between_runs

REAL = "real (reference)"


def comparison(reports: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """{"columns": [...], "rows": [{"key", "label", "better", "values": {column: value}}]}."""
    flats = {name: flat_metrics(r) for name, r in reports.items()}
    shares = normalised_tlv_shares({name: f["tlv"] for name, f in flats.items()})
    ref_report = next((r for r in reports.values() if r.get("reference")), None)
    ref_values = reference_metrics(ref_report) if ref_report else {}
    columns = list(reports) + ([REAL] if ref_report else [])
    rows = []
    for key, label, _, better in METRICS:
        values = {name: flats[name][key] for name in reports}
        if ref_report:
            values[REAL] = ref_values.get(key)
        if all(v is None for v in values.values()):
            continue
        rows.append({"key": key, "label": label, "better": better, "values": values})
        if key == "tlv":
            rows.append({"key": "tlv_share", "label": "TLV share across runs", "better": "up", "values": {**shares, **({REAL: None} if ref_report else {})}})
    _add_intervals(rows, reports, ref_report)
    references = {name: (r.get("reference") or {}).get("name") for name, r in reports.items()}
    return {"columns": columns, "baseline": next(iter(reports), None), "rows": rows, "reference": references}


def _units(report: dict[str, Any], side: str = "simulated") -> dict[str, Any] | None:
    return (report.get("units") or {}).get(side)


def _add_intervals(rows: list[dict[str, Any]], reports: dict[str, dict[str, Any]], ref_report: dict[str, Any] | None) -> None:
    """Each row's intervals per column, and each later run's difference to the first."""
    names = list(reports)
    baseline = _units(reports[names[0]]) if names else None
    ref_units = _units(ref_report, "reference") if ref_report else None
    for row in rows:
        key = row["key"]
        row["intervals"] = {name: figure_interval(reports[name], key) for name in names}
        if ref_report:
            row["intervals"][REAL] = reference_interval(ref_report, key)
        row["vs_first"] = {}
        for name in names[1:]:
            units = _units(reports[name])
            taxonomy = len(reports[name].get("taxonomy") or []) or 1
            diff = between_runs(key, units, baseline, taxonomy, ref_units) if units is not None and baseline is not None else None
            if diff is not None:
                row["vs_first"][name] = diff


def _cell(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def cell(row: dict[str, Any], column: str) -> str:
    """A table cell: the value, its interval, and for later runs the difference to the first
    (`*` when beyond noise)."""
    text = _cell(row["values"].get(column))
    ci = (row.get("intervals") or {}).get(column)
    if ci and row["values"].get(column) is not None:
        text += f" [{ci[0]:.3f}, {ci[1]:.3f}]"
    diff = (row.get("vs_first") or {}).get(column)
    if diff:
        text += f" Δ{diff['diff']:+.3f}{'*' if diff['beyond_noise'] else ''}"
    return text


HINTS = {"up": "↑", "down": "↓", "ref": "≈ real", "zero": "→ 0", "": ""}


def to_markdown(table: dict[str, Any], paired: list[dict[str, Any]] | None = None) -> str:
    """A GitHub-flavoured markdown table of a `comparison` (values with [95 % intervals]; Δ is the
    difference to the first run, * when beyond noise), then each paired comparison."""
    head = "| metric | " + " | ".join(table["columns"]) + " |"
    sep = "|---|" + "---:|" * len(table["columns"])
    lines = [f"> **warning:** {w}" for w in table.get("warnings") or []]
    lines += [""] if lines else []
    lines += [head, sep]
    for row in table["rows"]:
        hint = HINTS[row["better"]]
        label = f"{row['label']} {hint}".strip()
        lines.append(f"| {label} | " + " | ".join(cell(row, c) for c in table["columns"]) + " |")
    for block in paired or []:
        lines += ["", paired_markdown(block)]
    return "\n".join(lines) + "\n"


def paired_markdown(paired: dict[str, Any]) -> str:
    """The paired comparison of two runs as markdown: B minus A per figure, then who was won and lost."""
    from grouped_sim.report.paired import paired_rows

    a, b = paired["a"], paired["b"]
    lines = [
        f"**{b} vs {a}, paired**: {paired['pairs']} pairs of calls, {paired['customers']} customers"
        + ("" if paired["same_seeds"] else " (seeds differ: paired by customer and trial only)"),
        "",
        f"| figure | {a} | {b} | {b} − {a} [95 % CI] | noise floor | beyond noise | McNemar p |",
        "|---|---:|---:|---:|---:|:---:|---:|",
    ]
    for label, fig in paired_rows(paired):
        ci = fig["ci"]
        diff = "n/a" if fig["diff"] is None else f"{fig['diff']:+.3f}" + (f" [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else "")
        mc = fig.get("mcnemar")
        lines.append(
            f"| {label} | {_cell(fig['a'])} | {_cell(fig['b'])} | {diff} | {_cell(fig['noise_floor'])} | "
            f"{'yes' if fig['beyond_noise'] else 'no' if fig['beyond_noise'] is False else 'n/a'} | {mc['p'] if mc else ''} |"
        )
    for title, rows in (("won", paired["won"]), ("lost", paired["lost"])):
        lines.append("")
        lines.append(f"Customers {b} {title} ({len(rows)}): " + ("; ".join(
            f"{r['archetype']} / {r['domain']} ({r['a_converted']}→{r['b_converted']} of {r['trials']})" for r in rows) or "none"))
    return "\n".join(lines)
