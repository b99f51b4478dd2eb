"""Bulk movement between PostgreSQL and polars through COPY, never row by row."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

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
    """Run `query` and read its rows into polars through COPY ... TO STDOUT.

    Parameters are bound server-side by first turning the query into a
    literal-safe statement with psycopg's client-side binding.
    """
    import polars as pl

    with conn.cursor() as cur:
        bound = pgsql.SQL(query).format() if params is None else None
        if params is not None:
            bound = psycopg.ClientCursor(conn).mogrify(query, params)
        stmt = pgsql.SQL("COPY ({}) TO STDOUT (FORMAT csv, HEADER true, NULL '\\N')").format(
            pgsql.SQL(bound) if isinstance(bound, str) else bound
        )
        buffer = io.BytesIO()
        with cur.copy(stmt) as copy:
            for chunk in copy:
                buffer.write(chunk)
    buffer.seek(0)
    if buffer.getbuffer().nbytes == 0:
        return pl.DataFrame(schema=schema or {})
    return pl.read_csv(buffer, null_values="\\N", schema_overrides=schema, infer_schema_length=0 if schema is None else 100)
