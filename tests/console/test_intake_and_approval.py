"""Intake (file rows -> payables, once per payout id) and the approval rules, on a real warehouse."""

from __future__ import annotations

import os

import psycopg
import pytest

from payouts.payout_run import approval
from payouts.payout_run import stages as payout_run
from payouts.console import intake, views

FILE = (
    "payout_id,recipient_id,name,country,amount,currency,iban\n"
    "A-1,T-1,Anna Weber,DE,120.00,EUR,DE89370400440532013000\n"
    "A-2,T-2,Luc Martin,FR,80.00,EUR,FR1420041010050500013M02606\n"
    "A-3,T-3,Nobody,DE,5.00,EUR,\n"
).encode()


@pytest.fixture()
def conn(warehouse_url):
    with psycopg.connect(warehouse_url, autocommit=True) as c:
        yield c


def _take(conn, data: bytes, name: str, source: str = "test") -> tuple[int, dict]:
    with conn.transaction():
        file_id = intake.store_file(conn, name, source, data, "alice")
        checked, _ = intake.check_upload(conn, name, data)
        return file_id, intake.take_rows(conn, checked, intake=f"file:{file_id}", source=source, user="alice")


def test_ready_rows_become_payables_once(conn):
    file_id, counts = _take(conn, FILE, "one.csv", source="once")
    assert counts == {"rows": 3, "ready": 2, "held": 0, "rejected": 1, "accepted": 2, "seen_before": 0}
    payable = conn.execute(
        "SELECT recipient_id, -sum(amount_minor) FROM ledger.postings WHERE account = 'payable'"
        " AND txn_id LIKE 'file:once:%' GROUP BY 1 ORDER BY 1").fetchall()
    assert payable == [("T-1", 12000), ("T-2", 8000)]
    assert conn.execute("SELECT count(*) FROM ledger.unbalanced_transactions").fetchone()[0] == 0
    assert conn.execute("SELECT kyc_status FROM payouts.recipients WHERE recipient_id = 'T-1'").fetchone()[0] \
        == "unverified"
    # the same bytes again: refused as a whole
    with pytest.raises(intake.DuplicateFile):
        _take(conn, FILE, "again.csv", source="once")
    # the same payout ids in another file: refused row by row
    _, again = _take(conn, FILE + b"\n", "other.csv", source="once")
    assert again["accepted"] == 0 and again["seen_before"] == 2
    texts = conn.execute("SELECT reasons -> -1 ->> 'text' FROM payouts.intake_rows WHERE source = 'once'"
                         " AND payout_id = 'A-1' AND decision = 'rejected'").fetchall()
    assert len(texts) == 1 and "already received" in texts[0][0]


def test_needs_approval_and_audited_auto_approval(conn, monkeypatch):
    _take(conn, FILE.replace(b"A-", b"B-").replace(b"T-", b"U-"), "two.csv", source="appr")
    run_id = payout_run.open_run(conn, "test-approval-1", "test", {"created_by": "alice"})
    payout_run.snapshot(conn, run_id)
    conn.execute("UPDATE payouts.payout_items SET status = 'ready' WHERE run_id = %s", (run_id,))
    monkeypatch.setenv("PAYOUTS_APPROVAL_TOTAL_EUR", "100")
    monkeypatch.delenv("PAYOUTS_APPROVAL_NEW_PAYEES", raising=False)
    needed, why = approval.needs_approval(conn, run_id)
    assert needed and "EUR" in why
    body = approval.approval_body(conn, run_id, why)
    assert "| rail | currency |" in body and run_id in body
    # four eyes: the creator cannot approve
    with pytest.raises(approval.FourEyesError):
        approval.record_human_approval(conn, run_id, "alice", "now")
    moved = approval.record_human_approval(conn, run_id, "bob", "2026-01-01T00:00:00Z", body)
    assert moved >= 2
    decided = conn.execute("SELECT decision, decided_by, policy, seen ->> 'created_by' FROM payouts.approvals"
                           " WHERE run_id = %s", (run_id,)).fetchone()
    assert decided == ("approved", "bob", "human", "alice")
    monkeypatch.setenv("PAYOUTS_APPROVAL_TOTAL_EUR", "1000000")
    assert approval.needs_approval(conn, run_id)[0] is False


def test_four_eyes_write_off(conn):
    conn.execute("INSERT INTO recon.breaks (break_type, item_id) VALUES ('missing_at_provider', 'R999999-00000001')")
    break_id = conn.execute("SELECT max(break_id) FROM recon.breaks").fetchone()[0]
    request_id = approval.request_action(conn, "break_write_off", {"break_id": break_id}, "fee below threshold",
                                         "alice")
    with pytest.raises(approval.FourEyesError):
        approval.decide_action(conn, request_id, "alice", True)
    assert approval.decide_action(conn, request_id, "bob", True)["status"] == "approved"
    assert conn.execute("SELECT status FROM recon.breaks WHERE break_id = %s", (break_id,)).fetchone()[0] == "resolved"
    assert conn.execute("SELECT who FROM recon.break_audit WHERE break_id = %s", (break_id,)).fetchone()[0] \
        == "alice+bob"


def test_views_answer_on_an_empty_and_a_filled_warehouse(conn):
    assert views.funnel(conn)[0][0] == "snapshotted"
    assert [b for b, _ in views.break_ageing(conn)] == ["0-1d", "1-3d", "3-7d", "7-30d", "30d+"]
    from payouts.console.app import render_dashboard

    html = render_dashboard(conn)
    assert "Run funnel" in html and "<svg" in html
    assert "<script src" not in html and "https://" not in html  # nothing from a CDN
    # The kill switch: a button per rail, posting to the audited stops endpoint.
    for rail in ("sepa_instant", "sepa_credit", "swift", "faster_payments", "ach", "crypto"):
        assert f'data-scope="rail" data-target="{rail}"' in html
    assert "/payouts/api/v1/stops" in html


def test_csv_cells_are_neutralised():
    from payouts.console.api import safe_cell

    assert [safe_cell(v) for v in ("=1+1", "+x", "-5", "@a", "ok", None)] == ["'=1+1", "'+x", "'-5", "'@a", "ok", ""]
