"""The run's stages on a small warehouse: the batch plan and execution dates."""

from __future__ import annotations

import datetime as dt

import psycopg

from payouts.core.rails import RAILS
from payouts.payout_run import stages, summary


def test_the_batch_plan_lists_every_rail_and_carries_each_batch_and_its_provider(small_warehouse):
    with psycopg.connect(small_warehouse, autocommit=True) as conn:
        for rail, batch_no, wave in (("swift", 0, 1), ("swift", 1, 1), ("ach", 0, 1), ("swift", 2, 2)):
            conn.execute("INSERT INTO payouts.batches (run_id, rail, batch_no, first_item, last_item, item_count,"
                         " provider, wave) VALUES ('R000001', %s, %s, 'a', 'b', 2, 'bank_x', %s)",
                         (rail, batch_no, wave))
        first = stages.batch_plan(conn, "R000001", wave=1)
        second = stages.batch_plan(conn, "R000001", wave=2)
        stages.set_execution_dates(conn, "R000001")
        dates = dict(conn.execute("SELECT rail || batch_no, execution_date FROM payouts.batches").fetchall())
        counts = summary.batch_counts(conn, "R000001")
    assert set(first) == set(second) == set(RAILS)
    assert [b["batch_no"] for b in first["swift"]] == [0, 1] and first["sepa_instant"] == []
    assert first["ach"] == [{"run_id": "R000001", "rail": "ach", "batch_no": 0, "first_item": "a", "last_item": "b",
                             "item_count": 2, "provider": "bank_x"}]
    assert second["swift"][0]["wave"] == 2 and [b["batch_no"] for b in second["swift"]] == [2]
    today = dt.datetime.now(dt.timezone.utc).date()
    assert all(today <= d <= today + dt.timedelta(days=7) for d in dates.values())
    assert counts == {"planned": 4}
