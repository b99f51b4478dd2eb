"""The end of a payout run: its batches closed and its summary (items by status, rail,
provider and stopping reason; batches; money out; stage timings), stored on the run."""

from __future__ import annotations

import json

import psycopg

from payouts.core.routing import planned_rail_sql

# An item counts by rail once it is planned into a batch of that rail.
_PLANNED_RAIL = planned_rail_sql("i")


def finish(conn: psycopg.Connection, run_id: str) -> dict:
    """Close the run: its batches done or failed, its summary stored, the run completed."""
    from payouts.payout_run.submit import close_batches

    close_batches(conn, run_id)
    summary = run_summary(conn, run_id)
    conn.execute(
        "UPDATE payouts.runs SET status = CASE WHEN status = 'gate_failed' THEN status ELSE 'completed' END,"
        " summary = %s, updated_at = now() WHERE run_id = %s",
        (json.dumps(summary), run_id),
    )
    return summary


def run_summary(conn: psycopg.Connection, run_id: str) -> dict:
    by_status = dict(conn.execute(
        "SELECT status, count(*) FROM payouts.payout_items WHERE run_id = %s GROUP BY 1 ORDER BY 1", (run_id,)
    ).fetchall())
    # Items the checks stopped are never planned into a batch of their rail: they are counted
    # by reason below, not by rail.
    by_rail = {
        rail: dict(statuses) for rail, statuses in conn.execute(
            "SELECT rail, jsonb_object_agg(status, n) FROM ("
            f" SELECT {_PLANNED_RAIL} AS rail, status, count(*) n FROM payouts.payout_items i WHERE run_id = %s"
            " GROUP BY 1, 2) s WHERE rail IS NOT NULL GROUP BY 1 ORDER BY 1", (run_id,)
        ).fetchall()
    }
    # The provider connection of each item's batch (planned items only; a tiny table joined).
    by_provider = {
        provider: dict(statuses) for provider, statuses in conn.execute(
            "SELECT provider, jsonb_object_agg(status, n) FROM ("
            " SELECT b.provider, i.status, count(*) n FROM payouts.payout_items i JOIN payouts.batches b"
            " ON b.run_id = i.run_id AND b.rail = i.rail AND b.batch_no = i.batch_no"
            " WHERE i.run_id = %s GROUP BY 1, 2) s GROUP BY 1 ORDER BY 1", (run_id,)
        ).fetchall()
    }
    money_out = {
        cur: str(_fmt(total, cur)) for cur, total in conn.execute(
            "SELECT currency, sum(amount_minor) FROM payouts.payout_items WHERE run_id = %s"
            " AND status IN ('accepted', 'settled') GROUP BY 1 ORDER BY 1", (run_id,)
        ).fetchall()
    }
    timings, gate = conn.execute(
        "SELECT timings_s, gate_result FROM payouts.runs WHERE run_id = %s", (run_id,)).fetchone()
    held_by_reason, rejected_by_reason = reasons_of_stopped_items(conn, run_id)
    return {
        "quality_gate": None if gate is None else {
            "success": gate.get("success"),
            "expectations": len(gate.get("expectations", [])),
            "failed": [e.get("expectation") for e in gate.get("expectations", []) if not e.get("success")],
            **({"note": gate["note"]} if gate.get("note") else {}),
        },
        "run_id": run_id,
        "items": {"total": sum(by_status.values()), "by_status": by_status, "by_rail": by_rail,
                  "by_provider": by_provider, "held_by_reason": held_by_reason,
                  "rejected_by_reason": rejected_by_reason},
        "batches": batch_counts(conn, run_id),
        "money_out": money_out,
        "timings_s": {k: round(v["end"] - v["start"], 3) for k, v in (timings or {}).items()},
    }


def reasons_of_stopped_items(conn: psycopg.Connection, run_id: str) -> tuple[dict[str, int], dict[str, int]]:
    """Held items by each holding reason they carry (an item held for two counts under both),
    and rejected items by the reason that rejected them (their last): what finance acts on."""
    from payouts.core.reasons import HOLDING_CODES

    held = dict(conn.execute(
        """
        SELECT coalesce(h.code, 'UNSPECIFIED'), count(*) FROM payouts.payout_items i
        LEFT JOIN LATERAL (SELECT DISTINCT r ->> 'code' AS code FROM jsonb_array_elements(i.reasons) r
                           WHERE r ->> 'code' = ANY(%(holding)s)) h ON true
        WHERE i.run_id = %(run_id)s AND i.status = 'held' GROUP BY 1 ORDER BY 2 DESC, 1
        """, {"run_id": run_id, "holding": sorted(HOLDING_CODES)}).fetchall())
    rejected = dict(conn.execute(
        "SELECT coalesce(reasons -> -1 ->> 'code', 'UNSPECIFIED'), count(*) FROM payouts.payout_items"
        " WHERE run_id = %s AND status = 'rejected' GROUP BY 1 ORDER BY 2 DESC, 1", (run_id,)).fetchall())
    return {k: int(v) for k, v in held.items()}, {k: int(v) for k, v in rejected.items()}


def batch_counts(conn: psycopg.Connection, run_id: str) -> dict[str, int]:
    """The run's batches by status (planned, sent, done, failed)."""
    return {k: int(v) for k, v in conn.execute(
        "SELECT status, count(*) FROM payouts.batches WHERE run_id = %s GROUP BY 1 ORDER BY 1",
        (run_id,)).fetchall()}


def _fmt(minor: int, currency: str) -> str:
    from payouts.core.money import format_amount

    return format_amount(int(minor), currency)
