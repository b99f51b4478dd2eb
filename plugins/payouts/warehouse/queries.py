"""Named SQL queries, kept as files in include/sql/queries/."""

from __future__ import annotations

from functools import cache

from payouts import settings


@cache
def sql(name: str) -> str:
    """The text of include/sql/queries/<name>.sql."""
    path = settings.QUERIES_DIR / f"{name}.sql"
    return path.read_text(encoding="utf-8")
