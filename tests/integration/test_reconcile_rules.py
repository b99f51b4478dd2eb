"""The matching rules, suggestions and break resolution on a real PostgreSQL.

One fresh database for the module: a run with exact, batch, fee, FX and
unreferenced debits; a pass matches them by rule, posts settlements and the fee,
suggests, and a second pass adds nothing.
"""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest

from payouts.core import ledger
from payouts.reconcile import breaks as recon_breaks
from payouts.reconcile import run as recon
from tests_support import WAREHOUSES, fresh_database

RUN = "R900001"
DAY = dt.date(2026, 3, 2)
RECIPIENTS = [("RR-1", "Anna Schmidt", "EUR"), ("RR-2", "Bob Jones", "EUR"), ("RR-3", "Chloe Brown", "GBP")]
# item_id, recipient, currency, amount_minor, batch_no
ITEMS = [
    (f"{RUN}-X1", "RR-2", "EUR", 1_000, None),
    (f"{RUN}-B1", "RR-2", "EUR", 100, 1), (f"{RUN}-B2", "RR-2", "EUR", 200, 1), (f"{RUN}-B3", "RR-2", "EUR", 300, 1),
    (f"{RUN}-F1", "RR-2", "EUR", 1_000, None),
    (f"{RUN}-FX1", "RR-3", "GBP", 10_000, None),
    (f"{RUN}-FX2", "RR-3", "GBP", 20_000, None),
    (f"{RUN}-S1", "RR-1", "EUR", 5_000, None),
    (f"{RUN}-P1", "RR-2", "EUR", 4_321, None),
]
# entry_ref, amount_minor, currency, status, end_to_end_id, counterparty_name, charges
LINES = [
    ("E-X1", -1_000, "EUR", "booked", f"{RUN}-X1", "Bob Jones", None),
    ("E-BATCH", -600, "EUR", "booked", None, None, None),
    ("E-F1", -1_050, "EUR", "booked", f"{RUN}-F1", "Bob Jones", "0.50"),
    ("E-FX1", -11_750, "EUR", "booked", f"{RUN}-FX1", "Chloe Brown", None),
    ("E-FX2", -23_400, "EUR", "booked", f"{RUN}-FX2", "Chloe Brown", None),   # its quote comes later
    ("E-S1", -5_000, "EUR", "booked", None, "SCHMIDT, ANNA", None),
    ("E-U1", -777, "EUR", "booked", None, "Nobody We Know", None),
    ("E-P1", -4_321, "EUR", "pending", f"{RUN}-P1", "Bob Jones", None),
]


@pytest.fixture(scope="module", params=WAREHOUSES)
def db(request):
    url, drop = fresh_database(request.param)
    request.addfinalizer(drop)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO payouts.runs (run_id, dag_run_id, trigger) VALUES (%s, 'test-rules', 'test')",
                     (RUN,))
        for rid, name, ccy in RECIPIENTS:
            conn.execute(
                "INSERT INTO payouts.recipients (recipient_id, name, country, currency, dest_kind, iban)"
                " VALUES (%s, %s, 'DE', %s, 'iban', 'DE89370400440532013000')", (rid, name, ccy))
        for item_id, rid, ccy, amount, batch_no in ITEMS:
            rail = "sepa_credit" if batch_no else "swift"
            conn.execute(
                "INSERT INTO payouts.payout_items (item_id, run_id, recipient_id, currency, amount_minor, status,"
                " rail, batch_no) VALUES (%s, %s, %s, %s, %s, 'accepted', %s, %s)",
                (item_id, RUN, rid, ccy, amount, rail, batch_no))
            conn.execute(
                "INSERT INTO payouts.attempts (item_id, rail, idempotency_key, status, answered_at, provider)"
                " VALUES (%s, %s, %s, 'accepted', %s, 'payouts_sandbox')", (item_id, rail, f"k-{item_id}", DAY - dt.timedelta(days=1)))
        conn.execute("INSERT INTO payouts.fx_quotes (item_id, from_currency, to_currency, rate)"
                     " VALUES (%s, 'GBP', 'EUR', 1.17)", (f"{RUN}-FX1",))
        file_id = conn.execute(
            "INSERT INTO recon.statement_files (provider, name, format, sha256, size_bytes, path)"
            " VALUES ('rules-test', 'rules.xml', 'camt.053', 'sha-rules', 1, '/dev/null') RETURNING file_id"
        ).fetchone()[0]
        for position, (ref, amount, ccy, status, e2e, name, charges) in enumerate(LINES):
            conn.execute(
                "INSERT INTO recon.statement_lines (file_id, provider, account, statement_id, entry_ref, position,"
                " booking_date, value_date, amount_minor, currency, status, end_to_end_id, counterparty_name,"
                " charges) VALUES (%s, 'rules-test', 'DE00ACCOUNT', 'STMT-1', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (file_id, ref, position, DAY, DAY, amount, ccy, status, e2e, name, charges))
        first = recon.match_pass(conn)
    return url, first


def _line_id(conn, ref):
    return conn.execute("SELECT line_id FROM recon.statement_lines WHERE entry_ref = %s", (ref,)).fetchone()[0]


def _rules(conn):
    return dict(conn.execute(
        "SELECT i.item_id, m.rule FROM payouts.payout_items i LEFT JOIN recon.matches m USING (item_id)"
    ).fetchall())


def test_each_rule_matches_in_its_order_and_records_its_name(db):
    url, first = db
    with psycopg.connect(url) as conn:
        rules = _rules(conn)
        statuses = dict(conn.execute("SELECT item_id, status FROM payouts.payout_items").fetchall())
        batch_line = {r[0] for r in conn.execute(
            "SELECT line_id FROM recon.matches WHERE rule = 'batch_sum'").fetchall()}
        assert batch_line == {_line_id(conn, "E-BATCH")}
    assert rules[f"{RUN}-X1"] == "exact_end_to_end"
    assert {rules[f"{RUN}-B{n}"] for n in (1, 2, 3)} == {"batch_sum"}
    assert rules[f"{RUN}-F1"] == "with_fee"
    assert rules[f"{RUN}-FX1"] == "fx_tolerance"
    assert rules[f"{RUN}-FX2"] is None and rules[f"{RUN}-S1"] is None
    assert rules[f"{RUN}-P1"] is None and statuses[f"{RUN}-P1"] == "accepted"   # pending lines settle nothing
    settled = {k for k, v in statuses.items() if v == "settled"}
    assert settled == {f"{RUN}-{s}" for s in ("X1", "B1", "B2", "B3", "F1", "FX1")}
    assert first["matched"] == 6 and first["by_rule"] == {
        "exact_end_to_end": 1, "batch_sum": 3, "with_fee": 1, "fx_tolerance": 1}


def test_the_fee_is_posted_to_fees_and_the_ledger_balances(db):
    url, first = db
    with psycopg.connect(url) as conn:
        assert first["fees"] == 1
        assert ledger.balance(conn, "fees", "EUR") == {"EUR": 50}
        legs = conn.execute("SELECT account, amount_minor FROM ledger.postings WHERE txn_id = %s ORDER BY account",
                            (f"fee:{RUN}-F1",)).fetchall()
        assert legs == [("cash", -50), ("fees", 50)]
        assert conn.execute("SELECT count(*) FROM ledger.unbalanced_transactions").fetchone()[0] == 0


def test_suggestion_then_confirm_settles_and_closes_the_break(db):
    url, _ = db
    with psycopg.connect(url, autocommit=True) as conn:
        line_id = _line_id(conn, "E-S1")
        suggestion_id, item_id, confidence, status = conn.execute(
            "SELECT suggestion_id, item_id, confidence, status FROM recon.suggestions WHERE line_id = %s",
            (line_id,)).fetchone()
        assert (item_id, status) == (f"{RUN}-S1", "open") and confidence >= 80
        assert conn.execute("SELECT count(*) FROM recon.suggestions WHERE line_id = %s",
                            (_line_id(conn, "E-U1"),)).fetchone()[0] == 0
        brk = conn.execute("SELECT break_id, status FROM recon.breaks WHERE line_id = %s", (line_id,)).fetchone()
        assert brk[1] == "open"

        out = recon_breaks.confirm_suggestion(conn, suggestion_id, "alice@finance")
        assert out["breaks_closed"] >= 1
        assert conn.execute("SELECT rule FROM recon.matches WHERE line_id = %s", (line_id,)).fetchone()[0] \
            == "suggestion_confirmed"
        assert conn.execute("SELECT status FROM payouts.payout_items WHERE item_id = %s", (item_id,)).fetchone()[0] \
            == "settled"
        assert conn.execute("SELECT count(*) FROM ledger.transactions WHERE txn_id = %s",
                            (f"settle:{item_id}",)).fetchone()[0] == 1
        assert conn.execute("SELECT status, decided_by FROM recon.suggestions WHERE suggestion_id = %s",
                            (suggestion_id,)).fetchone() == ("confirmed", "alice@finance")
        assert conn.execute("SELECT status FROM recon.breaks WHERE break_id = %s", (brk[0],)).fetchone()[0] \
            == "resolved"
        audit = conn.execute("SELECT action, who, before ->> 'status', after ->> 'status' FROM recon.break_audit"
                             " WHERE break_id = %s", (brk[0],)).fetchall()
        assert audit == [("auto_resolved", "alice@finance", "open", "resolved")]
        with pytest.raises(recon_breaks.BreakError, match="already confirmed"):
            recon_breaks.confirm_suggestion(conn, suggestion_id, "bob@finance")
        assert conn.execute("SELECT count(*) FROM ledger.unbalanced_transactions").fetchone()[0] == 0


def test_resolve_break_is_audited_and_refused_twice(db):
    url, _ = db
    with psycopg.connect(url, autocommit=True) as conn:
        break_id = conn.execute("SELECT break_id FROM recon.breaks WHERE line_id = %s AND break_type ="
                                " 'unexpected_at_provider'", (_line_id(conn, "E-U1"),)).fetchone()[0]
        after = recon_breaks.resolve_break(conn, break_id, "bob@finance", "account maintenance charge, expected")
        assert after["status"] == "resolved" and after["resolution"] == "account maintenance charge, expected"
        row = conn.execute("SELECT action, who, note, before ->> 'status', after ->> 'status' FROM recon.break_audit"
                           " WHERE break_id = %s", (break_id,)).fetchone()
        assert row == ("resolved", "bob@finance", "account maintenance charge, expected", "open", "resolved")
        with pytest.raises(recon_breaks.BreakError, match="already resolved .* by bob@finance"):
            recon_breaks.resolve_break(conn, break_id, "carol@finance", "again")
        assert conn.execute("SELECT count(*) FROM recon.break_audit WHERE break_id = %s", (break_id,)).fetchone()[0] == 1


def test_a_rerun_adds_nothing_and_a_late_quote_closes_its_break(db):
    url, _ = db
    with psycopg.connect(url, autocommit=True) as conn:
        def snapshot():
            return [conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in (
                "recon.matches", "recon.breaks", "recon.suggestions", "ledger.transactions", "ledger.postings",
                "recon.break_audit")]

        before = snapshot()
        assert recon.match_pass(conn) == {"matched": 0, "returned": 0, "breaks": 0}
        assert snapshot() == before

        fx2_line = _line_id(conn, "E-FX2")
        assert conn.execute("SELECT break_type, status FROM recon.breaks WHERE line_id = %s",
                            (fx2_line,)).fetchone() == ("currency_mismatch", "open")
        # The rail's quote arrives after the statement: GBP 200.00 at 1.17 = EUR 234.00.
        conn.execute("INSERT INTO payouts.fx_quotes (item_id, from_currency, to_currency, rate)"
                     " VALUES (%s, 'GBP', 'EUR', 1.17)", (f"{RUN}-FX2",))
        again = recon.match_pass(conn)
        assert again["matched"] == 1 and again["breaks_closed"] == 1
        assert conn.execute("SELECT status FROM recon.breaks WHERE line_id = %s", (fx2_line,)).fetchone()[0] \
            == "resolved"
        assert conn.execute("SELECT action, who FROM recon.break_audit b JOIN recon.breaks USING (break_id)"
                            " WHERE line_id = %s", (fx2_line,)).fetchone() == ("auto_resolved", "reconciliation")
        assert recon.match_pass(conn) == {"matched": 0, "returned": 0, "breaks": 0}
        assert conn.execute("SELECT count(*) FROM ledger.unbalanced_transactions").fetchone()[0] == 0
