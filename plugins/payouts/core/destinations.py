"""A payee's destination blocked and unblocked: the one writer of
`payouts.recipients.destination_blocked_reason`.

A blocked destination is not paid (the snapshot skips it) until the payee gives
another one, through a payout file or an approved change of bank details. The
reason is one JSON shape whatever blocked it:
{"event": "rejected" | "returned", "item_id", "rail", "reason_code"}.
"""

from __future__ import annotations

import psycopg


def block(conn: psycopg.Connection, selection: str, event: str, params: dict | None = None) -> int:
    """Block the destination of every (recipient_id, item_id, rail, reason_code) row `selection` returns.

    `selection` is SQL written in this package; its values come in through `params`.
    Returns the number of recipients blocked.
    """
    return conn.execute(
        f"""
        UPDATE payouts.recipients r SET destination_blocked_reason = json_build_object(
            'event', %(__event)s::text, 'item_id', s.item_id, 'rail', s.rail, 'reason_code', s.reason_code)::text
        FROM ({selection}) AS s (recipient_id, item_id, rail, reason_code)
        WHERE r.recipient_id = s.recipient_id
        """, dict(params or {}, __event=event)).rowcount


def unblock(conn: psycopg.Connection, selection: str, params: dict | None = None) -> int:
    """Unblock the destination of every recipient id `selection` returns (a new destination was given)."""
    return conn.execute(
        f"UPDATE payouts.recipients r SET destination_blocked_reason = NULL"
        f" WHERE r.recipient_id IN ({selection}) AND r.destination_blocked_reason IS NOT NULL",
        params).rowcount
