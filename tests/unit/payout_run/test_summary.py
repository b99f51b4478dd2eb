"""The run's summary on a small warehouse."""

from __future__ import annotations

import psycopg

from payouts.payout_run import summary

from tests_support import add_item


def test_the_summary_counts_items_by_status_and_rail(small_warehouse):
    with psycopg.connect(small_warehouse, autocommit=True) as conn:
        add_item(conn, "R000001-00000001", "U-1", 1_000, status="accepted")
        add_item(conn, "R000001-00000002", "U-2", 2_000, status="rejected", rail="swift")
        add_item(conn, "R000001-00000003", "U-3", 3_000, status="held", rail=None)
        add_item(conn, "R000001-00000004", "U-1", 4_000, status="rejected", rail="swift", batch_no=None)
        got = summary.run_summary(conn, "R000001")
    assert got["items"]["by_status"] == {"accepted": 1, "held": 1, "rejected": 2}
    # Counted by rail once planned into a batch: the item the checks rejected has its rail, no batch.
    assert got["items"]["by_rail"] == {"sepa_instant": {"accepted": 1}, "swift": {"rejected": 1}}
