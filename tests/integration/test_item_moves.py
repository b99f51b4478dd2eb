"""Bulk status moves and postings read the same items whether they probe or hash-join."""

from __future__ import annotations

import psycopg
import pytest

from payouts.core import items, ledger
from payouts.warehouse import bulk
from tests_support import WAREHOUSES, fresh_database


@pytest.fixture(params=WAREHOUSES)
def warehouse(request):
    url, drop = fresh_database(request.param)
    request.addfinalizer(drop)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO payouts.runs (run_id, dag_run_id, trigger) VALUES ('R000001', 'd', 'test')")
        conn.execute("INSERT INTO payouts.recipients (recipient_id, name, country, currency, dest_kind, iban)"
                     " VALUES ('C1', 'A Payee', 'DE', 'EUR', 'iban', 'DE89370400440532013000')")
        conn.execute("INSERT INTO payouts.payout_items (item_id, run_id, recipient_id, currency, amount_minor, status)"
                     " SELECT 'R000001-' || lpad(n::text, 8, '0'), 'R000001', 'C1', 'EUR', n, 'ready'"
                     " FROM generate_series(1, 300) n")
    return url


@pytest.mark.parametrize("probe_max", [0, 1_000_000], ids=["hash-join", "probe"])
def test_moves_and_postings_take_exactly_the_selection(warehouse, monkeypatch, probe_max):
    monkeypatch.setattr(bulk, "PROBE_MAX_IDS", probe_max)
    odd = "SELECT item_id FROM payouts.payout_items WHERE run_id = %(run_id)s AND amount_minor %% 2 = 1"
    with psycopg.connect(warehouse, autocommit=True) as conn:
        assert items.move_items(conn, odd, "approved", {"run_id": "R000001"}, detail="test") == 150
        assert items.move_items(conn, odd, "approved", {"run_id": "R000001"}, detail="test") == 0  # a repeat
        assert items.move_items(conn, "SELECT 'R000001-99999999'", "approved", detail="test") == 0  # no such item
        statuses = dict(conn.execute("SELECT status, count(*) FROM payouts.payout_items GROUP BY 1").fetchall())
        assert statuses == {"approved": 150, "ready": 150}
        events = conn.execute("SELECT count(*) FROM payouts.item_events WHERE from_status = 'ready'"
                              " AND to_status = 'approved'").fetchone()[0]
        assert events == 150
        assert ledger.post_transfers(conn, "reserve", odd, {"run_id": "R000001"}) == 150
        assert ledger.post_transfers(conn, "reserve", odd, {"run_id": "R000001"}) == 0  # keyed: once
        reserved = conn.execute("SELECT -sum(amount_minor) FROM ledger.postings WHERE account = 'reserved'").fetchone()[0]
        assert reserved == sum(n for n in range(1, 301) if n % 2)
        assert ledger.unbalanced(conn) == [] and ledger.orphans(conn) == []


@pytest.mark.parametrize("probe_max", [0, 1_000_000], ids=["hash-join", "probe"])
def test_moves_and_postings_leave_the_callers_planner_settings_alone(warehouse, monkeypatch, probe_max):
    # Their nested loops are off only for their own statements: a recording that
    # moves and posts 5,000 answers and then probes the items by key must still
    # be able to use the primary key in the same transaction.
    monkeypatch.setattr(bulk, "PROBE_MAX_IDS", probe_max)
    odd = "SELECT item_id FROM payouts.payout_items WHERE run_id = %(run_id)s AND amount_minor %% 2 = 1"

    def nestloop(conn) -> str:
        return conn.execute("SELECT current_setting('enable_nestloop')").fetchone()[0]

    with psycopg.connect(warehouse, autocommit=True) as conn:
        with conn.transaction():
            assert items.move_items(conn, odd, "approved", {"run_id": "R000001"}, detail="test") == 150
            assert nestloop(conn) == "on"
            assert ledger.post_transfers(conn, "reserve", odd, {"run_id": "R000001"}) == 150
            assert nestloop(conn) == "on"
            assert ledger.post_transfers(conn, "reserve", "SELECT 'R000001-99999999'") == 0
            assert nestloop(conn) == "on"
        with conn.transaction():
            conn.execute("SET LOCAL enable_nestloop = off")  # a caller's own choice is kept as well
            assert items.move_items(conn, odd, "submitted", {"run_id": "R000001"}, detail="test") == 150
            assert nestloop(conn) == "off"
        assert nestloop(conn) == "on"
