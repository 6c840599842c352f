"""Dependencies point one way: core -> sop_db/profiles/discriminator -> training, graphs; core imports none."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROJECT_PACKAGES = {"grouped_sim", "graphs", "sop_db", "profiles", "discriminator", "training"}
FORBIDDEN = {
    # package: packages it must never import
    "grouped_sim": {"graphs", "sop_db", "profiles", "discriminator", "training"},
    "sop_db": {"graphs", "training"},
    "profiles": {"graphs", "training"},
    "discriminator": {"graphs", "training"},
    "training": {"graphs"},
}
SUBPACKAGES = {"graphs", "sop_db", "profiles", "discriminator", "training"}
FOLDERS = {"grouped_sim": ROOT / "grouped_sim", "sop_db": ROOT / "sop_db", "profiles": ROOT / "profiles", "discriminator": ROOT / "discriminator", "training": ROOT / "grouped_sim" / "training"}
COMPOSITION_ROOT = ROOT / "grouped_sim" / "cli"  # the CLI wires everything together by design


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            parts = node.module.split(".")
            found.add(parts[1] if parts[0] == "grouped_sim" and len(parts) > 1 and parts[1] in SUBPACKAGES else parts[0])
    return found & PROJECT_PACKAGES


def test_dependencies_point_one_way() -> None:
    violations = []
    for package, banned in FORBIDDEN.items():
        for path in FOLDERS[package].rglob("*.py"):
            if COMPOSITION_ROOT in path.parents:
                continue
            if package == "grouped_sim" and FOLDERS["training"] in path.parents:
                continue  # grouped_sim/training is its own layer (checked as "training")
            bad = imported_packages(path) & banned
            if bad:
                violations.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert violations == []


def test_the_check_sees_a_violation(tmp_path: Path) -> None:
    sample = tmp_path / "x.py"
    sample.write_text("from grouped_sim.graphs.builder import build_graph\nimport sop_db.store\nfrom grouped_sim.training.customer import train_sft\n")
    assert imported_packages(sample) == {"graphs", "sop_db", "training"}
