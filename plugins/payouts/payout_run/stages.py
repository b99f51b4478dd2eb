"""The stages of a payout run, as plain functions over the warehouse.

The payout_run DAG calls these in order; so can the CLI and the tests. Each
stage is idempotent: calling it again for the same run changes nothing.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from typing import Iterator

import psycopg
import psycopg.sql

from payouts.core import ledger
from payouts import settings
from payouts.core.rails import RAILS, rail_providers
from payouts.core.routing import account_country_sql, fallback_sql, payee_rail_sql
from payouts.warehouse import copy_in, sql

_SNAPSHOT_LOCK = 7_201_002  # one snapshot at a time: two runs never reserve the same money


class RunError(RuntimeError):
    pass


def open_run(conn: psycopg.Connection, dag_run_id: str, trigger: str, conf: dict | None = None) -> str:
    """The run owned by `dag_run_id`, created on first call."""
    row = conn.execute(sql("payout_run/open_run"), {
        "dag_run_id": dag_run_id, "trigger": trigger, "conf": json.dumps(conf or {}),
    }).fetchone()
    run_id = row[0]
    if len(run_id) != 7:
        raise RunError(f"run number overflow: {run_id!r} does not fit the 16-character item id")
    return run_id


@contextmanager
def stage(conn_url: str, run_id: str, name: str) -> Iterator[None]:
    """Record the wall time of a stage on the run (first start to last end, across mapped tasks)."""
    start = time.time()
    yield
    end = time.time()
    with psycopg.connect(conn_url, autocommit=True) as conn:
        record_timing(conn, run_id, name, start, end)


def record_timing(conn: psycopg.Connection, run_id: str, name: str, start: float, end: float) -> None:
    conn.execute(
        sql("payout_run/record_timing"),
        {"name": name, "start": start, "end": end, "run_id": run_id},
    )


def snapshot(conn: psycopg.Connection, run_id: str) -> int:
    """Freeze the payables into the run's items and reserve their money. Returns the item count.

    A run is snapshotted once: on a retry the items already exist and nothing
    is taken again. The advisory lock makes concurrent runs take turns, and
    the reservation empties the payable balance, so the next run finds only
    what became payable since.
    """
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SNAPSHOT_LOCK,))
        existing = conn.execute(
            "SELECT count(*) FROM payouts.payout_items WHERE run_id = %s", (run_id,)
        ).fetchone()[0]
        if existing:
            return int(existing)
        conn.execute(snapshot_query(), {"run_id": run_id})
        # Fresh statistics: the run's items were not there when the table was last analysed.
        conn.execute("ANALYZE payouts.payout_items")
        conn.execute(
            "INSERT INTO payouts.item_events (item_id, from_status, to_status, detail)"
            " SELECT item_id, NULL, 'snapshotted', 'snapshot of payable balance'"
            " FROM payouts.payout_items WHERE run_id = %s",
            (run_id,),
        )
        ledger.post_transfers(
            conn, "reserve",
            "SELECT item_id FROM payouts.payout_items WHERE run_id = %(run_id)s",
            {"run_id": run_id},
        )
        return int(conn.execute(
            "SELECT count(*) FROM payouts.payout_items WHERE run_id = %s", (run_id,)
        ).fetchone()[0])


def snapshot_query() -> psycopg.sql.Composed:
    """include/sql/queries/payout_run/snapshot_payables.sql with its rail expression filled in."""
    return _composed("payout_run/snapshot_payables",
                     rail=payee_rail_sql("p.dest_kind", "p.paid_currency", "p.account_country"),
                     account_country=account_country_sql("r"))


def _composed(name: str, **expressions: str) -> psycopg.sql.Composed:
    """A query of include/sql/queries with SQL expressions of payouts.core.routing filled in."""
    return psycopg.sql.SQL(sql(name)).format(**{k: psycopg.sql.SQL(v) for k, v in expressions.items()})


def record_gate(conn: psycopg.Connection, run_id: str, result: dict) -> None:
    conn.execute(
        "UPDATE payouts.runs SET gate_result = %s, updated_at = now(),"
        " status = CASE WHEN %s THEN status ELSE 'gate_failed' END WHERE run_id = %s",
        (json.dumps(result), bool(result.get("success")), run_id),
    )


def check_items(conn: psycopg.Connection, run_id: str, verify=None) -> dict[str, int]:
    """Decide ready / held / rejected for every snapshotted item, with reasons (checks/run_checks.py)."""
    from payouts.checks.run_checks import check_run_items

    return check_run_items(conn, run_id, verify=verify)


def route_and_plan(conn: psycopg.Connection, run_id: str, batch_size: int = settings.BATCH_SIZE,
                   quote=None) -> dict[str, list[dict]]:
    """Number each rail's approved items into batches and return descriptors per rail.

    The rail of each item was decided at the snapshot (by the currency the payee is paid
    in). Items owed in one currency and paid in another get their firm FX quotes first
    from `quote(requests)`; an item left unconverted (no quote, or no FX provider) is a
    payment in the owed currency, and its rail is decided again by that currency.
    Idempotent: batches already planned for the run are returned as they are.
    """
    with conn.transaction():
        planned = conn.execute(
            "SELECT count(*) FROM payouts.batches WHERE run_id = %s", (run_id,)
        ).fetchone()[0]
        if not planned:
            if quote is not None:
                convert(conn, run_id, quote)
            conn.execute(_composed("payout_run/route_unconverted",
                                   rail=payee_rail_sql("r.dest_kind", "i.currency", account_country_sql("r"))),
                         {"run_id": run_id})
            conn.execute(sql("payout_run/batch_numbers"), {"run_id": run_id, "batch_size": batch_size})
            conn.execute("ANALYZE _routes")
            conn.execute(_composed("payout_run/plan_batches", fallback=fallback_sql("t.rail")))
            conn.execute(
                "INSERT INTO payouts.batches (run_id, rail, batch_no, first_item, last_item, item_count, provider)"
                " SELECT %s, rail, batch_no, min(item_id COLLATE \"C\"), max(item_id COLLATE \"C\"), count(*),"
                " %s::jsonb ->> rail FROM _routes GROUP BY rail, batch_no",
                (run_id, json.dumps(rail_providers())),
            )
            set_execution_dates(conn, run_id)
        return batch_plan(conn, run_id, wave=1)


def batch_plan(conn: psycopg.Connection, run_id: str, wave: int) -> dict[str, list[dict]]:
    """rail -> the descriptors of a wave's planned batches (what XCom carries to the submit tasks)."""
    rows = conn.execute(
        "SELECT rail, batch_no, first_item, last_item, item_count, provider FROM payouts.batches"
        " WHERE run_id = %s AND wave = %s ORDER BY rail, batch_no", (run_id, wave)).fetchall()
    plan: dict[str, list[dict]] = {rail: [] for rail in RAILS}
    for rail, batch_no, first, last, count, provider in rows:
        plan[rail].append({"run_id": run_id, "rail": rail, "batch_no": batch_no,
                           **({"wave": wave} if wave != 1 else {}), "first_item": first, "last_item": last,
                           "item_count": count, "provider": provider})
    return plan


def convert(conn: psycopg.Connection, run_id: str, quote) -> int:
    """Quote and record the conversion of every approved item whose payee is paid in another currency."""
    import polars as pl

    wanted = conn.execute(
        "SELECT i.item_id, i.currency, r.payout_currency, i.amount_minor FROM payouts.payout_items i"
        " JOIN payouts.recipients r USING (recipient_id) WHERE i.run_id = %s AND i.status = 'approved'"
        " AND i.paid_currency IS NULL AND r.payout_currency IS NOT NULL AND r.payout_currency <> i.currency",
        (run_id,),
    ).fetchall()
    if not wanted:
        return 0
    answers = quote([(item, src, dst, int(amount)) for item, src, dst, amount in wanted])
    frame = pl.DataFrame(answers).select(
        item_id="ref", from_currency="from", to_currency="to", rate="rate", fee_minor="fee_minor",
        to_amount_minor="to_amount_minor", quote_ref="quote_id")
    conn.execute("CREATE TEMP TABLE _quotes (item_id text, from_currency text, to_currency text, rate numeric,"
                 " fee_minor bigint, to_amount_minor bigint, quote_ref text) ON COMMIT DROP")
    copy_in(conn, "_quotes", frame)
    conn.execute(
        "INSERT INTO payouts.fx_quotes (item_id, from_currency, to_currency, rate, fee_minor, to_amount_minor,"
        " quote_ref) SELECT item_id, from_currency, to_currency, rate, fee_minor, to_amount_minor, quote_ref"
        " FROM _quotes ON CONFLICT (item_id) DO NOTHING")
    return conn.execute(
        "UPDATE payouts.payout_items i SET paid_currency = q.to_currency, paid_amount_minor = q.to_amount_minor,"
        " updated_at = now() FROM payouts.fx_quotes q WHERE q.item_id = i.item_id AND i.run_id = %s"
        " AND i.paid_currency IS NULL AND q.to_amount_minor > 0", (run_id,)).rowcount


def set_execution_dates(conn: psycopg.Connection, run_id: str) -> None:
    """The requested execution date of each new batch, from its rail's calendar and cut-off."""
    import datetime as dt

    from payouts.core.calendars import execution_date

    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    for rail in RAILS:
        conn.execute(
            "UPDATE payouts.batches SET execution_date = %s WHERE run_id = %s AND rail = %s"
            " AND execution_date IS NULL", (execution_date(rail, now), run_id, rail))
