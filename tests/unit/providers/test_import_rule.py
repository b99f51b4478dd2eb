"""The sandbox and the statement parsers never import each other (DESIGN.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import payouts

PACKAGE = Path(payouts.__file__).resolve().parent if payouts.__file__ else Path(list(payouts.__path__)[0])


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_sandbox_never_imports_the_statement_parsers():
    for path in (PACKAGE / "providers" / "sandbox").rglob("*.py"):
        bad = {m for m in imported_modules(path) if m.startswith("payouts.statements")}
        assert not bad, f"{path.name} imports {bad}"


def test_statement_parsers_never_import_the_sandbox():
    for path in (PACKAGE / "statements").rglob("*.py"):
        bad = {m for m in imported_modules(path) if "sandbox" in m}
        assert not bad, f"{path.name} imports {bad}"
