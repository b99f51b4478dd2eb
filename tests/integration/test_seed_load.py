"""Loading the synthetic platform into a real warehouse: counts, idempotency, a balanced ledger."""

from __future__ import annotations

import psycopg
import pytest

from payouts_tooling import seed
from tests_support import WAREHOUSES, fresh_database


@pytest.fixture(params=WAREHOUSES)
def own_warehouse(request) -> str:
    """A warehouse of its own: this test reads whole-ledger totals."""
    url, drop = fresh_database(request.param)
    request.addfinalizer(drop)
    return url

N = 2_000
PERIOD = "2026-03-31"


def _payable(conn) -> dict[str, int]:
    return dict(conn.execute(
        "SELECT currency, (-sum(amount_minor))::bigint FROM ledger.postings"
        " WHERE account = 'payable' AND txn_id LIKE %s GROUP BY currency", (f"earn:{PERIOD}:%",)
    ).fetchall())


def test_load_counts_idempotency_and_balance(own_warehouse):
    warehouse_url = own_warehouse
    messages: list[str] = []
    with psycopg.connect(warehouse_url) as conn:
        first = seed.load(conn, N, seed=11, period=PERIOD, progress=messages.append)
    assert first["recipients_added"] == N
    assert first["earnings_posted"] == N
    assert messages  # progress was reported

    with psycopg.connect(warehouse_url) as conn:
        stored = conn.execute(
            "SELECT count(*), count(DISTINCT country), count(*) FILTER (WHERE dest_kind = 'wallet')"
            " FROM payouts.recipients WHERE recipient_id LIKE 'U%%' AND recipient_id <= %s", (f"U{N:08d}",)
        ).fetchone()
        assert stored[0] == N and stored[1] >= 50 and stored[2] > 0
        txns = conn.execute("SELECT count(*) FROM ledger.transactions WHERE txn_id LIKE %s",
                            (f"earn:{PERIOD}:%",)).fetchone()[0]
        legs = conn.execute("SELECT count(*) FROM ledger.postings WHERE txn_id LIKE %s",
                            (f"earn:{PERIOD}:%",)).fetchone()[0]
        assert (txns, legs) == (N, 2 * N)
        assert conn.execute("SELECT count(*) FROM ledger.unbalanced_transactions").fetchone()[0] == 0
        payable = _payable(conn)
        assert payable == first["earned_by_currency"]
        for currency, total in payable.items():
            assert first["total_payable_by_currency"][currency] >= total > 0

    # The same call again adds nothing.
    with psycopg.connect(warehouse_url) as conn:
        again = seed.load(conn, N, seed=11, period=PERIOD)
        assert again["recipients_added"] == 0
        assert again["earnings_posted"] == 0
        assert again["total_payable_by_currency"] == first["total_payable_by_currency"]
        assert _payable(conn) == payable

    # A larger platform extends the smaller one; a new period posts for everyone.
    with psycopg.connect(warehouse_url) as conn:
        grown = seed.load(conn, N + 500, seed=11, period="2026-04-30")
        assert grown["recipients_added"] == 500
        assert grown["earnings_posted"] == N + 500
        assert conn.execute("SELECT count(*) FROM ledger.unbalanced_transactions").fetchone()[0] == 0
        balances = dict(conn.execute(
            "SELECT account, sum(amount_minor) FROM ledger.postings"
            " WHERE txn_id LIKE 'earn:%%' GROUP BY account"
        ).fetchall())
        assert balances["earnings"] == -balances["payable"] > 0


def test_load_skips_recipients_stored_with_another_currency(warehouse_url):
    """An id already stored differently keeps its row and earns nothing in a foreign currency."""
    with psycopg.connect(warehouse_url) as conn:
        seed.load(conn, 50, seed=11, period="2026-05-31")  # ids U00000001.. exist from seed 11
        result = seed.load(conn, 50, seed=99, period="2026-06-30")
        assert result["recipients_added"] == 0
        mismatched = conn.execute(
            "SELECT count(*) FROM ledger.postings p JOIN payouts.recipients r USING (recipient_id)"
            " WHERE p.txn_id LIKE 'earn:2026-06-30:%' AND p.currency <> r.currency"
        ).fetchone()[0]
        assert mismatched == 0
        assert conn.execute("SELECT count(*) FROM ledger.unbalanced_transactions").fetchone()[0] == 0


def test_default_period_is_today_utc(warehouse_url):
    import datetime as dt

    with psycopg.connect(warehouse_url) as conn:
        result = seed.load(conn, 10, seed=11)
    assert result["period"] == dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")


def test_fast_path_keeps_the_ledger_whole(warehouse_url, monkeypatch):
    """The superuser path (foreign-key triggers skipped) posts exactly what the checked path does."""
    monkeypatch.setattr(seed, "FAST_LOAD_MIN_ROWS", 0)
    with psycopg.connect(warehouse_url) as conn:
        result = seed.load(conn, 300, seed=11, period="2026-07-31")
        superuser = conn.execute("SELECT current_setting('is_superuser') = 'on'").fetchone()[0]
        assert result["row_triggers_skipped"] == superuser
        assert result["earnings_posted"] == 300
        orphans = conn.execute(
            "SELECT count(*) FROM ledger.postings p"
            " LEFT JOIN ledger.transactions t USING (txn_id)"
            " LEFT JOIN ledger.currencies c ON c.code = p.currency"
            " WHERE p.txn_id LIKE 'earn:2026-07-31:%' AND (t.txn_id IS NULL OR c.code IS NULL)"
        ).fetchone()[0]
        assert orphans == 0
        assert conn.execute("SHOW session_replication_role").fetchone()[0] == "origin"
        assert conn.execute("SELECT count(*) FROM ledger.unbalanced_transactions").fetchone()[0] == 0
