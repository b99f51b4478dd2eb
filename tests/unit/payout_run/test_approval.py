"""Approval: the thresholds, the audited decisions, and four eyes, on a small warehouse."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import psycopg
import pytest

from payouts.payout_run import approval

from tests_support import add_item


def _config(total=None, payees=None, approvers=()):
    return approval.ApprovalConfig(Decimal(total) if total is not None else None, payees, tuple(approvers),
                                   timedelta(hours=1))


def test_thresholds_decide_whether_a_person_approves(small_warehouse):
    with psycopg.connect(small_warehouse, autocommit=True) as conn:
        add_item(conn, "R000001-00000001", "U-1", 60_000, status="ready", rail=None)
        add_item(conn, "R000001-00000002", "U-2", 40_000, status="ready", rail=None)
        assert approval.run_total_eur(conn, "R000001") == Decimal("1000.00")
        assert approval.new_payees(conn, "R000001") == 2
        assert approval.needs_approval(conn, "R000001", _config()) == (
            False, "total 1000.00 EUR and 2 new payees under the thresholds (total < no limit, new payees < no limit)")
        person, why = approval.needs_approval(conn, "R000001", _config(total="1000"))
        assert person and why == "total 1000.00 EUR >= 1000 EUR"
        person, why = approval.needs_approval(conn, "R000001", _config(total="5000", payees=2))
        assert person and why == "2 new payees >= 2"


def test_the_thresholds_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("PAYOUTS_APPROVAL_TOTAL_EUR", "250000")
    monkeypatch.setenv("PAYOUTS_APPROVAL_NEW_PAYEES", "")
    monkeypatch.setenv("PAYOUTS_APPROVERS", "alice, bob,")
    monkeypatch.setenv("PAYOUTS_APPROVAL_TIMEOUT_H", "2")
    config = approval.ApprovalConfig.from_env()
    assert config == approval.ApprovalConfig(Decimal("250000"), None, ("alice", "bob"), timedelta(hours=2))
    assert approval.approvers_for(config, "alice") == ["bob"]  # the creator never approves their own run


def test_an_audited_auto_approval_releases_only_ready_items_once(small_warehouse):
    with psycopg.connect(small_warehouse, autocommit=True) as conn:
        add_item(conn, "R000001-00000001", "U-1", 1_000, status="ready", rail=None)
        add_item(conn, "R000001-00000002", "U-2", 2_000, status="held", rail=None)
        assert approval.auto_approve(conn, "R000001", "under the thresholds") == 1
        assert approval.auto_approve(conn, "R000001", "under the thresholds") == 0
        decided_by, policy, seen = conn.execute(
            "SELECT decided_by, policy, seen FROM payouts.approvals WHERE run_id = 'R000001'").fetchone()
    assert decided_by == "auto" and policy == "auto: under the thresholds"
    assert seen["held"] == 1 and seen["largest"][0]["item_id"] == "R000001-00000001"


@pytest.mark.parametrize("kind, subject, message", [
    ("wire_everything", {}, "unknown four-eyes action"),
    ("sanctions_clear", {"recipient_id": "U-1"}, "needs recipient_id and list_entry_id"),
    ("break_write_off", {}, "needs break_id"),
    ("payee_details_change", {"recipient_id": "U-1", "name": "Mallory"}, "needs recipient_id and some of"),
])
def test_a_four_eyes_request_must_say_what_it_changes(small_warehouse, kind, subject, message):
    with psycopg.connect(small_warehouse, autocommit=True) as conn:
        with pytest.raises(ValueError, match=message):
            approval.request_action(conn, kind, subject, "because", "alice")
        with pytest.raises(ValueError, match="a note saying why"):
            approval.request_action(conn, "break_write_off", {"break_id": 1}, "  ", "alice")
        assert conn.execute("SELECT count(*) FROM payouts.four_eyes_requests").fetchone()[0] == 0


def test_a_new_destination_needs_a_second_person_and_unblocks_the_payee(small_warehouse):
    with psycopg.connect(small_warehouse, autocommit=True) as conn:
        conn.execute("""UPDATE payouts.recipients SET destination_blocked_reason = '{"event": "returned"}'"""
                     " WHERE recipient_id = 'U-1'")
        request = approval.request_action(conn, "payee_details_change",
                                          {"recipient_id": "U-1", "iban": "DE75512108001245126199"},
                                          "the payee's bank closed the account", "alice")
        with pytest.raises(approval.FourEyesError):
            approval.decide_action(conn, request, "alice", approve=True)
        refused = approval.decide_action(conn, request, "bob", approve=False)
        assert refused["status"] == "refused"
        with pytest.raises(ValueError, match="already refused"):
            approval.decide_action(conn, request, "carol", approve=True)
        iban, blocked = conn.execute("SELECT iban, destination_blocked_reason FROM payouts.recipients"
                                     " WHERE recipient_id = 'U-1'").fetchone()
        assert iban == "DE89370400440532013000" and blocked is not None  # a refusal changes nothing
        again = approval.request_action(conn, "payee_details_change",
                                        {"recipient_id": "U-1", "iban": "DE75512108001245126199"},
                                        "the payee's bank closed the account", "alice")
        assert approval.decide_action(conn, again, "bob", approve=True)["status"] == "approved"
        iban, blocked = conn.execute("SELECT iban, destination_blocked_reason FROM payouts.recipients"
                                     " WHERE recipient_id = 'U-1'").fetchone()
    assert iban == "DE75512108001245126199" and blocked is None
