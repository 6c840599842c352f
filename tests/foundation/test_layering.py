"""Layers point one way, with no exemption: every module of the package is in exactly one layer and
imports only from layers below it, or from a peer in its own layer when that edge is listed.

Lowest first: the core (in four sub-layers), evaluation, the domain folders, the graph, and the
application (CLI, serve, building participants from specs), which nothing imports.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Where each import package's source lives in the repository (setuptools package-dir).
SOURCE = {"grouped_sim": "grouped_sim", "grouped_sim.graphs": "graphs", "grouped_sim.sop_db": "sop_db", "grouped_sim.profiles": "profiles", "grouped_sim.discriminator": "discriminator"}

LAYERS: list[tuple[str, list[str]]] = [
    ("core: errors and the tensor thread", ["grouped_sim", "grouped_sim.errors", "grouped_sim.compute"]),
    ("core: contracts and shipped data", ["grouped_sim.schemas", "grouped_sim.resources", "grouped_sim.data", "grouped_sim.jsontext"]),
    ("core: config, files, transcripts, prompts", ["grouped_sim.config", "grouped_sim.io", "grouped_sim.corpus", "grouped_sim.runfolder", "grouped_sim.transcript", "grouped_sim.prompts", "grouped_sim.artifacts"]),
    ("core: prompts and models", ["grouped_sim.customer_prompt", "grouped_sim.profile_prompt", "grouped_sim.role_guard", "grouped_sim.embeddings", "grouped_sim.models"]),
    ("evaluation", ["grouped_sim.metrics", "grouped_sim.report"]),
    ("domain", ["grouped_sim.sop_db", "grouped_sim.profiles", "grouped_sim.discriminator", "grouped_sim.training"]),
    ("graph", ["grouped_sim.graphs"]),
    ("application", ["grouped_sim.app", "grouped_sim.cli"]),
]
# Edges between two groups of the same layer that are part of the design (importer, imported).
ALLOWED_PEERS = {
    ("grouped_sim.corpus", "grouped_sim.io"),
    ("grouped_sim.config", "grouped_sim.io"),  # a config file is read by the one reader of user files
    ("grouped_sim.artifacts", "grouped_sim.io"),  # an artifact's JSON is read by the same reader, then validated
    ("grouped_sim.report", "grouped_sim.metrics"),
    ("grouped_sim.sop_db", "grouped_sim.profiles"),  # mining extracts profiles with the preset archetypes
    ("grouped_sim.training", "grouped_sim.discriminator"),  # GRPO's pattern reward is the discriminator
    ("grouped_sim.discriminator", "grouped_sim.sop_db"),  # its pairs are built from the corpus's D_sim records
    ("grouped_sim.cli", "grouped_sim.app"),
}
BARE_NAMES = {"graphs", "sop_db", "profiles", "discriminator", "training"}


def module_files() -> dict[str, Path]:
    """Every module of the installed package, by its import name."""
    found: dict[str, Path] = {}
    for package, folder in SOURCE.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([package, *parts])] = path
    return found


def group_of(module: str) -> tuple[int, str] | None:
    """(layer index, group) of a module: its longest matching group prefix."""
    best: tuple[int, str] | None = None
    for level, (_, groups) in enumerate(LAYERS):
        for group in groups:
            matches = module == group or (group != "grouped_sim" and module.startswith(group + "."))
            if matches and (best is None or len(group) > len(best[1])):
                best = (level, group)
    return best


def imports_of(path: Path, module: str, known: set[str]) -> set[str]:
    """The project modules a file imports (anywhere in it, relative imports resolved)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            found |= {f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names}
    return {m for m in found if m.split(".")[0] == "grouped_sim" or m.split(".")[0] in BARE_NAMES}


def violations(modules: dict[str, Path]) -> list[str]:
    known = set(modules)
    problems: list[str] = []
    for module, path in sorted(modules.items()):
        mine = group_of(module)
        if mine is None:
            problems.append(f"{module}: in no layer (add it to LAYERS)")
            continue
        for target in sorted(imports_of(path, module, known)):
            theirs = group_of(target)
            if target.split(".")[0] in BARE_NAMES or theirs is None:
                problems.append(f"{module} imports {target}: not a module of grouped_sim")
            elif theirs[0] > mine[0]:
                problems.append(f"{module} ({LAYERS[mine[0]][0]}) imports {target} ({LAYERS[theirs[0]][0]}): upwards")
            elif theirs[0] == mine[0] and theirs[1] != mine[1] and (mine[1], theirs[1]) not in ALLOWED_PEERS:
                problems.append(f"{module} imports {target}: peer edge {mine[1]} -> {theirs[1]} is not allowed")
    return problems


def test_every_module_imports_only_downwards_or_from_an_allowed_peer() -> None:
    assert violations(module_files()) == []


def test_nothing_outside_the_package_uses_the_folder_names_as_import_names() -> None:
    """Tests and benchmarks import grouped_sim.*, as users do; bare names only work from the repo root."""
    offenders = []
    for folder in ("tests", "benchmarks"):
        for path in (ROOT / folder).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
                offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] in BARE_NAMES]
    assert offenders == []


def test_the_check_sees_upward_peer_and_unplaced_imports(tmp_path: Path) -> None:
    files = {
        "grouped_sim.schemas": "from grouped_sim.graphs.graph import build_graph\n",
        "grouped_sim.sop_db.store": "import grouped_sim.discriminator.model\n",
        "grouped_sim.graphs.graph": "def f():\n    from grouped_sim.app import build\n",
        "grouped_sim.newthing": "x = 1\n",
        "grouped_sim.metrics.x": "from . import y\nfrom grouped_sim.schemas import Turn\n",
        "grouped_sim.metrics.y": "import sop_db.store\n",
        "grouped_sim.app": "",
        "grouped_sim.app.build": "from grouped_sim.graphs.graph import build_graph\n",
    }
    modules = {}
    for name, text in files.items():
        path = tmp_path / f"{name}.py"
        path.write_text(text)
        modules[name] = path
    found = violations(modules)
    assert any(p.startswith("grouped_sim.schemas ") and "upwards" in p for p in found)
    assert any(p.startswith("grouped_sim.sop_db.store ") and "peer edge" in p for p in found)
    assert any(p.startswith("grouped_sim.graphs.graph ") and "upwards" in p for p in found)  # imports inside functions count
    assert "grouped_sim.newthing: in no layer (add it to LAYERS)" in found
    assert any(p.startswith("grouped_sim.metrics.y ") and "not a module of grouped_sim" in p for p in found)
    assert not any(p.startswith(("grouped_sim.metrics.x ", "grouped_sim.app.build ")) for p in found)
