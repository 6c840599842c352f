"""Dependencies point one way: corpus -> sop_db/profiles/discriminator -> graphs; core imports none."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROJECT_PACKAGES = {"grouped_sim", "graphs", "sop_db", "profiles", "discriminator"}
FORBIDDEN = {
    # package: packages it must never import
    "grouped_sim": {"graphs", "sop_db", "profiles", "discriminator"},
    "sop_db": {"graphs"},
    "profiles": {"graphs"},
    "discriminator": {"graphs"},
}
SUBPACKAGES = {"graphs", "sop_db", "profiles", "discriminator"}
COMPOSITION_ROOTS = (ROOT / "grouped_sim" / "cli", ROOT / "grouped_sim" / "app")  # interim: the strict test lands with the restructuring


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
        for path in (ROOT / package).rglob("*.py"):
            if any(root in path.parents for root in COMPOSITION_ROOTS):
                continue
            bad = imported_packages(path) & banned
            if bad:
                violations.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert violations == []


def test_the_check_sees_a_violation(tmp_path: Path) -> None:
    sample = tmp_path / "x.py"
    sample.write_text("from grouped_sim.graphs.builder import build_graph\nimport sop_db.store\n")
    assert imported_packages(sample) == {"graphs", "sop_db"}
