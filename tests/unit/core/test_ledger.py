"""The one ledger writer: every posting balances, a transaction posted twice adds nothing,
and the fresh transaction ids are the ones posted now."""

from __future__ import annotations

import psycopg
import pytest

from payouts.core import ledger

from tests_support import add_item


def _legs(conn, txn_id: str) -> list[tuple[str, str, int]]:
    return conn.execute("SELECT account, currency, amount_minor FROM ledger.postings WHERE txn_id = %s"
                        " ORDER BY account, currency", (txn_id,)).fetchall()


def test_a_transfer_posts_two_balanced_legs_once(small_warehouse):
    with psycopg.connect(small_warehouse, autocommit=True) as conn:
        add_item(conn, "R000001-00000001", "U-1", 12_345)
        add_item(conn, "R000001-00000002", "U-2", 500)
        pick = "SELECT item_id FROM payouts.payout_items WHERE run_id = 'R000001'"
        assert ledger.post_transfers(conn, "reserve", pick) == 2
        assert ledger.post_transfers(conn, "reserve", pick) == 0  # a retried task adds nothing
        assert _legs(conn, "reserve:R000001-00000001") == [("payable", "EUR", 12_345), ("reserved", "EUR", -12_345)]
        assert ledger.unbalanced(conn) == [] and ledger.orphans(conn) == []
        assert ledger.balance(conn, "reserved") == {"EUR": 12_845}


def test_a_converted_payment_balances_each_currency_through_fx_position(small_warehouse):
    with psycopg.connect(small_warehouse, autocommit=True) as conn:
        add_item(conn, "R000001-00000001", "U-1", 10_000, paid_currency="GBP", paid_amount_minor=8_600)
        add_item(conn, "R000001-00000002", "U-2", 700)  # not converted: fx posts nothing for it
        pick = "SELECT item_id FROM payouts.payout_items"
        assert ledger.post_transfers(conn, "send", pick) == 2
        assert ledger.post_transfers(conn, "fx", pick) == 1
        assert _legs(conn, "fx:R000001-00000001") == [
            ("clearing", "EUR", 10_000), ("clearing", "GBP", -8_600),
            ("fx_position", "EUR", -10_000), ("fx_position", "GBP", 8_600)]
        assert _legs(conn, "fx:R000001-00000002") == []
        assert ledger.post_transfers(conn, "settle", pick) == 2
        assert _legs(conn, "settle:R000001-00000001") == [("cash", "GBP", -8_600), ("clearing", "GBP", 8_600)]
        assert ledger.unbalanced(conn) == []


def test_amounts_that_are_not_an_items_own_post_only_when_positive(small_warehouse):
    with psycopg.connect(small_warehouse, autocommit=True) as conn:
        posted = ledger.post_amounts(conn, "fee", "SELECT * FROM (VALUES ('R000001-00000001', 'EUR', 35::bigint),"
                                                  " ('R000001-00000002', 'EUR', 0::bigint)) AS v")
        assert posted == 1
        assert _legs(conn, "fee:R000001-00000001") == [("cash", "EUR", -35), ("fees", "EUR", 35)]
        assert conn.execute("SELECT recipient_id FROM ledger.postings WHERE txn_id = 'fee:R000001-00000001'"
                            " LIMIT 1").fetchone()[0] is None


def test_post_rows_files_the_ids_posted_now_and_refuses_a_table_name_it_did_not_write(small_warehouse):
    legs = [("earnings", 1, "owed", False), ("payable", -1, "owed", False)]
    rows = ("SELECT * FROM (VALUES ('earn:a', 'U-1', 'EUR', 100::bigint, NULL, NULL),"
            " ('earn:b', 'U-2', 'EUR', 200::bigint, NULL, NULL)) AS v")
    with psycopg.connect(small_warehouse) as conn:
        conn.execute("CREATE TEMP TABLE _fresh (txn_id text) ON COMMIT DROP")
        assert ledger.post_rows(conn, "earning", rows, legs, fresh_into="_fresh") == 2
        conn.execute("TRUNCATE _fresh")
        assert ledger.post_rows(conn, "earning", rows, legs, fresh_into="_fresh") == 0
        assert conn.execute("SELECT count(*) FROM _fresh").fetchone()[0] == 0
        assert ledger.balance(conn, "payable") == {"EUR": 300}
        with pytest.raises(ValueError, match="temp table"):
            ledger.post_rows(conn, "earning", rows, legs, fresh_into="x; DROP TABLE ledger.postings")
        conn.commit()


def test_currencies_follow_the_money_module(small_warehouse):
    from payouts.core import money

    with psycopg.connect(small_warehouse, autocommit=True) as conn:
        conn.execute("UPDATE ledger.currencies SET exponent = 9 WHERE code = 'EUR'")
        ledger.sync_currencies(conn)
        known = dict(conn.execute("SELECT code, exponent FROM ledger.currencies").fetchall())
    assert known["EUR"] == money.EXPONENTS["EUR"] == 2
    assert set(money.EXPONENTS) <= set(known)
