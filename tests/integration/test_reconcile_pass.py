"""A reconciliation pass over real bank statements on a real PostgreSQL."""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg
import pytest

from payouts import settings
from payouts.reconcile import run as recon
from payouts.statements import parse_statement_file


from tests_support import FIXTURES, WAREHOUSES, fresh_database

SAMPLE = FIXTURES / "camt" / "moov-iso20022_FI_camt_053_sample.xml.xml"
FIVE_DECIMALS = FIXTURES / "camt" / "genkgo_camt053.v2.five.decimals.xml"
BUCKET_SAMPLE = FIXTURES / "camt" / "genkgo_camt053.v3.xml"  # loaded by no other test here


def test_real_statement_loads_once_breaks_once_and_bad_files_are_quarantined(warehouse_url, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(SAMPLE, folder / "bank.xml")
    # The same statement re-sent in another file (other bytes, same entries).
    (folder / "resent.xml").write_bytes(SAMPLE.read_bytes() + b"\n<!-- re-sent -->\n")
    shutil.copy(FIVE_DECIMALS, folder / "five-decimals.xml")        # amounts EUR cannot hold
    (folder / "junk.xml").write_bytes(b"\x00\x01 not a statement")
    lines = parse_statement_file(SAMPLE).lines
    booked = lines.filter(lines["status"] == "booked")
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        results = [recon.load_file(conn, p, provider_name="bank-test") for p in recon.pending_files(folder=folder)]
        by_name = {r["file"]: r for r in results}
        assert by_name["bank.xml"]["loaded"] and by_name["bank.xml"]["lines"] == parse_statement_file(SAMPLE).lines.height
        assert by_name["resent.xml"]["loaded"] and by_name["resent.xml"]["lines"] == 0  # keyed on the statement
        assert "quarantined" in by_name["junk.xml"] and "unrecognised" in by_name["junk.xml"]["quarantined"]
        assert "exactly" in by_name["five-decimals.xml"]["quarantined"]
        counts = recon.match_pass(conn)
        # None of these lines is a payout of ours: every booked one is an open break, none is lost.
        assert counts["matched"] == 0 and counts["breaks"] == booked.height
        again = [recon.load_file(conn, p, provider_name="bank-test") for p in recon.pending_files(folder=folder)]
        assert all(not r["loaded"] for r in again)
        assert recon.match_pass(conn) == {"matched": 0, "returned": 0, "breaks": 0}
        quarantined = conn.execute(
            "SELECT name FROM recon.quarantined_files WHERE provider = 'bank-test' ORDER BY name").fetchall()
        assert [q[0] for q in quarantined] == ["five-decimals.xml", "junk.xml"]


@pytest.fixture(params=WAREHOUSES)
def own_warehouse(request):
    url, drop = fresh_database(request.param)
    request.addfinalizer(drop)
    return url


def test_statement_integrity_is_recorded(own_warehouse):
    """A statement that does not add up is flagged; a gap in the sequence across files is reported."""
    unbalanced = FIXTURES / "camt" / "moov-iso20022_camt.053_P_CH2909000000250094239_1110092698_0_2020112503071366.xml"
    balanced = FIXTURES / "camt" / "moov-iso20022_FI_camt_053_sample.xml.xml"
    with psycopg.connect(own_warehouse, autocommit=True) as conn:
        first = recon.load_file(conn, str(unbalanced), provider_name="integrity-test")
        second = recon.load_file(conn, str(balanced), provider_name="integrity-test")
        rows = conn.execute(
            "SELECT s.kind FROM recon.statement_issues s JOIN recon.statement_files f USING (file_id)"
            " WHERE f.provider = 'integrity-test' ORDER BY s.kind").fetchall()
        flags = conn.execute(
            "SELECT st.balanced FROM recon.statements st JOIN recon.statement_files f USING (file_id)"
            " WHERE f.provider = 'integrity-test' ORDER BY f.file_id").fetchall()
        classes = conn.execute(
            "SELECT DISTINCT l.line_class FROM recon.statement_lines l JOIN recon.statement_files f USING (file_id)"
            " WHERE f.provider = 'integrity-test'").fetchall()
    assert first["issues"] >= 1 and "unbalanced" in [r[0] for r in rows]
    assert second["issues"] == 0
    assert [f[0] for f in flags] == [False, True]
    assert {c[0] for c in classes} <= {"payout", "return", "funding", "fee", "interest", "other"}


def test_an_accepted_item_is_missing_only_after_enough_statement_days(own_warehouse):
    """flag_missing: a break once `after_days` statement days later than acceptance show no line for it."""
    with psycopg.connect(own_warehouse, autocommit=True) as conn:
        conn.execute("INSERT INTO payouts.runs (run_id, dag_run_id, trigger) VALUES ('R900001', 'd', 'test')")
        conn.execute("INSERT INTO payouts.recipients (recipient_id, name, country, currency, dest_kind, iban)"
                     " VALUES ('C1', 'A Payee', 'DE', 'EUR', 'iban', 'DE89370400440532013000')")
        for item, day in (("R900001-00000001", "2026-03-02"), ("R900001-00000002", "2026-03-04")):
            conn.execute("INSERT INTO payouts.payout_items (item_id, run_id, recipient_id, currency, amount_minor,"
                         " status, rail) VALUES (%s, 'R900001', 'C1', 'EUR', 100, 'accepted', 'sepa_credit')", (item,))
            conn.execute("INSERT INTO payouts.attempts (item_id, rail, idempotency_key, status, answered_at, provider)"
                         " VALUES (%s, 'sepa_credit', %s, 'accepted', %s, 'payouts_sandbox')", (item, item + ":sepa_credit", day))
        file_id = conn.execute(
            "INSERT INTO recon.statement_files (provider, name, format, sha256, size_bytes, path)"
            " VALUES ('p', 'f', 'camt.053', 'x', 1, 'f') RETURNING file_id").fetchone()[0]

        def statement_day(day: str) -> None:
            conn.execute("INSERT INTO recon.statement_lines (file_id, provider, account, statement_id, entry_ref,"
                         " position, booking_date, amount_minor, currency, status) VALUES"
                         " (%s, 'p', 'acct', %s, 'other', 0, %s, -5, 'EUR', 'booked')", (file_id, day, day))

        def missing() -> set[str]:
            return {r[0] for r in conn.execute(
                "SELECT item_id FROM recon.breaks WHERE break_type = 'missing_at_provider'").fetchall()}

        assert recon.flag_missing(conn, after_days=2) == 0          # no statements yet
        statement_day("2026-03-02")                                  # the day it was accepted: not after it
        statement_day("2026-03-03")
        assert recon.flag_missing(conn, after_days=2) == 0 and missing() == set()
        statement_day("2026-03-04")                                  # two days after item 1, none after item 2
        assert recon.flag_missing(conn, after_days=2) == 1 and missing() == {"R900001-00000001"}
        statement_day("2026-03-05")
        statement_day("2026-03-06")
        assert recon.flag_missing(conn, after_days=2) == 1           # item 2 now; item 1 not twice
        assert missing() == {"R900001-00000001", "R900001-00000002"}
        with pytest.raises(ValueError):
            recon.flag_missing(conn, after_days=0)

        # A run opened before the window (PAYOUTS_RECON_WINDOW_DAYS) is not looked at again: its
        # items were flagged, if at all, while it was inside the window.
        conn.execute("INSERT INTO payouts.runs (run_id, dag_run_id, trigger, created_at) VALUES"
                     " ('R900002', 'd2', 'test', now() - make_interval(days => %s + 1))",
                     (settings.RECON_WINDOW_DAYS,))
        conn.execute("INSERT INTO payouts.payout_items (item_id, run_id, recipient_id, currency, amount_minor,"
                     " status, rail) VALUES ('R900002-00000001', 'R900002', 'C1', 'EUR', 100, 'accepted',"
                     " 'sepa_credit')")
        conn.execute("INSERT INTO payouts.attempts (item_id, rail, idempotency_key, status, answered_at, provider)"
                     " VALUES ('R900002-00000001', 'sepa_credit', 'R900002-00000001:sepa_credit', 'accepted',"
                     " '2026-03-02', 'payouts_sandbox')")
        assert recon.flag_missing(conn, after_days=2) == 0 and "R900002-00000001" not in missing()
        conn.execute("UPDATE payouts.runs SET created_at = now() WHERE run_id = 'R900002'")
        assert recon.flag_missing(conn, after_days=2) == 1 and "R900002-00000001" in missing()


def test_files_parsed_in_worker_processes_load_as_one_by_one(own_warehouse, tmp_path, monkeypatch):
    """load_files with the parsing in spawned workers: the same lines, quarantines and skips, in order."""
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(SAMPLE, folder / "a-bank.xml")
    shutil.copy(SAMPLE, folder / "b-same-bytes.xml")                 # identical: loaded once
    shutil.copy(FIVE_DECIMALS, folder / "c-five-decimals.xml")       # quarantined
    (folder / "d-junk.xml").write_bytes(b"\x00\x01 not a statement")  # quarantined
    unbalanced = FIXTURES / "camt" / "moov-iso20022_camt.053_P_CH2909000000250094239_1110092698_0_2020112503071366.xml"
    shutil.copy(unbalanced, folder / "e-other.xml")
    monkeypatch.setattr(recon, "PARALLEL_PARSE_MIN_BYTES", 0)
    paths = recon.pending_files(folder=folder)
    with psycopg.connect(own_warehouse, autocommit=True) as conn:
        results = recon.load_files(conn, paths, provider_name="parallel-test", workers=2)
        assert [r["file"] for r in results] == [Path(p).name for p in paths]
        by_name = {r["file"]: r for r in results}
        assert by_name["a-bank.xml"]["loaded"] and by_name["a-bank.xml"]["lines"] == parse_statement_file(SAMPLE).lines.height
        assert not by_name["b-same-bytes.xml"]["loaded"] and "quarantined" not in by_name["b-same-bytes.xml"]
        assert "exactly" in by_name["c-five-decimals.xml"]["quarantined"]
        assert "unrecognised" in by_name["d-junk.xml"]["quarantined"]
        assert by_name["e-other.xml"]["lines"] == parse_statement_file(unbalanced).lines.height
        stored = conn.execute("SELECT count(*) FROM recon.statement_lines WHERE provider = 'parallel-test'").fetchone()[0]
        assert stored == by_name["a-bank.xml"]["lines"] + by_name["e-other.xml"]["lines"]
        assert all(not r["loaded"] for r in recon.load_files(conn, paths, provider_name="parallel-test", workers=2))


READS: list[str] = []  # the paths read from the in-memory bucket


def test_statements_fetched_into_a_bucket_load_from_it(warehouse_url, tmp_path, monkeypatch):
    """PAYOUTS_STATEMENTS_URL names a store that is not a local folder (fsspec's in-memory
    filesystem, attached as Airflow attaches s3 or gcs): fetch files it, the load reads it,
    and a later pass does not download it again."""
    from airflow.sdk.io import attach
    from fsspec.implementations.memory import MemoryFileSystem

    from payouts.providers.contract import StatementPage

    class CountingMemory(MemoryFileSystem):
        def _open(self, path, mode="rb", **kwargs):
            if "r" in mode:
                READS.append(path)
            return super()._open(path, mode, **kwargs)

    attach("memory", fs=CountingMemory())  # Airflow may keep the store a first test attached: reads go to READS either way
    url = f"memory://bucket-{tmp_path.name}/statements"
    monkeypatch.setenv("PAYOUTS_STATEMENTS_URL", url)
    monkeypatch.setenv("PAYOUTS_DATA_DIR", str(tmp_path / "data"))

    class OneFileBank:
        def fetch_statements(self, cursor, dest: Path) -> StatementPage:
            if cursor == "bank.xml":
                return StatementPage(files=[], cursor=cursor)
            shutil.copy(BUCKET_SAMPLE, dest / "bank.xml")
            return StatementPage(files=[dest / "bank.xml"], cursor="bank.xml")

    provider = f"bank-{tmp_path.name}"
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        fetched = recon.fetch_statements(conn, OneFileBank(), provider)
        assert fetched == [f"{url}/{provider}/bank.xml"]
        assert recon.fetch_statements(conn, OneFileBank(), provider) == []  # the cursor moved on
        [loaded] = recon.load_files(conn, recon.pending_files(provider), provider)
        assert loaded["loaded"] and loaded["lines"] == parse_statement_file(BUCKET_SAMPLE).lines.height
        assert any(path.endswith(f"{provider}/bank.xml") for path in READS)
        reads = len(READS)
        assert recon.load_files(conn, recon.pending_files(provider), provider) == [
            {"file": "bank.xml", "loaded": False, "lines": 0}]
        assert len(READS) == reads  # known by its URL: not downloaded again
        path = conn.execute("SELECT path FROM recon.statement_files WHERE provider = %s", (provider,)).fetchone()[0]
    assert path == f"{url}/{provider}/bank.xml"
    assert not (tmp_path / "data" / "statements").exists()
