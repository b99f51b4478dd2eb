"""Bulk status changes of payout items, guarded by the state machine and recorded as events."""

from __future__ import annotations

import json

import psycopg

from payouts import states


def move_items(conn: psycopg.Connection, selection: str, to_status: str, params: dict | None = None,
               *, detail: str | None = None, reasons: list[dict] | None = None,
               extra_set: str = "") -> int:
    """Move every item that `selection` (a SELECT of item ids, package SQL) returns to `to_status`.

    Only items in a status that may move to `to_status` are touched, so a
    repeated call (a retried task) changes nothing. Returns the items moved.
    `reasons`, when given, are appended to each item's reasons.
    """
    if to_status not in states.STATES:
        raise states.TransitionError(f"unknown status {to_status!r}")
    sources = states.sources_of(to_status)
    if not sources:
        raise states.TransitionError(f"no status may move to {to_status!r}")
    query = f"""
        WITH moved AS (
            UPDATE payouts.payout_items i
            SET status = %(__to)s, updated_at = now(),
                reasons = i.reasons || %(__reasons)s::jsonb {extra_set}
            FROM (SELECT item_id, status AS old_status FROM payouts.payout_items
                  WHERE item_id IN ({selection}) AND status = ANY(%(__from)s)
                  FOR UPDATE) old
            WHERE i.item_id = old.item_id
            RETURNING i.item_id, old.old_status
        ), events AS (
            INSERT INTO payouts.item_events (item_id, from_status, to_status, detail)
            SELECT item_id, old_status, %(__to)s, %(__detail)s FROM moved
            RETURNING 1
        )
        SELECT count(*) FROM events
    """
    bound = dict(params or {}, __to=to_status, __from=sources, __detail=detail,
                 __reasons=json.dumps(reasons or []))
    with conn.transaction():
        # Statistics lag a bulk change of status (every item of a run was 'ready' a
        # moment ago): a nested loop planned for one row would visit every item per row.
        conn.execute("SET LOCAL enable_nestloop = off")
        return int(conn.execute(query, bound).fetchone()[0])


def reason(code: str, text: str, iso_code: str | None = None) -> dict:
    """A reason as items carry it: our stable code, the ISO 20022 code where one fits, a sentence."""
    return {"code": code, "iso_code": iso_code, "text": text}
