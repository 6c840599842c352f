"""Reports of a simulation run: report.json (every figure) and a self-contained report.html,
plus side-by-side comparison of runs. Computation only; the CLI builds models and scorers."""

from grouped_sim.report.compare import comparison, to_markdown
from grouped_sim.report.compute import compute_report, fill_stages, flat_metrics
from grouped_sim.report.html import render_html
from grouped_sim.report.teacher import teacher_forced_pairs

__all__ = ["comparison", "compute_report", "fill_stages", "flat_metrics", "render_html", "teacher_forced_pairs", "to_markdown"]
