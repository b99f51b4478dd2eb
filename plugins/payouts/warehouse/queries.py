"""Named SQL queries, kept as files in include/sql/queries/<part>/<name>.sql.

A query of more than a few lines lives in a file of its own, a folder per part
(checks, console, core, payout_run, reconcile), and is loaded by its name.
"""

from __future__ import annotations

import re
from functools import cache

from payouts import settings


@cache
def sql(name: str) -> str:
    """The text of include/sql/queries/<name>.sql (`name` as 'part/query')."""
    if not re.fullmatch(r"[a-z_]+/[a-z0-9_]+", name):
        raise ValueError(f"a query is named 'part/name' in lower case, not {name!r}")
    path = settings.QUERIES_DIR / f"{name}.sql"
    return path.read_text(encoding="utf-8")
