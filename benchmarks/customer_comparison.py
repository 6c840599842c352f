"""Old default vs the 1.5B, prompt-only and full, each against the real held-out customers (issue 22, item 5).

    .venv/bin/python benchmarks/customer_comparison.py --name sample --probe runs/cmp/sample-new --probe runs/cmp/sample-old
    .venv/bin/python benchmarks/customer_comparison.py --name inspired --probe runs/cmp/inspired-new --probe runs/cmp/inspired-old

Reads the probe.json of `grouped-sim probe` runs (one per customer model; each may hold several
--manager variants) of one sim folder, and writes one table per corpus: for every variant, the
judge's coherence (mean P and acceptance, P >= 0.5) of the simulated twins against the real
held-out customers (paired bootstrap interval over customers, human-vs-human noise floor from
halves of the real customers), the reply-length distance to real (W1 in words), the role inversion
rate (the role guard's seller and assistant phrases in what the twin said), and the agree and
refuse/walk-away rates against real. Results: benchmarks/results/customer_comparison.json
(one key per --name) and a markdown table on stdout.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "customer_comparison.json"


def rows_of(variant: dict) -> list:
    from grouped_sim.metrics.probe import ProbeRow

    return [ProbeRow.model_validate(r) for r in variant["rows"] if r.get("error") is None]


def acceptance(side: str):
    def share(units) -> float | None:
        values = [p for r in units for p in (getattr(r, f"{side}_coherence") or [])]
        return sum(p >= 0.5 for p in values) / len(values) if values else None

    return share


def inversion(side: str):
    from grouped_sim.role_guard import looks_like_salesman

    def share(units) -> float | None:
        texts = [t for r in units for t in getattr(r, f"{side}_replies")]
        return sum(looks_like_salesman(t) for t in texts) / len(texts) if texts else None

    return share


def table(name: str, probes: list[Path]) -> dict:
    from grouped_sim.metrics.intervals import compare_paired

    out = {}
    for probe in probes:
        result = json.loads((probe / "probe.json").read_text())
        for variant, summary in result["variants"].items():
            rows = rows_of(summary)
            label = f"{result['customer']} / {variant}"
            figures = dict(summary["figures"])
            figures["coherence_acceptance"] = compare_paired(rows, acceptance("sim"), acceptance("real")).model_dump()
            figures["role_inversion"] = compare_paired(rows, inversion("sim"), inversion("real")).model_dump()
            out[label] = {"n": summary["n"], "replies": sum(len(r.sim_replies) for r in rows), "real_replies": sum(len(r.real_replies) for r in rows), "figures": figures}
    return out


def fmt(figure: dict | None, key: str = "sim") -> str:
    if not figure or figure.get(key) is None:
        return "n/a"
    ci = figure.get("ci")
    mark = "**" if figure.get("beyond_noise") else ""
    gap = f" (gap {figure['gap']:+.2f} [{ci[0]:+.2f}, {ci[1]:+.2f}], floor {figure['noise_floor']:.2f})" if ci and figure.get("gap") is not None and figure.get("noise_floor") is not None else ""
    return f"{mark}{figure[key]:.2f}{mark}{gap}"


def markdown(name: str, rows: dict) -> str:
    keys = [("coherence", "judge coherence, mean P"), ("coherence_acceptance", "replies accepted (P ≥ 0.5)"), ("reply_length_w1", "reply length W1 (words)"),
            ("role_inversion", "role inversion"), ("agree_rate", "agree rate"), ("walk_away_rate", "refuse or walk away")]
    lines = [f"### {name}", "", "| variant | n | " + " | ".join(label for _, label in keys) + " |", "|---|---:|" + "---|" * len(keys)]
    first = next(iter(rows.values()))
    real = [fmt(first["figures"].get(k), "real") if k != "reply_length_w1" else "0" for k, _ in keys]
    for label, row in rows.items():
        cells = [fmt(row["figures"].get(k), "gap" if k == "reply_length_w1" else "sim") if k != "reply_length_w1" else fmt({**row["figures"][k], "sim": row["figures"][k].get("gap")}) for k, _ in keys]
        lines.append(f"| {label} | {row['n']} | " + " | ".join(cells) + " |")
    lines.append(f"| real | {first['n']} | " + " | ".join(real) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", required=True)
    parser.add_argument("--probe", action="append", type=Path, required=True)
    args = parser.parse_args()
    rows = table(args.name, args.probe)
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    results[args.name] = rows
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(markdown(args.name, rows))


if __name__ == "__main__":
    main()
