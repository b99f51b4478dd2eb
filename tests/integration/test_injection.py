"""SQL injection strings through the real entry points, on a real PostgreSQL: stored verbatim or refused clearly.

Recipient names, payout ids, recipient ids, file names, sources, DAG run ids,
statement references and EndToEndIds carry the classic payloads (and unicode
quotes, NUL bytes, format placeholders) through the console intake, the
`payouts check` command, statement loading and the run's check stage with its
sanctions screen. Afterwards every table is still there with its rows, and the
ledger still balances.
"""

from __future__ import annotations

import csv
import io
import json
from xml.sax.saxutils import escape

import psycopg
import pytest

from payouts_tooling import cli
from payouts.payout_run import stages as payout_run
from payouts.checks import sanctions
from payouts.console import intake
from payouts_sandbox import camt053
from payouts.reconcile import run as recon
from tests_support import WAREHOUSES, fresh_database

INJECTIONS = [
    "'); DROP TABLE payouts.payout_items; --",
    "Robert'); DROP TABLE students;--",
    "' OR '1'='1",
    "$$; DROP SCHEMA payouts CASCADE; $$",
    '"; DROP TABLE ledger.postings; --',
    "1; DELETE FROM payouts.recipients WHERE '1'='1",
    "%(source)s %s {0} \\' \\\\ %%",                     # placeholders of psycopg and str.format
    "\u2018 OR \u20181\u2019=\u20181\u2019 --",          # unicode quotes
    "\u02bc; DROP TABLE payouts.runs; --",               # modifier letter apostrophe
    "\uff07 OR 1=1 --",                                  # fullwidth apostrophe
    "x'; COPY payouts.recipients TO PROGRAM 'id'; --",
    "a\nb'); TRUNCATE ledger.postings; --",               # a newline inside a quoted CSV cell
    "Bobby\u2028'; SELECT pg_sleep(10); --",
    "\u00e9'||pg_sleep(10)||'",
]
NUL = "abc\x00'); DROP TABLE payouts.recipients; --"
# Valid euro IBANs, one per payee, so no row is held for a shared destination.
IBANS = ["DE89370400440532013000", "FR1420041010050500013M02606", "NL91ABNA0417164300", "BE68539007547034",
         "DE02120300000000202051", "ES9121000418450200051332", "IT60X0542811101000000123456",
         "AT611904300234573201", "FI2112345600000785", "IE29AIBK93115212345678", "PT50000201231234567890154",
         "LU280019400644750000", "DE75512108001245126199", "NL02ABNA0123456789"]
SCHEMAS = ("ledger", "payouts", "recon", "reporting")


@pytest.fixture(scope="module", params=WAREHOUSES)
def warehouse(request):
    url, drop = fresh_database(request.param)
    request.addfinalizer(drop)
    with psycopg.connect(url, autocommit=True) as conn:
        # A canary payee whose rows must come through everything untouched.
        conn.execute("INSERT INTO payouts.recipients (recipient_id, name, country, currency, dest_kind, iban)"
                     " VALUES ('CANARY', 'Canary Payee', 'DE', 'EUR', 'iban', 'DE44500105175407324931')")
        conn.execute("INSERT INTO ledger.transactions (txn_id, kind) VALUES ('earn:canary', 'earning')")
        conn.execute("INSERT INTO ledger.postings (txn_id, account, recipient_id, currency, amount_minor)"
                     " VALUES ('earn:canary', 'earnings', 'CANARY', 'EUR', 700),"
                     " ('earn:canary', 'payable', 'CANARY', 'EUR', -700)")
        baseline = _inventory(conn)
    return url, baseline


def _inventory(conn) -> dict:
    """Every relation of our schemas, and the canary's rows."""
    relations = conn.execute(
        "SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = ANY(%s) AND c.relkind IN ('r', 'v', 'm', 'p') ORDER BY 1", (list(SCHEMAS),)).fetchall()
    canary = conn.execute("SELECT name, iban FROM payouts.recipients WHERE recipient_id = 'CANARY'").fetchall()
    postings = conn.execute("SELECT count(*) FROM ledger.postings WHERE txn_id = 'earn:canary'").fetchone()[0]
    return {"relations": [r[0] for r in relations], "canary": canary, "canary_postings": postings}


def _assert_intact(conn, baseline: dict) -> None:
    now = _inventory(conn)
    assert now == baseline
    assert len(now["relations"]) > 20 and "payouts.payout_items" in now["relations"]
    assert conn.execute("SELECT count(*) FROM ledger.unbalanced_transactions").fetchone()[0] == 0


def _counts(conn) -> dict[str, int]:
    tables = ("payouts.uploaded_files", "payouts.intake_rows", "payouts.file_payouts", "payouts.recipients",
              "ledger.transactions", "ledger.postings", "recon.statement_files", "recon.statement_lines")
    return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}  # fixed names


def _payout_csv(tag: str) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["payout_id", "recipient_id", "name", "country", "amount", "currency", "iban", "reference"])
    for i, payload in enumerate(INJECTIONS):
        writer.writerow([f"{payload}#{tag}{i}", f"{tag}{i}:{payload}", payload, "DE", "12.34", "EUR", IBANS[i],
                         payload])
    return buffer.getvalue().encode()


def test_console_intake_stores_every_payload_verbatim(warehouse):
    url, baseline = warehouse
    name = "'); DROP TABLE payouts.uploaded_files; --\u2019.csv"
    source = "src'; DROP TABLE payouts.file_payouts; --"
    with psycopg.connect(url, autocommit=True) as conn:
        with conn.transaction():
            file_id = intake.store_file(conn, name, source, _payout_csv("F"), "eve'); --")
            checked, _ = intake.check_upload(conn, name, _payout_csv("F"))
            counts = intake.take_rows(conn, checked, intake=f"file:{file_id}", source=source, user="eve'); --")
        assert counts["accepted"] == len(INJECTIONS), counts
        assert conn.execute("SELECT name, source, uploaded_by FROM payouts.uploaded_files WHERE file_id = %s",
                            (file_id,)).fetchone() == (name, source, "eve'); --")
        for i, payload in enumerate(INJECTIONS):
            recipient = conn.execute("SELECT name FROM payouts.recipients WHERE recipient_id = %s",
                                     (f"F{i}:{payload}",)).fetchone()
            assert recipient == (payload,)
            taken = conn.execute(
                "SELECT f.payout_id, f.txn_id FROM payouts.file_payouts f WHERE f.source = %s AND f.payout_id = %s",
                (source, f"{payload}#F{i}")).fetchone()
            assert taken == (f"{payload}#F{i}", f"file:{source}:{payload}#F{i}")
        _assert_intact(conn, baseline)


def test_api_intake_stores_payloads_verbatim_and_refuses_nul_clearly(warehouse):
    url, baseline = warehouse
    payouts = [{"payout_id": f"{p}#A{i}", "recipient_id": f"A{i}:{p}", "name": p, "country": "DE",
                "amount": "1.00", "currency": "EUR", "iban": IBANS[i]} for i, p in enumerate(INJECTIONS)]
    with psycopg.connect(url, autocommit=True) as conn:
        with conn.transaction():
            checked = intake.check_payload(conn, payouts)
            counts = intake.take_rows(conn, checked, intake="api:inj", source="api", user="eve")
        assert counts["accepted"] == len(INJECTIONS)
        names = dict(conn.execute("SELECT recipient_id, name FROM payouts.recipients WHERE recipient_id LIKE 'A%%:%%'"
                                  ).fetchall())
        assert names == {f"A{i}:{p}": p for i, p in enumerate(INJECTIONS)}

        before = _counts(conn)
        with pytest.raises(intake.IntakeError, match="payout 1: field 'name' contains a NUL character"):
            with conn.transaction():
                intake.check_payload(conn, [{**payouts[0], "payout_id": "NUL-1", "name": NUL}])
        with pytest.raises(intake.IntakeError, match="NUL character"):
            with conn.transaction():
                intake.store_file(conn, "evil\x00.csv", "upload", b"payout_id,amount\nX,1\n", "eve")
        # a NUL inside the file itself: the reader refuses it, naming where
        with pytest.raises(intake.IntakeError, match=r"nul\.csv: line 2, column \d+: binary data \(a NUL byte\)"):
            with conn.transaction():
                data = f"payout_id,recipient_id,name,amount,currency,iban\nN1,N1,{NUL},1,EUR,{IBANS[0]}\n".encode()
                intake.store_file(conn, "nul.csv", "upload", data, "eve")
                intake.check_upload(conn, "nul.csv", data)
        assert _counts(conn) == before                     # nothing of a refused request stays
        _assert_intact(conn, baseline)


def test_check_command_echoes_payloads_verbatim_with_a_warehouse(warehouse, tmp_path, capsys, monkeypatch):
    url, baseline = warehouse
    monkeypatch.setenv("PAYOUTS_WAREHOUSE_URL", url)
    path = tmp_path / "x'); DROP TABLE payouts.recipients; --.csv"
    path.write_bytes(_payout_csv("F"))      # the recipients the intake test made are known to the warehouse
    assert cli.main(["check", str(path)]) == 0
    captured = capsys.readouterr()
    rows = [json.loads(line) for line in captured.out.split("\n") if line]   # JSON Lines: split on newlines only
    assert [r["payout_id"] for r in rows[:-1]] == [f"{p}#F{i}" for i, p in enumerate(INJECTIONS)]
    assert rows[-1]["summary"]["rows"] == len(INJECTIONS) and "Traceback" not in captured.err
    with psycopg.connect(url) as conn:
        _assert_intact(conn, baseline)


def test_check_command_on_a_file_named_like_an_injection_refuses_it_in_one_line(warehouse, tmp_path, capsys,
                                                                                 monkeypatch):
    url, baseline = warehouse
    monkeypatch.setenv("PAYOUTS_WAREHOUSE_URL", url)
    path = tmp_path / "'; DROP SCHEMA payouts CASCADE; --.csv"
    path.write_bytes(b"\x00\x01\x02 junk")
    assert cli.main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and path.name in err and "binary data" in err and "Traceback" not in err
    with psycopg.connect(url) as conn:
        _assert_intact(conn, baseline)


def _camt_with(payloads: list[str]) -> bytes:
    """A camt.053 whose references, EndToEndIds and names are the payloads (XML-escaped, nothing else)."""
    bookings = [camt053.Booking(ref=f"REFPH{i:03d}", end_to_end_id=f"E2EPH{i:03d}", amount_minor=100 + i,
                                creditor_name=f"NAMEPH{i:03d}", creditor_account=IBANS[i % len(IBANS)])
                for i in range(len(payloads))]
    out = io.StringIO()
    camt053.write_camt053(
        out, msg_id="MSG-INJ", created_at="2025-01-06T18:00:00+00:00", statement_id="STMT-INJ", sequence_number=1,
        account_iban="DE08370400440024543826", account_owner="Platform", rail="sepa_credit", currency="EUR",
        business_date="2025-01-06", opening_minor=1_000_000,
        closing_minor=1_000_000 - sum(b.amount_minor for b in bookings), entries=bookings)
    xml = out.getvalue()
    for i, payload in enumerate(payloads):
        for placeholder in (f"REFPH{i:03d}", f"E2EPH{i:03d}", f"NAMEPH{i:03d}"):
            assert placeholder in xml
            xml = xml.replace(placeholder, escape(payload))
    return xml.encode()


def test_statement_references_and_end_to_end_ids_load_verbatim(warehouse, tmp_path):
    url, baseline = warehouse
    payloads = [p.replace("\n", " ") for p in INJECTIONS]      # XML text normalises nothing else
    path = tmp_path / "stmt'); DROP TABLE recon.statement_lines; --.xml"
    path.write_bytes(_camt_with(payloads))
    provider = "bank'; DROP TABLE recon.statement_files; --"
    with psycopg.connect(url, autocommit=True) as conn:
        loaded = recon.load_file(conn, str(path), provider_name=provider)
        assert loaded["loaded"] and loaded["lines"] == len(payloads), loaded
        rows = conn.execute(
            "SELECT l.entry_ref, l.end_to_end_id, l.counterparty_name FROM recon.statement_lines l"
            " JOIN recon.statement_files f USING (file_id) WHERE f.provider = %s AND f.name = %s",
            (provider, path.name)).fetchall()
        assert sorted(rows) == sorted((p, p, p) for p in payloads)
        counts = recon.match_pass(conn)             # no item of ours: every line an open break, none lost
        assert counts["matched"] == 0 and counts["breaks"] >= len(payloads)
        _assert_intact(conn, baseline)


def test_statement_with_a_nul_reference_is_quarantined_with_its_reason(warehouse, tmp_path):
    url, baseline = warehouse
    path = tmp_path / "nul.xml"
    path.write_bytes(_camt_with(["ok-ref"]).replace(b"ok-ref", b"x&#0;'); DROP TABLE recon.breaks; --", 1))
    with psycopg.connect(url, autocommit=True) as conn:
        before = _counts(conn)
        result = recon.load_file(conn, str(path), provider_name="nul-test")
        assert not result["loaded"] and "line" in result["quarantined"], result
        reason = conn.execute("SELECT reason FROM recon.quarantined_files WHERE provider = 'nul-test'").fetchone()[0]
        assert reason == result["quarantined"]
        assert _counts(conn) == before
        _assert_intact(conn, baseline)


@pytest.mark.parametrize("payload", INJECTIONS + [NUL])
def test_sanctions_screen_command_takes_any_name(payload, capsys):
    assert sanctions.main([payload, "--country", "DE"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["decision"] in ("clear", "review", "block")


def test_run_check_stage_screens_injection_payees_and_stores_them_verbatim(warehouse):
    """The run's checks (KYC, duplicates, sanctions screen) over payees the intake made from the payloads."""
    url, baseline = warehouse
    dag_run_id = "manual__'); DROP TABLE payouts.runs; --"
    with psycopg.connect(url, autocommit=True) as conn:
        with conn.transaction():
            data = _payout_csv("S")
            file_id = intake.store_file(conn, "stage.csv", "stage", data, "eve")
            checked, _ = intake.check_upload(conn, "stage.csv", data)
            intake.take_rows(conn, checked, intake=f"file:{file_id}", source="stage", user="eve")
        run_id = payout_run.open_run(conn, dag_run_id, "' OR '1'='1", {"note": INJECTIONS[3]})
        assert payout_run.snapshot(conn, run_id) >= len(INJECTIONS)
        counts = payout_run.check_items(conn, run_id)
        assert sum(counts.values()) >= len(INJECTIONS)
        assert conn.execute("SELECT dag_run_id, trigger, conf ->> 'note' FROM payouts.runs WHERE run_id = %s",
                            (run_id,)).fetchone() == (dag_run_id, "' OR '1'='1", INJECTIONS[3])
        screened = dict(conn.execute(
            "SELECT recipient_id, decision FROM payouts.screenings WHERE run_id = %s", (run_id,)).fetchall())
        for i, payload in enumerate(INJECTIONS):
            assert screened[f"S{i}:{payload}"] in ("clear", "review", "block")
        statuses = dict(conn.execute(
            "SELECT r.name, i.status FROM payouts.payout_items i JOIN payouts.recipients r USING (recipient_id)"
            " WHERE i.run_id = %s AND r.recipient_id LIKE 'S%%'", (run_id,)).fetchall())
        assert set(statuses) == set(INJECTIONS)
        assert set(statuses.values()) <= {"ready", "held", "rejected"}
        _assert_intact(conn, baseline)
