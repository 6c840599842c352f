"""Side by side: the headline figures of several runs (and the real corpus) in one table.

Like Table 2 of papers/004: one column per simulator variant (full, no-sop, prompt-only, another
customer model), one row per metric, plus a "real" column with the reference corpus's own values
where a metric has one, and the TLV share across the compared runs (TLV is unbounded, so the paper
compares runs by their share of the summed TLV).
"""

from __future__ import annotations

from typing import Any

from grouped_sim.metrics.diversity import normalised_tlv_shares
from grouped_sim.report.compute import METRICS, flat_metrics, reference_metrics

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
    references = {name: (r.get("reference") or {}).get("name") for name, r in reports.items()}
    return {"columns": columns, "rows": rows, "reference": references}


def _cell(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


HINTS = {"up": "↑", "down": "↓", "ref": "≈ real", "zero": "→ 0", "": ""}


def to_markdown(table: dict[str, Any]) -> str:
    """A GitHub-flavoured markdown table of a `comparison`."""
    head = "| metric | " + " | ".join(table["columns"]) + " |"
    sep = "|---|" + "---:|" * len(table["columns"])
    lines = [head, sep]
    for row in table["rows"]:
        hint = HINTS[row["better"]]
        label = f"{row['label']} {hint}".strip()
        lines.append(f"| {label} | " + " | ".join(_cell(row["values"].get(c)) for c in table["columns"]) + " |")
    return "\n".join(lines) + "\n"
