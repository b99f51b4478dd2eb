"""Submit's own rules, without a provider: keys, a stop applied to a batch, the batch's range."""

from __future__ import annotations

import psycopg
import pytest

from payouts.payout_run import submit

from tests_support import add_item


def test_the_idempotency_key_is_the_item_on_its_rail():
    assert submit.idempotency_key("R000001-00000001", "sepa_instant") == "R000001-00000001:sepa_instant"
    assert submit.idempotency_key("R000001-00000001", "swift") != submit.idempotency_key("R000001-00000001", "ach")


def test_a_kill_switch_cancels_the_queued_items_of_a_batch_and_gives_their_money_back(small_warehouse):
    from payouts.core import ledger

    with psycopg.connect(small_warehouse, autocommit=True) as conn:
        for n, payee in enumerate(("U-1", "U-2", "U-3"), start=1):
            add_item(conn, f"R000001-0000000{n}", payee, 1_000 * n, batch_no=0)
        conn.execute("UPDATE payouts.payout_items SET status = 'submitted' WHERE item_id = 'R000001-00000003'")
        ledger.post_rows(conn, "earning", "SELECT 'earn:' || item_id, recipient_id, currency, amount_minor, NULL,"
                                          " NULL FROM payouts.payout_items",
                         [("earnings", 1, "owed", False), ("payable", -1, "owed", False)])
        ledger.post_transfers(conn, "reserve", "SELECT item_id FROM payouts.payout_items")
        assert ledger.balance(conn, "payable") == {"EUR": 0} and ledger.balance(conn, "reserved") == {"EUR": 6_000}
        params = submit.batch_params(conn, {"run_id": "R000001", "rail": "sepa_instant", "batch_no": 0,
                                            "first_item": "R000001-00000001", "last_item": "R000001-00000003"})
        assert submit._apply_stop(conn, params, "kill", "wrong file uploaded") == 2
        rows = conn.execute("SELECT item_id, status, reasons FROM payouts.payout_items ORDER BY item_id").fetchall()
        assert [s for _, s, _ in rows] == ["cancelled", "cancelled", "submitted"]  # sent already: not ours to cancel
        assert rows[0][2] == [{"code": "STOPPED", "iso_code": None, "text": "Stopped: wrong file uploaded"}]
        assert ledger.balance(conn, "payable") == {"EUR": 3_000} and ledger.balance(conn, "reserved") == {"EUR": 3_000}


def test_a_batch_without_its_range_is_read_from_the_plan_or_refused(small_warehouse):
    with psycopg.connect(small_warehouse, autocommit=True) as conn:
        conn.execute("INSERT INTO payouts.batches (run_id, rail, batch_no, first_item, last_item, item_count,"
                     " provider) VALUES ('R000001', 'swift', 3, 'R000001-00000010', 'R000001-00000020', 11, 'p')")
        params = submit.batch_params(conn, {"run_id": "R000001", "rail": "swift", "batch_no": 3})
        assert (params["first_item"], params["last_item"]) == ("R000001-00000010", "R000001-00000020")
        with pytest.raises(LookupError, match="run R000001 has no swift batch 4"):
            submit.batch_params(conn, {"run_id": "R000001", "rail": "swift", "batch_no": 4})
