"""No SQL in plugins/payouts is built from values: f-strings, % and .format only splice fixed fragments.

Every piece of Python that builds SQL text by interpolation (an f-string, `%`
formatting, `.format`, `+`) is found in the syntax tree; each interpolated
expression must be one of the fragments listed below, each with the reason it
cannot carry a value. Anything else fails: values go in as bound parameters
(or through psycopg.sql.Literal / Identifier), never into the text.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "plugins" / "payouts"

# Upper-case SQL, as the package writes it; prose in messages does not shout.
SQL_TEXT = re.compile(
    r"\b(SELECT\b[\s\S]*\bFROM|INSERT\s+INTO|UPDATE\s+\S+[\s\S]*\bSET\b|DELETE\s+FROM|CREATE\s+(TEMP|TABLE|DATABASE|"
    r"INDEX|SCHEMA|VIEW|OR\s+REPLACE)|DROP\s+(TABLE|DATABASE|SCHEMA|VIEW)|COPY\s|TRUNCATE\s|ALTER\s+TABLE|"
    r"\bWHERE\b|\bVALUES\s*\(|ON\s+CONFLICT)")

# (file, interpolated expression) -> why it is not a value.
ALLOWED = {
    ("checks/gate.py", "run_literal"):
        "psycopg.sql.Literal of a run id already matched against ^R[0-9]{6}$ (GX query assets take no parameters)",
    ("core/items.py", "extra_set"): "a SET fragment written in this package",
    ("core/items.py", "ids"): "a condition from warehouse.bulk.selected_ids over a temp table of this package",
    ("core/ledger.py", "ids"): "a condition from warehouse.bulk.selected_ids over a temp table of this package",
    ("warehouse/bulk.py", "table"): "a temp table name of this package, checked against ^_[a-z_]+$",
    ("core/ledger.py", "values"): "VALUES rows of %(name)s placeholders and constants from TRANSFERS",
    ("core/ledger.py", "'AND i.paid_currency IS NOT NULL' if fx_kind else ''"): "a fixed fragment",
    ("core/ledger.py", "selection"): "a SELECT written in this package",
    ("core/ledger.py", "rows"): "a SELECT written in this package",
    ("core/ledger.py", "fresh"): "an INSERT into the temp table fresh_into, checked against ^[a-z_]+$",
    ("core/ledger.py", "fresh_into"): "a temp table name of this package, checked against ^[a-z_]+$",
    ("core/destinations.py", "selection"): "a SELECT written in this package",
    ("payout_run/submit.py", "_IN_BATCH"): "a fixed condition of the same module, its values as %(name)s placeholders",
    ("payout_run/submit.py", "_BATCH_COUNTS"): "a fixed subquery of the same module, over the columns of a batch row",
    ("reconcile/run.py", "', '.join(columns)"): "column names from a fixed list in the same function",
    ("reconcile/run.py", "_OPEN_LINES"): "a fixed FROM ... WHERE of the same module",
    ("seed.py", "cols"): "column names from the RECIPIENT_COLUMNS constant",
    ("console/views.py", "expr"): "one of two fixed column expressions chosen by a dict lookup",
    ("console/views.py", "_SHOWN_RAIL"): "routing.planned_rail_sql over the alias i and a constant",
    ("payout_run/summary.py", "_PLANNED_RAIL"): "routing.planned_rail_sql over the alias i",
    ("warehouse/bulk.py", "bound"): "the query with its values bound client-side by psycopg's mogrify (COPY takes"
                                    " no server-side parameters)",
    # The provider sandbox's own SQLite store: '?' placeholders for values.
    ("providers/sandbox/store.py", "_STATEMENT_LINE_COLUMNS"): "a fixed column list",
    ("providers/sandbox/store.py", "_STATEMENT_COLUMNS"): "a fixed column list",
    ("providers/sandbox/store.py", "marks"): "a run of '?' placeholders, one per value",
}


def _module_strings(tree: ast.Module) -> dict[str, str]:
    """Module-level NAME = "text" constants (for NAME.format(...))."""
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    found[target.id] = node.value.value
    return found


def _add_operands(node: ast.AST) -> list[ast.AST]:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _add_operands(node.left) + _add_operands(node.right)
    return [node]


def _is_text(node: ast.AST) -> bool:
    return isinstance(node, ast.JoinedStr) or (isinstance(node, ast.Constant) and isinstance(node.value, str))


def _constant_text(node: ast.AST) -> str:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value for v in node.values if isinstance(v, ast.Constant))
    return ""


def sql_interpolations(path: Path) -> list[tuple[int, str, str]]:
    """(line, kind, expression) for every expression spliced into SQL text in `path`."""
    tree = ast.parse(path.read_text())
    strings = _module_strings(tree)
    found: list[tuple[int, str, str]] = []
    inner_adds: set[int] = set()          # a + b + c is one chain, reported once
    for node in ast.walk(tree):
        text, spliced, kind = "", [], ""
        if isinstance(node, ast.JoinedStr):
            kind, text = "f-string", _constant_text(node)
            spliced = [v.value for v in node.values if isinstance(v, ast.FormattedValue)]
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) and _is_text(node.left):
            kind, text = "%-format", _constant_text(node.left)
            spliced = list(node.right.elts) if isinstance(node.right, ast.Tuple) else [node.right]
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format"
              and (_is_text(node.func.value)
                   or (isinstance(node.func.value, ast.Name) and node.func.value.id in strings))):
            target = node.func.value
            kind = ".format"
            text = strings[target.id] if isinstance(target, ast.Name) else _constant_text(target)
            spliced = list(node.args) + [k.value for k in node.keywords]
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add) and id(node) not in inner_adds:
            inner_adds.update(id(n) for n in ast.walk(node) if isinstance(n, ast.BinOp) and n is not node)
            operands = _add_operands(node)
            if any(_is_text(o) for o in operands):
                kind = "+"
                text = "".join(_constant_text(o) for o in operands)
                spliced = [o for o in operands if not _is_text(o)]
        if kind and spliced and SQL_TEXT.search(text):
            found.extend((node.lineno, kind, ast.unparse(expr)) for expr in spliced)
    return found


def test_sql_text_is_never_built_from_values():
    violations, seen = [], set()
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        for line, kind, expression in sql_interpolations(path):
            seen.add((relative, expression))
            if (relative, expression) not in ALLOWED:
                violations.append(f"{relative}:{line}: {kind} splices {expression!r} into SQL")
    assert not violations, "SQL built from values (bind them, or use psycopg.sql):\n" + "\n".join(violations)
    assert seen, "the scan found no SQL at all: it is not looking where the SQL is"


def test_the_scan_catches_each_way_of_splicing_a_value(tmp_path):
    """The scanner itself: every form below must be reported."""
    bad = tmp_path / "bad.py"
    bad.write_text(
        'Q = "SELECT * FROM payouts.recipients WHERE name = \'{name}\'"\n'
        "def f(conn, name, rid):\n"
        "    conn.execute(f\"SELECT * FROM payouts.recipients WHERE name = '{name}'\")\n"
        "    conn.execute(\"DELETE FROM payouts.runs WHERE run_id = '%s'\" % rid)\n"
        "    conn.execute(\"UPDATE payouts.runs SET trigger = '{}' WHERE run_id = 'R1'\".format(name))\n"
        "    conn.execute(\"INSERT INTO payouts.stops (reason) VALUES ('\" + name + \"')\")\n"
        "    conn.execute(Q.format(name=name))\n"
        "    conn.execute(\"SELECT * FROM payouts.runs WHERE run_id = %s\", (rid,))\n"   # bound: fine
        "    print(f\"select a file for {name}\")\n"                                    # prose: fine
    )
    kinds = sorted((kind, expression) for _, kind, expression in sql_interpolations(bad))
    assert kinds == [("%-format", "rid"), ("+", "name"), (".format", "name"), (".format", "name"),
                     ("f-string", "name")]
