"""The one writer of a blocked destination: one JSON shape whatever blocked it."""

from __future__ import annotations

import json

import psycopg

from payouts.core import destinations


def _reason(conn, rid):
    value = conn.execute("SELECT destination_blocked_reason FROM payouts.recipients WHERE recipient_id = %s",
                         (rid,)).fetchone()[0]
    return None if value is None else json.loads(value)


def test_blocked_by_a_rejection_or_a_return_then_unblocked(small_warehouse):
    with psycopg.connect(small_warehouse, autocommit=True) as conn:
        assert destinations.block(conn, "SELECT 'U-1', 'R000001-00000001', 'sepa_instant', 'AC04'", "rejected") == 1
        assert destinations.block(conn, "SELECT %(r)s, 'R000001-00000002', 'swift', %(code)s", "returned",
                                  {"r": "U-2", "code": "MD07"}) == 1
        assert _reason(conn, "U-1") == {"event": "rejected", "item_id": "R000001-00000001", "rail": "sepa_instant",
                                        "reason_code": "AC04"}
        assert _reason(conn, "U-2")["event"] == "returned" and _reason(conn, "U-2")["reason_code"] == "MD07"
        assert _reason(conn, "U-3") is None
        assert destinations.unblock(conn, "SELECT recipient_id FROM payouts.recipients") == 2  # U-3 was not blocked
        assert [_reason(conn, r) for r in ("U-1", "U-2", "U-3")] == [None, None, None]
