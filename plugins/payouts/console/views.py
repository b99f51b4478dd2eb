"""What the console reads: runs, items and their history, reconciliation and breaks.

Plain functions over a warehouse connection returning JSON-ready dicts and
lists; the API and the dashboard page both use them.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from payouts.core import money
from payouts.core.ledger import TRANSFERS
from payouts.core.routing import planned_rail_sql
from payouts.warehouse.queries import sql

# The rail an item shows: its own once planned into a batch, else 'unrouted'.
_SHOWN_RAIL = planned_rail_sql("i", "'unrouted'")

if TYPE_CHECKING:
    import psycopg

SENT = ("submitted", "accepted", "awaiting_status", "settled", "returned")
FAILED = ("rejected", "returned", "cancelled")


def amount(minor: int | None, currency: str) -> str | None:
    if minor is None:
        return None
    try:
        return money.format_amount(int(minor), currency)
    except money.AmountError:
        return str(minor)


def eur(minor: int, currency: str) -> Decimal:
    rate = Decimal(money.INDICATIVE_PER_EUR.get(currency, "0") or "0")
    if rate <= 0:
        return Decimal(0)
    return money.to_decimal(int(minor), currency) / rate


def _dicts(cur) -> list[dict]:
    names = [d.name for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def run_status(run: dict, airflow: dict | None) -> str:
    """queued | running | awaiting_approval | success | failed (| rejected: a person said no)."""
    if run.get("approval_decision") == "rejected":
        return "rejected"
    if run.get("status") == "gate_failed":
        return "failed"
    if airflow:
        if airflow.get("awaiting_approval"):
            return "awaiting_approval"
        state = airflow.get("state")
        if state in ("queued", "running", "success", "failed"):
            return state
    if run.get("status") == "gate_failed":
        return "failed"
    if run.get("status") == "completed":
        return "success"
    return "running" if run.get("items") else "queued"


def list_runs(conn: "psycopg.Connection", limit: int = 50, offset: int = 0) -> list[dict]:
    cur = conn.execute(
        sql("console/list_runs"), (limit, offset))
    return _dicts(cur)


def get_run(conn: "psycopg.Connection", run_id: str) -> dict | None:
    cur = conn.execute(
        sql("console/get_run"), (run_id,))
    rows = _dicts(cur)
    if not rows:
        return None
    run = rows[0]
    run["by_status"] = dict(conn.execute(
        "SELECT status, count(*) FROM payouts.payout_items WHERE run_id = %s GROUP BY 1 ORDER BY 1",
        (run_id,)).fetchall())
    by_rail: dict[str, dict[str, int]] = {}
    for rail, status, n in conn.execute(
            f"SELECT {_SHOWN_RAIL}, status, count(*)"
            " FROM payouts.payout_items i WHERE run_id = %s"
            " GROUP BY 1, 2 ORDER BY 1, 2", (run_id,)).fetchall():
        by_rail.setdefault(rail, {})[status] = n
    run["by_rail"] = by_rail
    money_rows = conn.execute(
        """
        SELECT currency, sum(amount_minor) AS total,
               sum(amount_minor) FILTER (WHERE status IN ('accepted', 'settled')) AS paid,
               sum(amount_minor) FILTER (WHERE status = 'held') AS held
        FROM payouts.payout_items WHERE run_id = %s GROUP BY 1 ORDER BY 1
        """, (run_id,)).fetchall()
    run["money"] = {c: {"total": amount(t, c), "paid_out": amount(p or 0, c), "held": amount(h or 0, c)}
                    for c, t, p, h in money_rows}
    return run


def run_items(conn: "psycopg.Connection", run_id: str, status: str | None = None,
              limit: int = 1000, offset: int = 0) -> list[dict]:
    cur = conn.execute(
        sql("console/run_items"), {"run_id": run_id, "status": status, "limit": limit, "offset": offset})
    rows = _dicts(cur)
    for row in rows:
        row["amount"] = amount(row["amount_minor"], row["currency"])
    return rows


def item_history(conn: "psycopg.Connection", key: str) -> dict | None:
    """Everything about one item (by item id, or by the payout id a file or API request gave it)."""
    intake = _dicts(conn.execute(
        "SELECT intake, row_no, source, payout_id, recipient_id, currency, amount_minor, decision, reasons,"
        " accepted FROM payouts.intake_rows WHERE payout_id = %s ORDER BY intake, row_no", (key,)))
    payout = _dicts(conn.execute(
        "SELECT source, payout_id, intake, recipient_id, currency, amount_minor, txn_id, run_id, created_by,"
        " created_at FROM payouts.file_payouts WHERE payout_id = %s OR txn_id = %s", (key, key)))
    item_id = key
    if not conn.execute("SELECT 1 FROM payouts.payout_items WHERE item_id = %s", (key,)).fetchone() and payout:
        found = conn.execute(
            "SELECT i.item_id FROM payouts.payout_items i WHERE i.recipient_id = %s AND i.currency = %s"
            " AND (%s::text IS NULL OR i.run_id = %s) ORDER BY i.item_id LIMIT 1",
            (payout[0]["recipient_id"], payout[0]["currency"], payout[0]["run_id"], payout[0]["run_id"])
        ).fetchone()
        item_id = found[0] if found else None
    item = _dicts(conn.execute(
        "SELECT i.*, r.name AS recipient_name, r.country FROM payouts.payout_items i"
        " JOIN payouts.recipients r USING (recipient_id) WHERE i.item_id = %s", (item_id,))) if item_id else []
    if not item and not intake and not payout:
        return None
    out: dict[str, Any] = {"key": key, "item": item[0] if item else None, "intake": intake, "payout": payout}
    if item:
        out["item"]["amount"] = amount(item[0]["amount_minor"], item[0]["currency"])
        out["checks"] = item[0]["reasons"]
        out["attempts"] = _dicts(conn.execute(
            "SELECT rail, idempotency_key, status, provider_ref, reason_code, sends, first_sent_at, answered_at"
            " FROM payouts.attempts WHERE item_id = %s ORDER BY first_sent_at", (item_id,)))
        out["events"] = _dicts(conn.execute(
            "SELECT from_status, to_status, detail, at FROM payouts.item_events WHERE item_id = %s"
            " ORDER BY event_id", (item_id,)))
        out["postings"] = _dicts(conn.execute(
            "SELECT p.txn_id, t.kind, p.account, p.currency, p.amount_minor, p.created_at"
            " FROM ledger.postings p JOIN ledger.transactions t USING (txn_id)"
            " WHERE p.txn_id = ANY(%s) ORDER BY p.posting_id",
            ([f"{kind}:{item_id}" for kind in TRANSFERS] + [p["txn_id"] for p in payout],)))
        out["statement_lines"] = _dicts(conn.execute(
            "SELECT m.rule, m.matched_at, l.line_id, l.provider, l.account, l.statement_id, l.booking_date,"
            " l.value_date, l.amount_minor, l.currency, l.status, l.end_to_end_id, l.return_reason"
            " FROM recon.matches m JOIN recon.statement_lines l USING (line_id) WHERE m.item_id = %s"
            " ORDER BY l.booking_date, l.line_id", (item_id,)))
        out["breaks"] = _dicts(conn.execute(
            "SELECT break_id, break_type, status, opened_at, resolved_at, resolution FROM recon.breaks"
            " WHERE item_id = %s ORDER BY break_id", (item_id,)))
    return out


def reconciliation_summary(conn: "psycopg.Connection", start: dt.date | None, end: dt.date | None) -> list[dict]:
    rows = _dicts(conn.execute(
        """
        SELECT * FROM reporting.reconciliation_daily
        WHERE (%(start)s::date IS NULL OR day >= %(start)s) AND (%(end)s::date IS NULL OR day <= %(end)s)
        ORDER BY day, provider, currency
        """, {"start": start, "end": end}))
    for row in rows:
        expected = int(row["expected_minor"] or 0)
        row["reconciled_rate"] = round(int(row["settled_minor"] or 0) / expected, 4) if expected else None
    return rows


def breaks(conn: "psycopg.Connection", status: str | None = "open", limit: int = 1000) -> list[dict]:
    return _dicts(conn.execute(
        "SELECT break_id, break_type, status, owner, item_id, line_id, currency, line_amount_minor, opened_at,"
        " resolved_at, age_days, age_bucket, resolution FROM reporting.break_ageing"
        " WHERE (%(status)s::text IS NULL OR status = %(status)s) ORDER BY age_days DESC, break_id LIMIT %(limit)s",
        {"status": status, "limit": limit}))


def batches(conn: "psycopg.Connection", run_ids: list[str]) -> list[dict]:
    """Batches with their status, their payments by answer (accepted, rejected, unanswered) and the
    Airflow task instance that sent each one (map index = position in its rail's list)."""
    rows = _dicts(conn.execute(
        """
        SELECT b.run_id, r.dag_run_id, b.rail, b.batch_no, b.item_count, b.status, b.accepted, b.rejected,
               b.unanswered, b.detail, b.first_item, b.last_item, b.wave, b.provider
        FROM payouts.batches b JOIN payouts.runs r USING (run_id)
        WHERE b.run_id = ANY(%s) ORDER BY b.run_id DESC, b.rail, b.batch_no
        """, (run_ids,)))
    position: dict[tuple, int] = {}
    for row in rows:
        key = (row["run_id"], row["rail"], row["wave"])
        row["map_index"] = position.get(key, 0)
        position[key] = row["map_index"] + 1
        row["task_id"] = f"submit_{row['rail']}" if row["wave"] == 1 else f"submit_fallback_{row['rail']}"
        row["airflow_path"] = (f"dags/payout_run/runs/{row['dag_run_id']}/tasks/{row['task_id']}"
                               f"/mapped/{row['map_index']}")
    return rows


# -- the dashboard ------------------------------------------------------------

def funnel(conn: "psycopg.Connection") -> list[tuple[str, int]]:
    row = conn.execute(
        """
        SELECT count(DISTINCT item_id),
               count(DISTINCT item_id) FILTER (WHERE to_status = 'ready'),
               count(DISTINCT item_id) FILTER (WHERE to_status = 'submitted')
        FROM payouts.item_events
        """).fetchone()
    now = dict(conn.execute("SELECT status, count(*) FROM payouts.payout_items GROUP BY 1").fetchall())
    return [("snapshotted", int(row[0])), ("ready", int(row[1])), ("sent", int(row[2])),
            ("settled", int(now.get("settled", 0))),
            ("failed", int(sum(now.get(s, 0) for s in FAILED))), ("held", int(now.get("held", 0)))]


def failures_by(conn: "psycopg.Connection", column: str) -> list[tuple[str, int]]:
    expr = {"country": "r.country", "rail": _SHOWN_RAIL}[column]
    return [(k, int(n)) for k, n in conn.execute(
        f"SELECT {expr}, count(*) FROM payouts.payout_items i JOIN payouts.recipients r USING (recipient_id)"
        " WHERE i.status IN ('rejected', 'returned') GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 12").fetchall()]


def money_out_by_day(conn: "psycopg.Connection", days: int = 30) -> dict[str, list[tuple[dt.date, Decimal]]]:
    out: dict[str, list[tuple[dt.date, Decimal]]] = {}
    for day, currency, total in conn.execute(
            """
            SELECT a.answered_at::date, i.currency, sum(i.amount_minor)
            FROM payouts.attempts a JOIN payouts.payout_items i ON i.item_id = a.item_id AND a.rail = i.rail
            WHERE a.status = 'accepted' AND a.answered_at > now() - make_interval(days => %s)
            GROUP BY 1, 2 ORDER BY 1, 2
            """, (days,)).fetchall():
        out.setdefault(currency, []).append((day, money.to_decimal(int(total), currency)))
    return out


def reconciliation_rate(conn: "psycopg.Connection", days: int = 30) -> tuple[float | None, list[tuple[dt.date, float]]]:
    """The share (in indicative EUR) of what was accepted that has settled: overall and per day."""
    per_day: dict[dt.date, list[Decimal]] = {}
    for day, currency, expected, settled in conn.execute(
            "SELECT day, currency, expected_minor, settled_minor FROM reporting.reconciliation_daily"
            " WHERE day > now()::date - %s ORDER BY day", (days,)).fetchall():
        acc = per_day.setdefault(day, [Decimal(0), Decimal(0)])
        acc[0] += eur(int(expected or 0), currency)
        acc[1] += eur(int(settled or 0), currency)
    series = [(d, float(s / e)) for d, (e, s) in sorted(per_day.items()) if e > 0]
    total_e = sum((v[0] for v in per_day.values()), Decimal(0))
    total_s = sum((v[1] for v in per_day.values()), Decimal(0))
    return (float(total_s / total_e) if total_e > 0 else None), series


def break_ageing(conn: "psycopg.Connection") -> list[tuple[str, int]]:
    counts = dict(conn.execute(
        "SELECT age_bucket, count(*) FROM reporting.break_ageing WHERE status = 'open' GROUP BY 1").fetchall())
    return [(b, int(counts.get(b, 0))) for b in ("0-1d", "1-3d", "3-7d", "7-30d", "30d+")]
