"""One booking in two statements counts once; one broken statement keeps its file's others loading.

Statements written for the test: a camt.054 notification and the camt.053 of
the same day report one payout's debit under the same AcctSvcrRef; an MT940
file holds a statement without its closing balance between two complete ones.
"""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest

from payouts.reconcile import run as recon
from tests_support import WAREHOUSES, fresh_database

RUN = "R210001"
ITEM = f"{RUN}-0001"
IBAN = "DE89370400440532013000"
DAY = dt.date(2026, 3, 2)


def camt(kind: str, doc_id: str, entries: str, balances: bool = True) -> bytes:
    """A camt.053 statement or camt.054 notification (001.08) of one account."""
    return camt_many(kind, (doc_id, entries, balances))


def camt_many(kind: str, *containers: tuple[str, str, bool]) -> bytes:
    """A camt.053 / camt.054 message with one Stmt / Ntfctn per (id, entries, balances)."""
    root, container, ns = {
        "053": ("BkToCstmrStmt", "Stmt", "camt.053.001.08"),
        "054": ("BkToCstmrDbtCdtNtfctn", "Ntfctn", "camt.054.001.08"),
    }[kind]
    body = ""
    for doc_id, entries, balances in containers:
        bal = "".join(
            f"<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp><Amt Ccy=\"EUR\">{amount}</Amt>"
            f"<CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2026-03-02</Dt></Dt></Bal>"
            for code, amount in (("OPBD", "1000.00"), ("CLBD", "875.00"))
        ) if balances else ""
        body += (f"<{container}><Id>{doc_id}</Id><Acct><Id><IBAN>{IBAN}</IBAN></Id><Ccy>EUR</Ccy></Acct>\n"
                 f"{bal}\n{entries}\n</{container}>\n")
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Document xmlns="urn:iso:std:iso:20022:tech:xsd:{ns}">'
        f"<{root}><GrpHdr><MsgId>M-1</MsgId><CreDtTm>2026-03-02T18:00:00+01:00</CreDtTm></GrpHdr>\n"
        f"{body}</{root}></Document>\n"
    ).encode()


def debit(amount: str, ref: str, e2e: str | None = None, status: str = "BOOK") -> str:
    tx = (f"<NtryDtls><TxDtls><Refs><EndToEndId>{e2e}</EndToEndId></Refs>"
          "<RltdPties><Cdtr><Pty><Nm>Jane Payee</Nm></Pty></Cdtr></RltdPties></TxDtls></NtryDtls>") if e2e else ""
    return (
        f'<Ntry><Amt Ccy="EUR">{amount}</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts><Cd>{status}</Cd></Sts>'
        f"<BookgDt><Dt>2026-03-02+01:00</Dt></BookgDt><ValDt><Dt>2026-03-02</Dt></ValDt>"
        f"<AcctSvcrRef>{ref}</AcctSvcrRef>{tx}</Ntry>"
    )


@pytest.fixture(params=WAREHOUSES)
def db(request):
    url, drop = fresh_database(request.param)
    request.addfinalizer(drop)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO payouts.runs (run_id, dag_run_id, trigger) VALUES (%s, 'test-bookings', 'test')",
                     (RUN,))
        conn.execute("INSERT INTO payouts.recipients (recipient_id, name, country, currency, dest_kind, iban)"
                     " VALUES ('RB-1', 'Jane Payee', 'DE', 'EUR', 'iban', %s)", (IBAN,))
        conn.execute("INSERT INTO payouts.payout_items (item_id, run_id, recipient_id, currency, amount_minor,"
                     " status, rail) VALUES (%s, %s, 'RB-1', 'EUR', 12500, 'accepted', 'sepa_credit')", (ITEM, RUN))
        conn.execute("INSERT INTO payouts.attempts (item_id, rail, idempotency_key, status, answered_at, provider)"
                     " VALUES (%s, 'sepa_credit', 'k-1', 'accepted', %s, 'bank')", (ITEM, DAY - dt.timedelta(days=1)))
    return url


def _load(conn, folder, *files: tuple[str, bytes]) -> list[dict]:
    paths = []
    for name, data in files:
        path = folder / name
        path.write_bytes(data)
        paths.append(str(path))
    return recon.load_files(conn, paths, provider_name="bank", workers=1)


@pytest.mark.parametrize("order", ["054 first", "053 first"])
def test_a_booking_in_a_notification_and_the_statement_is_counted_once(db, tmp_path, order):
    notification = ("notification.xml", camt("054", "NTF-1", debit("125.00", "BANK-REF-1", ITEM), balances=False))
    statement = ("statement.xml", camt("053", "STMT-1", debit("125.00", "BANK-REF-1", ITEM)))
    files = [notification, statement] if order == "054 first" else [statement, notification]
    with psycopg.connect(db, autocommit=True) as conn:
        first, second = _load(conn, tmp_path, *files)
        assert first["lines"] == second["lines"] == 1
        assert "repeated_lines" not in first and second["repeated_lines"] == 1
        counts = recon.match_pass(conn)
        assert counts["matched"] == 1 and counts["breaks"] == 0
        lines = conn.execute(
            "SELECT f.name, l.line_id, l.duplicate_of, l.booking_ref FROM recon.statement_lines l"
            " JOIN recon.statement_files f USING (file_id) ORDER BY l.line_id").fetchall()
        (kept_name, kept_id, kept_dup, _), (dup_name, _dup_id, dup_of, ref) = lines
        assert (kept_name, dup_name) == (files[0][0], files[1][0])
        assert kept_dup is None and dup_of == kept_id and ref == "BANK-REF-1"
        assert conn.execute("SELECT line_id, item_id FROM recon.matches").fetchall() == [(kept_id, ITEM)]
        assert conn.execute("SELECT status FROM payouts.payout_items WHERE item_id = %s", (ITEM,)).fetchone() == (
            "settled",)
        assert conn.execute("SELECT count(*) FROM recon.breaks").fetchone()[0] == 0
        # Which file carried which: the issue is on the second file and names the first.
        (kind, statement_id, message), = conn.execute(
            "SELECT i.kind, i.statement_id, i.message FROM recon.statement_issues i"
            " JOIN recon.statement_files f USING (file_id) WHERE f.name = %s", (files[1][0],)).fetchall()
        assert kind == "duplicate_booking"
        assert statement_id == ("STMT-1" if order == "054 first" else "NTF-1")
        assert f"already loaded from {files[0][0]}" in message and "BANK-REF-1" in message
        # The statement's own balance still counts its line: 1000.00 - 125.00 = 875.00.
        assert conn.execute("SELECT balanced FROM recon.statements WHERE statement_id = 'STMT-1'").fetchone() == (
            True,)
        # A second pass, or the same files again, adds nothing.
        assert recon.match_pass(conn) == {"matched": 0, "returned": 0, "breaks": 0}
        assert all(not r["loaded"] for r in _load(conn, tmp_path, *files))


def test_a_reference_reused_for_another_amount_is_not_dropped(db, tmp_path):
    with psycopg.connect(db, autocommit=True) as conn:
        _load(conn, tmp_path,
              ("a.xml", camt("054", "NTF-1", debit("125.00", "REUSED", ITEM), balances=False)),
              ("b.xml", camt("054", "NTF-2", debit("40.00", "REUSED"), balances=False)))
        assert conn.execute("SELECT count(*) FROM recon.statement_lines WHERE duplicate_of IS NULL").fetchone()[0] == 2
        (kind, message), = conn.execute("SELECT kind, message FROM recon.statement_issues").fetchall()
        assert kind == "booking_ref_reused" and "also used by a.xml" in message
        counts = recon.match_pass(conn)
        assert counts["matched"] == 1 and counts["breaks"] == 1  # the 40.00 is unexpected, not lost


def test_a_pending_notification_does_not_hide_the_booked_line(db, tmp_path):
    with psycopg.connect(db, autocommit=True) as conn:
        _load(conn, tmp_path,
              ("pending.xml", camt("054", "NTF-1", debit("125.00", "BANK-REF-1", ITEM, status="PDNG"),
                                   balances=False)),
              ("statement.xml", camt("053", "STMT-1", debit("125.00", "BANK-REF-1", ITEM))))
        assert conn.execute("SELECT count(*) FROM recon.statement_lines WHERE duplicate_of IS NOT NULL"
                            ).fetchone()[0] == 0
        assert recon.match_pass(conn)["matched"] == 1


def test_two_entries_of_one_statement_under_one_reference_both_count(db, tmp_path):
    # PostFinance does this; the statement's balance counts both.
    entries = debit("100.00", "SAME") + debit("25.00", "SAME")
    with psycopg.connect(db, autocommit=True) as conn:
        (result,) = _load(conn, tmp_path, ("s.xml", camt("053", "STMT-1", entries)))
        assert result["lines"] == 2 and "repeated_lines" not in result
        assert conn.execute("SELECT count(*) FROM recon.statement_issues").fetchone()[0] == 0


def mt940(ref: str, seq: int, opening: str, entry: str, closing: str | None) -> str:
    return (f":20:{ref}\n:25:{IBAN}\n:28C:{seq}\n:60F:C260302EUR{opening}\n:61:{entry}\n"
            f":86:/EREF/{ITEM if ref == 'GOOD-1' else 'NOTOURS'}/\n"
            + (f":62F:C260302EUR{closing}\n" if closing else "") + "-\n")


def test_a_broken_statement_is_quarantined_and_the_complete_ones_load(db, tmp_path):
    good_1 = mt940("GOOD-1", 1, "1000,00", "2603020302D125,00NTRFNONREF//B-1", "875,00")
    broken = mt940("CUT", 2, "875,00", "2603020302D5,00NTRFNONREF//B-2", None)
    good_3 = mt940("GOOD-3", 3, "870,00", "2603020302C1,00NTRFNONREF//B-3", "871,00")
    with psycopg.connect(db, autocommit=True) as conn:
        (result,) = _load(conn, tmp_path, ("day.sta", (good_1 + broken + good_3).encode()))
        assert result["loaded"] and result["lines"] == 2
        (reason,) = result["statements_quarantined"]
        assert "statement CUT (lines 9 to 14) without a closing" in reason and "day.sta at line 9]" in reason
        assert conn.execute("SELECT account, statement_id, reason FROM recon.quarantined_statements"
                            ).fetchall() == [(IBAN, "CUT", reason)]
        assert conn.execute("SELECT statement_id FROM recon.statements ORDER BY 1").fetchall() == [
            ("GOOD-1/1",), ("GOOD-3/3",)]
        # The missing statement 2 shows as a gap as well.
        assert ("sequence_gap",) in conn.execute("SELECT kind FROM recon.statement_issues").fetchall()
        assert recon.match_pass(conn)["matched"] == 1
        # The bank sends the file again, complete: only the statement that was missing is added.
        fixed = mt940("CUT", 2, "875,00", "2603020302D5,00NTRFNONREF//B-2", "870,00")
        (again,) = _load(conn, tmp_path, ("day-fixed.sta", (good_1 + fixed + good_3).encode()))
        assert again["loaded"] and again["lines"] == 1 and "statements_quarantined" not in again
        assert conn.execute("SELECT count(*) FROM recon.statement_lines").fetchone()[0] == 3


def test_a_file_whose_every_statement_is_broken_is_quarantined_whole(db, tmp_path):
    broken = mt940("CUT", 2, "875,00", "2603020302D5,00NTRFNONREF//B-2", None)
    with psycopg.connect(db, autocommit=True) as conn:
        (result,) = _load(conn, tmp_path, ("cut.sta", broken.encode()))
        assert not result["loaded"] and "without a closing" in result["quarantined"]
        assert conn.execute("SELECT name FROM recon.quarantined_files").fetchall() == [("cut.sta",)]
        assert conn.execute("SELECT count(*) FROM recon.statement_files").fetchone()[0] == 0


def test_an_amount_its_currency_cannot_hold_quarantines_its_statement_only(db, tmp_path):
    both = camt_many("054", ("NTF-1", debit("125.00", "R-1", ITEM), False),
                     ("NTF-2", debit("8.850", "R-2"), False))
    with psycopg.connect(db, autocommit=True) as conn:
        (result,) = _load(conn, tmp_path, ("two.xml", both))
        assert result["loaded"] and result["lines"] == 1
        (reason,) = result["statements_quarantined"]
        assert "cannot hold exactly (first: -8.850 EUR)" in reason and "statement NTF-2, line 0" in reason
