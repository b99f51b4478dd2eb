"""Bulk status changes of payout items, guarded by the state machine and recorded as events."""

from __future__ import annotations

import json

import psycopg
import psycopg.sql

from payouts.core import states
from payouts.warehouse.bulk import planner_restored, selected_ids
from payouts.warehouse.queries import sql


def move_items(conn: psycopg.Connection, selection: str, to_status: str, params: dict | None = None,
               *, detail: str | None = None, reasons: list[dict] | None = None,
               extra_set: str = "") -> int:
    """Move every item that `selection` (a SELECT of item ids, package SQL) returns to `to_status`.

    Only items in a status that may move to `to_status` are touched, so a
    repeated call (a retried task) changes nothing. Returns the items moved.
    A compare-and-set, without locking rows first: an item whose status another
    transaction changed since this statement read it is left alone (PostgreSQL
    re-checks `status = old_status` on the row's newest version), so the event
    always names the status the item really left.
    `reasons`, when given, are appended to each item's reasons.
    """
    if to_status not in states.STATES:
        raise states.TransitionError(f"unknown status {to_status!r}")
    sources = states.sources_of(to_status)
    if not sources:
        raise states.TransitionError(f"no status may move to {to_status!r}")
    bound = dict(params or {}, __to=to_status, __from=sources, __detail=detail,
                 __reasons=json.dumps(reasons or []))
    with conn.transaction(), planner_restored(conn):
        # The selection first, with its real size: a batch among a million items is
        # probed through the primary key, a whole run hash-joined (bulk.selected_ids).
        ids = selected_ids(conn, "_moving", selection, params)
        moved = 0 if ids is None else int(conn.execute(_move_query(ids, extra_set), bound).fetchone()[0])
    return moved


def _move_query(ids: str, extra_set: str) -> str:
    return f"""
        WITH moved AS (
            UPDATE payouts.payout_items i
            SET status = %(__to)s, updated_at = now(),
                reasons = i.reasons || %(__reasons)s::jsonb {extra_set}
            FROM (SELECT item_id, status AS old_status FROM payouts.payout_items
                  WHERE item_id {ids} AND status = ANY(%(__from)s)) old
            WHERE i.item_id = old.item_id AND i.status = old.old_status
            RETURNING i.item_id, old.old_status
        ), events AS (
            INSERT INTO payouts.item_events (item_id, from_status, to_status, detail)
            SELECT item_id, old_status, %(__to)s, %(__detail)s FROM moved
            RETURNING 1
        )
        SELECT count(*) FROM events
    """


def move_decided(conn: psycopg.Connection, decided: str, from_status: str, decisions: list[str],
                 *, detail: str) -> dict[str, int]:
    """Move each item of the table `decided` (item_id, decision, reasons jsonb) from
    `from_status` to its own decision, appending its own reasons: one pass over
    the items where a move_items per decision would take one each and another for
    the reasons. Every decision is checked against the state machine first.
    Returns the items moved per decision (a repeated call moves none).
    """
    for decision in decisions:
        states.check_move(from_status, decision)
    query = psycopg.sql.SQL(sql("core/move_decided")).format(decided=psycopg.sql.Identifier(decided))
    with conn.transaction(), planner_restored(conn):
        # Every decided item of a run: one hash join (statistics on status lag, see bulk.selected_ids).
        conn.execute("SET LOCAL enable_nestloop = off")
        moved = dict(conn.execute(query, {"__from": from_status, "__to": decisions,
                                          "__detail": detail}).fetchall())
    return {decision: int(moved.get(decision, 0)) for decision in decisions}


