"""Bulk movement between PostgreSQL and polars through COPY, never row by row."""

from __future__ import annotations

import io
import re
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterator

import psycopg
from psycopg import sql as pgsql

if TYPE_CHECKING:
    import polars as pl


def copy_in(conn: psycopg.Connection, table: str, frame: "pl.DataFrame", columns: list[str] | None = None) -> int:
    """COPY a frame into `table` (schema-qualified; a trusted identifier). Returns rows."""
    columns = columns or frame.columns
    if frame.height == 0:
        return 0
    schema, _, name = table.rpartition(".")
    target = pgsql.Identifier(schema, name) if schema else pgsql.Identifier(name)
    stmt = pgsql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv, NULL '\\N')").format(
        target, pgsql.SQL(", ").join(pgsql.Identifier(c) for c in columns)
    )
    buffer = io.BytesIO()
    frame.select(columns).write_csv(buffer, include_header=False, null_value="\\N")
    data = buffer.getvalue()
    with conn.cursor() as cur, cur.copy(stmt) as copy:
        step = 8 << 20
        for start in range(0, len(data), step):
            copy.write(data[start : start + step])
    return frame.height


def copy_out(conn: psycopg.Connection, query: str, params: dict[str, Any] | tuple | None = None,
             schema: dict[str, Any] | None = None) -> "pl.DataFrame":
    """Run `query` and read its rows into polars through COPY ... TO STDOUT."""
    import polars as pl

    with conn.cursor() as cur:
        # COPY cannot take server-side parameters: values are bound client-side
        # by psycopg's own quoting, never by string formatting.
        bound = psycopg.ClientCursor(conn).mogrify(query, params) if params is not None else query
        stmt = f"COPY ({bound}) TO STDOUT (FORMAT csv, HEADER true, NULL '\\N')"
        buffer = io.BytesIO()
        with cur.copy(stmt) as copy:
            for chunk in copy:
                buffer.write(chunk)
    buffer.seek(0)
    if buffer.getbuffer().nbytes == 0:
        return pl.DataFrame(schema=schema or {})
    # Every column is read as text unless `schema` says otherwise: nothing is
    # ever guessed into a float.
    return pl.read_csv(buffer, null_values="\\N", schema_overrides=schema, infer_schema_length=0)


# Up to this many ids, items are looked up through the primary key one by one; above
# it, the ids are hash-joined against the table (one pass over it).
PROBE_MAX_IDS = 50_000


def selected_ids(conn: psycopg.Connection, table: str, selection: str, params: dict[str, Any] | None = None) -> str | None:
    """A condition on item_id matching the ids that `selection` (a SELECT of item ids,
    package SQL) returns, or None when it returns none. Call it inside a transaction.

    The ids go into the temp table `table` (created if needed, emptied, dropped at
    commit) and are counted. A batch among a million items is then probed through
    the primary key (`= ANY(ARRAY(...))` is an index lookup whatever the planner
    estimates); a whole run is hash-joined, with nested loops off until the
    caller's planner_restored block ends: statistics on status lag every bulk
    move, and a nested loop planned for one row over a large selection would
    visit every item per row.
    `table` is a temp table name of this package, never user text.
    """
    if not re.fullmatch(r"_[a-z_]+", table):
        raise ValueError(f"not a temp table name of this package: {table!r}")
    name = pgsql.Identifier(table)
    conn.execute(pgsql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} (item_id text) ON COMMIT DROP").format(name))
    conn.execute(pgsql.SQL("TRUNCATE {}").format(name))
    stored = conn.execute(pgsql.SQL("INSERT INTO {} ").format(name) + pgsql.SQL(selection), params or {}).rowcount
    if not stored:
        return None
    if stored <= PROBE_MAX_IDS:
        return f"= ANY(ARRAY(SELECT item_id FROM {table}))"
    conn.execute("SET LOCAL enable_nestloop = off")
    return f"IN (SELECT item_id FROM {table})"


@contextmanager
def planner_restored(conn: psycopg.Connection) -> Iterator[None]:
    """The caller's enable_nestloop again once the block is done. Use it inside a transaction.

    selected_ids and the bulk writers turn nested loops off with SET LOCAL,
    which lasts to the end of the whole transaction, savepoints included: the
    statements a caller runs afterwards in the same transaction (a recording of
    5,000 answers probing the items by key) would be hash-joined over every item
    of the table. If the block raises, its savepoint's rollback restores the
    setting as well.
    """
    before = conn.execute("SELECT current_setting('enable_nestloop')").fetchone()[0]
    yield
    conn.execute("SELECT set_config('enable_nestloop', %s, true)", (before,))
