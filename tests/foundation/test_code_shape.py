"""Shape rules a reader relies on: graph functions fit on a screen, interfaces are declared, not probed."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_FOLDERS = ("grouped_sim", "graphs", "sop_db", "profiles", "discriminator")
MAX_GRAPH_FUNCTION_LINES = 60


def functions(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [(node.name, node.end_lineno - node.lineno + 1) for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]  # type: ignore[operator]


def test_no_function_in_graphs_is_longer_than_60_lines() -> None:
    long = [f"{path.name}:{name} ({lines} lines)" for path in sorted((ROOT / "graphs").rglob("*.py")) for name, lines in functions(path) if lines > MAX_GRAPH_FUNCTION_LINES]
    assert long == []


def test_no_interface_is_probed_with_hasattr() -> None:
    """Participants and backends declare what they are (typed protocols, declared properties)."""
    probes = []
    for folder in PACKAGE_FOLDERS:
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "hasattr":
                    probes.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert probes == []


def test_the_length_check_counts_a_long_function(tmp_path: Path) -> None:
    sample = tmp_path / "x.py"
    sample.write_text("def f():\n" + "    x = 1\n" * 70 + "\nasync def g():\n    pass\n")
    assert dict(functions(sample)) == {"f": 71, "g": 2}
