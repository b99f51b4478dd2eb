"""The life of a break and of a suggestion: closing, resolving, confirming, each audited.

A break that a later statement answers closes itself; a person resolves the
rest with a note. Every change to a break is a row in recon.break_audit with
who, why and the break before and after. Arbitrary-amount postings (fees) live
here too, keyed by transaction id like every posting, so a re-run adds nothing.
"""

from __future__ import annotations

import json

import psycopg

from payouts.core import items, ledger
from payouts.reconcile.rules import CONFIRMED_SUGGESTION_RULE, SELF_CLOSING_BREAKS
from payouts.warehouse.queries import sql

SYSTEM = "reconciliation"   # who closes a break that a later statement answered


class BreakError(ValueError):
    """A break or suggestion that cannot be changed as asked (unknown, or already decided)."""


def close_answered_breaks(conn: psycopg.Connection, who: str = SYSTEM) -> int:
    """Close every open break that a match now answers, with an audit row each.

    missing_at_provider: its item is matched. unexpected_at_provider, amount_mismatch,
    currency_mismatch: its line is matched (a batch, a fee, a quote that came later, a
    confirmed suggestion).
    """
    return int(conn.execute(
        sql("reconcile/close_answered_breaks"),
        {"types": sorted(SELF_CLOSING_BREAKS), "who": who},
    ).fetchone()[0])


def resolve_break(conn: psycopg.Connection, break_id: int, who: str, note: str,
                  resolution: str | None = None) -> dict:
    """A person resolves an open break with a note; refused if it is unknown or already resolved.

    `who` may name two people (an approved write-off: 'requester+approver'); `resolution`
    is what the break keeps as its resolution (the note by default).
    """
    if not who or not who.strip():
        raise BreakError("a break is resolved by someone: `who` is required")
    if not note or not note.strip():
        raise BreakError("a break is resolved with a note saying why")
    with conn.transaction():
        row = conn.execute(
            "SELECT to_jsonb(b), b.status, b.resolved_at, b.resolution FROM recon.breaks b"
            " WHERE b.break_id = %s FOR UPDATE", (break_id,)
        ).fetchone()
        if row is None:
            raise BreakError(f"break {break_id} does not exist")
        before, status, resolved_at, resolution = row
        if status != "open":
            by = conn.execute(
                "SELECT who FROM recon.break_audit WHERE break_id = %s ORDER BY at DESC, audit_id DESC LIMIT 1",
                (break_id,),
            ).fetchone()
            raise BreakError(
                f"break {break_id} was already resolved at {resolved_at:%Y-%m-%d %H:%M:%S}"
                f"{' by ' + by[0] if by else ''} ({resolution}); it cannot be resolved again"
            )
        after = conn.execute(
            "UPDATE recon.breaks b SET status = 'resolved', resolved_at = now(), resolution = %s"
            " WHERE b.break_id = %s RETURNING to_jsonb(b)", (resolution or note.strip(), break_id),
        ).fetchone()[0]
        conn.execute(
            "INSERT INTO recon.break_audit (break_id, action, who, note, before, after)"
            " VALUES (%s, 'resolved', %s, %s, %s, %s)",
            (break_id, who, note.strip(), json.dumps(before, default=str), json.dumps(after, default=str)),
        )
    return after


def confirm_suggestion(conn: psycopg.Connection, suggestion_id: int, who: str) -> dict:
    """A person confirms a suggestion: the match, the settlement, and the breaks it answers close.

    Refused when the suggestion is not open, or its line or item was matched since. Other open
    suggestions for the same line or item are rejected as superseded. When the line debited more
    than the item, the difference is posted as a fee.
    """
    if not who or not who.strip():
        raise BreakError("a suggestion is confirmed by someone: `who` is required")
    with conn.transaction():
        row = conn.execute(
            "SELECT s.line_id, s.item_id, s.status, s.decided_by, l.amount_minor, l.currency, l.status,"
            " i.amount_minor, i.currency, i.status"
            " FROM recon.suggestions s JOIN recon.statement_lines l USING (line_id)"
            " JOIN payouts.payout_items i ON i.item_id = s.item_id"
            " WHERE s.suggestion_id = %s FOR UPDATE OF s, i", (suggestion_id,),
        ).fetchone()
        if row is None:
            raise BreakError(f"suggestion {suggestion_id} does not exist")
        line_id, item_id, status, decided_by, line_amount, line_ccy, line_status, item_amount, item_ccy, \
            item_status = row
        if status != "open":
            raise BreakError(f"suggestion {suggestion_id} was already {status} by {decided_by}")
        if line_status != "booked":
            raise BreakError(f"suggestion {suggestion_id}: line {line_id} is not booked")
        taken = conn.execute(
            "SELECT rule, line_id, item_id FROM recon.matches WHERE line_id = %s OR item_id = %s LIMIT 1",
            (line_id, item_id),
        ).fetchone()
        if taken:
            raise BreakError(f"suggestion {suggestion_id}: line {taken[1]} / item {taken[2]} was matched"
                             f" already (rule {taken[0]})")
        if item_status != "accepted":
            raise BreakError(f"suggestion {suggestion_id}: item {item_id} is {item_status}, not accepted")
        conn.execute("INSERT INTO recon.matches (line_id, item_id, rule, provider)"
                     " SELECT %s, %s, %s, provider FROM recon.statement_lines WHERE line_id = %s",
                     (line_id, item_id, CONFIRMED_SUGGESTION_RULE, line_id))
        ledger.post_transfers(conn, "settle", "SELECT %(item)s::varchar", {"item": item_id})
        items.move_items(conn, "SELECT %(item)s::varchar", "settled", {"item": item_id},
                         detail=f"suggestion {suggestion_id} confirmed by {who}")
        fee = abs(line_amount) - item_amount
        if line_ccy == item_ccy and fee > 0:
            ledger.post_amounts(conn, "fee", "SELECT %(item)s::varchar, %(ccy)s::text, %(fee)s::bigint",
                         {"item": item_id, "ccy": item_ccy, "fee": fee})
        conn.execute(
            "UPDATE recon.suggestions SET status = 'confirmed', decided_by = %s, decided_at = now()"
            " WHERE suggestion_id = %s", (who, suggestion_id),
        )
        conn.execute(
            "UPDATE recon.suggestions SET status = 'rejected', decided_by = %s, decided_at = now(),"
            " note = %s WHERE status = 'open' AND (line_id = %s OR item_id = %s)",
            (who, f"superseded by suggestion {suggestion_id}", line_id, item_id),
        )
        closed = close_answered_breaks(conn, who=who)
    return {"suggestion_id": suggestion_id, "line_id": line_id, "item_id": item_id, "breaks_closed": closed}

