"""Imports run one way, from the commands down to the basics, as docs/DESIGN.md layers the package.

Every `import unetpp.X` / `from unetpp.X import ...` in src/unetpp, at module level or inside a function, must
name a module of the same part of the package or of a lower layer. A function-level import that goes upward
(how training once timed its layout probe with benchmarking's code) is a circle all the same.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "unetpp"

# Lowest first; docs/DESIGN.md ("Import layers") says the same.
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"errors", "choices", "atomic", "allocator", "metrics", "losses", "paramcheck"}),
    frozenset({"data", "models"}),
    frozenset({"evaluation"}),
    frozenset({"training"}),
    frozenset({"inference"}),
    frozenset({"benchmarking"}),
    frozenset({"commands"}),
    frozenset({"cli", "__main__", "__init__"}),
)


def layer_of(part: str) -> int:
    for level, parts in enumerate(LAYERS):
        if part in parts:
            return level
    raise AssertionError(f"src/unetpp/{part} is in no layer: add it to LAYERS here and to docs/DESIGN.md")


def part_of(path: Path) -> str:
    """`training` for src/unetpp/training/loop.py, `errors` for src/unetpp/errors.py."""
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def imported_parts(path: Path) -> list[tuple[int, str]]:
    """(line, part) of every unetpp module that `path` imports, at any depth of its code."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
            if node.module == "unetpp":
                names = [f"unetpp.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        found += [(node.lineno, name.split(".")[1]) for name in names if name.startswith("unetpp.")]
    return found


def upward_imports() -> list[str]:
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        here = part_of(path)
        for line, there in imported_parts(path):
            if there != here and layer_of(there) > layer_of(here):
                wrong.append(f"{path.relative_to(PACKAGE.parent)}:{line} ({here}) imports unetpp.{there}")
    return wrong


def test_every_part_of_the_package_is_in_a_layer():
    parts = {part_of(path) for path in PACKAGE.rglob("*.py")}
    for part in parts:
        layer_of(part)
    assert {"training", "benchmarking", "commands", "models"} <= parts


def test_no_module_imports_a_higher_layer():
    assert upward_imports() == []


def test_an_upward_import_is_found(tmp_path, monkeypatch):
    # The check itself: a function-level import of benchmarking inside training is reported.
    fake = tmp_path / "unetpp"
    (fake / "training").mkdir(parents=True)
    (fake / "training" / "probe.py").write_text(
        "def probe():\n    from unetpp.benchmarking.train_steps import time_train_steps\n    return time_train_steps\n"
    )
    (fake / "errors.py").write_text("from unetpp import choices\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    assert upward_imports() == ["unetpp/training/probe.py:2 (training) imports unetpp.benchmarking"]
