"""Import rules (DESIGN.md): the sandbox and the statement parsers never import each
other, and the runtime that Airflow's workers import (plugins/payouts) never imports
the sandbox or the developer tooling (tooling/payouts_tooling)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[3]
PACKAGE = PROJECT / "plugins" / "payouts"
SANDBOX = PROJECT / "sandbox" / "payouts_sandbox"
TOOLING = PROJECT / "tooling" / "payouts_tooling"


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
    files = list(SANDBOX.rglob("*.py"))
    assert len(files) > 5, f"the sandbox package is missing at {SANDBOX}"
    for path in files:
        bad = {m for m in imported_modules(path) if m.startswith("payouts.statements")}
        assert not bad, f"{path.name} imports {bad}"


def test_statement_parsers_never_import_the_sandbox():
    for path in (PACKAGE / "statements").rglob("*.py"):
        bad = {m for m in imported_modules(path) if "sandbox" in m}
        assert not bad, f"{path.name} imports {bad}"


def test_the_runtime_never_imports_the_sandbox_or_the_tooling():
    assert (TOOLING / "cli.py").exists(), f"the tooling package is missing at {TOOLING}"
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        bad = {m for m in imported_modules(path) if m.split(".")[0] in ("payouts_sandbox", "payouts_tooling")}
        if bad:
            offenders.append(f"{path.relative_to(PACKAGE)} imports {sorted(bad)}")
    assert not offenders, offenders
    assert (PACKAGE / "providers" / "sandbox").exists() is False, "the sandbox is back inside providers/"


def test_a_worker_importing_the_dags_and_tasks_loads_no_sandbox_and_no_tooling(tmp_path):
    code = (
        "import sys, runpy, pathlib\n"
        f"sys.path[:0] = [{str(PROJECT / 'plugins')!r}]\n"
        "import payouts.orchestration.tasks, payouts.payout_run.submit, payouts.reconcile.run, payouts.providers.registry\n"
        "from payouts.providers import registry\n"
        "registry.kind_class('generic')\n"
        f"for dag in sorted(pathlib.Path({str(PROJECT / 'dags')!r}).glob('*.py')):\n"
        "    runpy.run_path(str(dag))\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('payouts_sandbox', 'payouts_tooling'))\n"
        "print(loaded)\n"
        "sys.exit(1 if loaded else 0)\n"
    )
    env = {"PATH": "/usr/bin:/bin", "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "PYTHONPATH": ""}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
