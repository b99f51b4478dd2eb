"""Stops: a kill switch for a run or a rail, or a rail paused for funding. Audited (who,
when, why) and lifted by a person; submit checks them before each batch leaves."""

from __future__ import annotations

import psycopg


def active_stop(conn: psycopg.Connection, run_id: str, rail: str) -> tuple[str, str] | None:
    """(kind, reason) of a stop that applies to this run and rail, or None."""
    row = conn.execute(
        "SELECT kind, reason FROM payouts.stops WHERE lifted_at IS NULL AND"
        " ((scope = 'run' AND target = %s) OR (scope = 'rail' AND target = %s))"
        " ORDER BY kind = 'kill' DESC, set_at LIMIT 1",
        (run_id, rail),
    ).fetchone()
    return (row[0], row[1]) if row else None


def set_stop(conn: psycopg.Connection, scope: str, target: str, kind: str, reason: str, set_by: str) -> None:
    """Stop new submissions for a run or a rail (audited: who, when, why)."""
    conn.execute(
        "INSERT INTO payouts.stops (scope, target, kind, reason, set_by) VALUES (%s, %s, %s, %s, %s)"
        " ON CONFLICT DO NOTHING",
        (scope, target, kind, reason, set_by),
    )


def lift_stop(conn: psycopg.Connection, scope: str, target: str, kind: str, lifted_by: str) -> int:
    return conn.execute(
        "UPDATE payouts.stops SET lifted_by = %s, lifted_at = now() WHERE scope = %s AND target = %s"
        " AND kind = %s AND lifted_at IS NULL", (lifted_by, scope, target, kind),
    ).rowcount
