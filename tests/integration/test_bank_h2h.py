"""A bank host-to-host against a real SFTP server (the sandbox bank, asyncssh on loopback) and a
real warehouse: pain.001 files in, pain.002 and camt.053 out, every repeat harmless."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from types import SimpleNamespace

import psycopg
import pytest

from payouts.core import ledger
from payouts.iso20022.pain001 import validate
from payouts.providers import registry
from payouts.providers.bank_h2h import store
from payouts.providers.contract import AmbiguousOutcome, ProviderError
from payouts.reconcile import run as recon
from payouts.payout_run.submit import poll_pending, resolve_unanswered, submit_batch
from payouts_sandbox.bank.process import start_bank

from tests_support import WAREHOUSES, fresh_database

from test_payout_run_stages import _prepare, _seed

BANK_RAILS = ("sepa_instant", "sepa_credit", "swift", "faster_payments", "ach")
SHARED_XSD = Path(__file__).resolve().parents[3] / "shared" / "data" / "xsd"


@pytest.fixture()
def fresh(request):
    """A warehouse of its own per test, on one PostgreSQL (the server when there is one): these tests are
    about the bank, and the warehouse's SQL is run on both by the rest of the suite."""
    import uuid

    url, drop = fresh_database(WAREHOUSES[-1])
    request.addfinalizer(drop)
    tag = uuid.uuid4().hex[:6]
    with psycopg.connect(url, autocommit=True) as conn:
        _seed(conn, tag)
    return url, tag


@pytest.fixture()
def bank_env(fresh, tmp_path, monkeypatch):
    """A fresh warehouse whose bank rails name the connection payouts_bank; `start(...)` starts the bank."""
    url, tag = fresh
    monkeypatch.setenv("PAYOUTS_WAREHOUSE_URL", url)
    monkeypatch.setenv("PAYOUTS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PAYOUTS_RAIL_PROVIDERS", ",".join(f"{r}=payouts_bank" for r in BANK_RAILS))
    monkeypatch.setenv("PAYOUTS_FX_PROVIDER", "payouts_bank")
    started = []

    class Env:
        def __init__(self):
            self.url, self.tag, self.bank = url, tag, None

        def start(self, connection_extra: dict | None = None, **bank_options):
            if self.bank is not None:
                self.bank.stop()
            self.bank = start_bank(tmp_path / "bank", **bank_options)
            started.append(self.bank)
            monkeypatch.setenv("AIRFLOW_CONN_PAYOUTS_BANK", self.bank.connection_json(**(connection_extra or {})))
            return self.bank

        def connector(self):
            return registry.connector("payouts_bank")

        def folder(self, name: str) -> list[str]:
            return sorted(p.name for p in (self.bank.root / name).iterdir() if not p.name.startswith("."))

    env = Env()
    yield env
    for bank in started:
        bank.stop()


def _bank_batches(plan):
    return [b for rail in BANK_RAILS for b in plan.get(rail, [])]


def _send_first_batch(conn, env):
    """A run prepared and its first bank batch submitted: (run_id, batch)."""
    run_id, plan = _prepare(conn, env.tag)
    batch = _bank_batches(plan)[0]
    connector = env.connector()
    try:
        submit_batch(conn, connector, batch)
    finally:
        connector.close()
    return run_id, batch


def _submit_all(conn, env, plan):
    outcomes = []
    for batch in _bank_batches(plan):
        connector = env.connector()
        try:
            outcomes.append(submit_batch(conn, connector, batch))
        finally:
            connector.close()
    return outcomes


def _statuses(conn, run_id):
    """Statuses of the run's items planned into batches of the bank's rails."""
    return dict(conn.execute("SELECT status, count(*) FROM payouts.payout_items WHERE run_id = %s"
                             " AND rail = ANY(%s) AND batch_no IS NOT NULL GROUP BY 1",
                             (run_id, list(BANK_RAILS))).fetchall())


def _item_rows(conn, run_id):
    return {i: (s, r) for i, s, r in conn.execute(
        "SELECT item_id, status, reasons FROM payouts.payout_items WHERE run_id = %s AND rail = ANY(%s)"
        " AND batch_no IS NOT NULL",
        (run_id, list(BANK_RAILS))).fetchall()}


def _poll(conn):
    return poll_pending(conn, registry.connector)


def test_a_run_goes_out_as_files_comes_back_as_reports_and_statements_and_repeats_send_nothing(bank_env):
    bank = bank_env.start()
    with psycopg.connect(bank_env.url, autocommit=True) as conn:
        run_id, plan = _prepare(conn, bank_env.tag)
        outcomes = _submit_all(conn, bank_env, plan)
        sent = sum(o.sent for o in outcomes)
        assert sent >= 3 and sum(o.pending for o in outcomes) == sent
        assert _statuses(conn, run_id) == {"submitted": sent} | {
            k: v for k, v in _statuses(conn, run_id).items() if k != "submitted"}
        files = conn.execute("SELECT file_name, msg_id, state, plain, plain_sha256, wire_sha256, item_count"
                             " FROM bank.files WHERE conn_id = 'payouts_bank' ORDER BY 1").fetchall()
        assert len(files) == len(_bank_batches(plan)) and sum(f[6] for f in files) == sent
        # Valid against the official XSD (the shared copy), and what the bank received is what was stored.
        for name, msg_id, state, plain, plain_sha, wire_sha, _ in files:
            assert state == "uploaded" and plain_sha == wire_sha == store.sha256(plain)
            assert validate(plain, "001.001.09", schema_path=SHARED_XSD / "pain.001.001.09.xsd") == []
            assert store.sha256((bank.root / "archive" / name).read_bytes()) == plain_sha
        archived = bank_env.folder("archive")
        assert archived == sorted(f[0] for f in files)

        # A retried submit task of every batch: the stored files are found delivered, nothing is uploaded again.
        _submit_all(conn, bank_env, plan)
        assert bank_env.folder("archive") == archived
        assert conn.execute("SELECT sum(uploads) FROM bank.files").fetchone()[0] == len(files)

        counts = _poll(conn)
        assert counts["resolved"] == sent and counts["pending"] == 0, counts
        assert _statuses(conn, run_id).get("accepted") == sent
        received = conn.execute("SELECT kind, state, count(*) FROM bank.received GROUP BY 1, 2 ORDER BY 1, 2").fetchall()
        # An ACTC and a final report per file; one camt.053 per account and file.
        assert ("pain.002", "applied", 2 * len(files)) in received
        assert all(state != "quarantined" for _, state, _ in received)
        assert set(conn.execute("SELECT iso_status FROM bank.file_items").fetchall()) == {("ACSC",)}

        # The statements: fetched into the store, reconciled with no breaks, every item settled.
        connector = bank_env.connector()
        try:
            fetched = recon.fetch_statements(conn, connector, "payouts_bank")
            assert fetched and recon.fetch_statements(conn, connector, "payouts_bank") == []
            assert {Path(f).name[:7] for f in fetched} == {"CAMT053", "CAMT054"}
        finally:
            connector.close()
        loaded = recon.load_files(conn, recon.pending_files("payouts_bank"), "payouts_bank")
        assert all(f["loaded"] and not f.get("quarantined") for f in loaded), loaded
        counts = recon.match_pass(conn)
        assert _statuses(conn, run_id) == {"settled": sent}
        assert conn.execute("SELECT count(*) FROM recon.breaks").fetchone()[0] == 0, counts
        # Polled again: nothing pending, nothing read twice.
        assert _poll(conn)["polled"] == 0


def test_a_file_uploaded_twice_is_refused_by_msg_id_and_rejects_no_item(bank_env):
    bank = bank_env.start()
    with psycopg.connect(bank_env.url, autocommit=True) as conn:
        run_id, batch = _send_first_batch(conn, bank_env)
        name, wire = conn.execute("SELECT file_name, wire FROM bank.files").fetchone()
        # The same file dropped again (by a person, another system): the bank refuses its MsgId.
        (bank.root / "inbox" / name).write_bytes(wire)
        # This copy came without a rename: a bank that also scans its inbox picks it up.
        bank_env.start(pickup_s=0.2)
        deadline = time.monotonic() + 10
        while (bank_env.bank.root / "inbox" / name).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not (bank_env.bank.root / "inbox" / name).exists()
        counts = _poll(conn)
        assert counts["resolved"] == batch["item_count"]
        assert _statuses(conn, run_id).get("accepted") == batch["item_count"]
        dup = conn.execute("SELECT reason FROM bank.received WHERE reason LIKE 'duplicate%'").fetchall()
        assert dup == [("duplicate MsgId: no payment changed",)]
        assert conn.execute("SELECT count(*) FROM payouts.payout_items WHERE status IN ('rejected', 'fallback')"
                            " AND run_id = %s AND rail = %s", (run_id, batch["rail"])).fetchone()[0] == 0


@pytest.mark.parametrize("duplicates_refused", [False, True])
def test_an_upload_that_cannot_be_confirmed_is_parked_unless_the_bank_refuses_duplicates(bank_env, duplicates_refused):
    bank_env.start({"rejects_duplicate_msg_id": duplicates_refused}, inbox_listable=False)
    with psycopg.connect(bank_env.url, autocommit=True) as conn:
        run_id, plan = _prepare(conn, bank_env.tag)
        batch = _bank_batches(plan)[0]
        connector = bank_env.connector()
        try:
            async def crash(name, connector=connector):
                store.set_state(connector.db(), connector.conn_id, name, "uploading", begin_upload=True)
                raise KeyboardInterrupt("the worker died")

            connector._deliver = crash
            with pytest.raises(KeyboardInterrupt):
                submit_batch(conn, connector, batch)
        finally:
            connector.close()
        connector = bank_env.connector()
        try:
            submit_batch(conn, connector, batch)
        finally:
            connector.close()
        state, detail = conn.execute("SELECT state, detail FROM bank.files").fetchone()
        if duplicates_refused:
            assert state == "uploaded" and len(bank_env.folder("archive")) == 1
            assert _poll(conn)["resolved"] == batch["item_count"]
        else:
            assert state == "parked" and "cannot be listed" in detail
            assert bank_env.folder("archive") == []  # never sent on a guess
            rows = _item_rows(conn, run_id)
            parked = [r for s, r in rows.values() if s == "awaiting_status"]
            assert len(parked) == batch["item_count"] and {r[-1]["code"] for r in parked} == {"FILE_UNCONFIRMED"}
            # Asked about again, the file still unconfirmed: nothing moves, nothing is sent.
            assert _poll(conn) == {"polled": batch["item_count"], "resolved": 0, "pending": 0, "awaiting_status": 0}
            assert _statuses(conn, run_id)["awaiting_status"] == batch["item_count"]
            assert bank_env.folder("archive") == []


def test_partial_and_file_rejections_follow_the_reason_catalogue(bank_env):
    bank_env.start(faults="partial_reject=1")
    with psycopg.connect(bank_env.url, autocommit=True) as conn:
        run_id, plan = _prepare(conn, bank_env.tag)
        _submit_all(conn, bank_env, plan)
        _poll(conn)
        per_file = conn.execute("SELECT msg_id, array_agg(DISTINCT iso_status ORDER BY iso_status)"
                                " FROM bank.file_items GROUP BY 1").fetchall()
        assert {tuple(s) for _, s in per_file} <= {("ACSC", "RJCT"), ("RJCT",)}
        assert any(tuple(s) == ("ACSC", "RJCT") for _, s in per_file)  # PART: some through, some not
        rows = _item_rows(conn, run_id)
        rejected = [r for s, r in rows.values() if s == "rejected"]
        assert rejected and all(r[-1]["iso_code"] == "AC04" and r[-1]["code"] == "ACCOUNT_REJECTED" for r in rejected)
        blocked = conn.execute("SELECT count(*) FROM payouts.recipients WHERE destination_blocked_reason IS NOT NULL"
                               ).fetchone()[0]
        assert blocked == len(rejected)
        assert {s for s, _ in rows.values()} <= {"accepted", "rejected", "held", "cancelled"}


def test_a_rejected_file_rejects_its_items(bank_env):
    bank_env.start(faults="file_reject=1")
    with psycopg.connect(bank_env.url, autocommit=True) as conn:
        run_id, plan = _prepare(conn, bank_env.tag)
        sent = sum(o.sent for o in _submit_all(conn, bank_env, plan))
        assert _poll(conn)["resolved"] == sent
        rows = _item_rows(conn, run_id)
        assert sum(1 for s, _ in rows.values() if s == "rejected") == sent
        assert {r[-1]["iso_code"] for s, r in rows.values() if s == "rejected"} == {"MS03"}


def test_a_lost_status_report_parks_the_items_with_the_reason_and_sends_nothing_again(bank_env):
    bank_env.start({"status_wait_s": 1}, faults="pain002_missing=1")
    with psycopg.connect(bank_env.url, autocommit=True) as conn:
        run_id, plan = _prepare(conn, bank_env.tag)
        sent = sum(o.sent for o in _submit_all(conn, bank_env, plan))
        assert _poll(conn)["pending"] == sent  # within the wait: still waiting
        time.sleep(1.2)
        _poll(conn)
        rows = _item_rows(conn, run_id)
        parked = [r for s, r in rows.values() if s == "awaiting_status"]
        assert len(parked) == sent and all(r[-1]["code"] == "NO_STATUS_REPORT" for r in parked)
        assert {s for s, in conn.execute("SELECT state FROM bank.files").fetchall()} == {"no_report"}
        assert len(bank_env.folder("archive")) == len(_bank_batches(plan))  # nothing resent
        # Asked about again with still no report: they stay parked.
        assert _poll(conn) == {"polled": sent, "resolved": 0, "pending": 0, "awaiting_status": 0}
        assert _statuses(conn, run_id) == {"awaiting_status": sent}
        # The bank did execute them: their bookings on its statements accept and settle the parked items.
        connector = bank_env.connector()
        try:
            recon.fetch_statements(conn, connector, "payouts_bank")
        finally:
            connector.close()
        recon.load_files(conn, recon.pending_files("payouts_bank"), "payouts_bank")
        recon.match_pass(conn)
        assert _statuses(conn, run_id) == {"settled": sent}
        assert conn.execute("SELECT count(*) FROM recon.breaks").fetchone()[0] == 0
        assert ledger.unbalanced(conn) == [] and ledger.orphans(conn) == []


def test_a_rejection_that_comes_after_the_items_were_parked_releases_their_money(bank_env):
    bank_env.start({"status_wait_s": 1}, faults="file_reject=1,pain002_late=1", late_s=3.0)
    with psycopg.connect(bank_env.url, autocommit=True) as conn:
        run_id, plan = _prepare(conn, bank_env.tag)
        sent = sum(o.sent for o in _submit_all(conn, bank_env, plan))
        time.sleep(1.2)
        assert _poll(conn)["resolved"] == 0
        assert _statuses(conn, run_id) == {"awaiting_status": sent}  # no report within the wait: parked
        deadline = time.monotonic() + 30
        while _statuses(conn, run_id).get("awaiting_status") and time.monotonic() < deadline:
            time.sleep(0.5)
            _poll(conn)
        # The bank's late pain.002 rejects the whole file (MS03): the items are rejected, their money
        # goes back to payable, and nothing was sent again.
        rows = _item_rows(conn, run_id)
        assert {s for s, _ in rows.values()} == {"rejected"} and len(rows) == sent
        assert {r[-1]["iso_code"] for _, r in rows.values()} == {"MS03"}
        released = conn.execute(
            "SELECT count(*) FROM ledger.transactions t JOIN payouts.payout_items i ON t.txn_id = 'release:' || i.item_id"
            " WHERE i.run_id = %s AND i.batch_no IS NOT NULL AND i.rail = ANY(%s)", (run_id, list(BANK_RAILS))).fetchone()[0]
        assert released == sent
        reserved = conn.execute(
            "SELECT coalesce(sum(p.amount_minor), 0) FROM ledger.postings p JOIN payouts.payout_items i"
            " ON p.txn_id IN ('reserve:' || i.item_id, 'release:' || i.item_id) WHERE i.run_id = %s"
            " AND i.status = 'rejected' AND p.account = 'reserved'", (run_id,)).fetchone()[0]
        assert reserved == 0
        assert len(bank_env.folder("archive")) == len(_bank_batches(plan))
        assert ledger.unbalanced(conn) == [] and ledger.orphans(conn) == []
        assert _poll(conn)["polled"] == 0


def test_a_late_status_report_is_applied_when_it_comes(bank_env):
    bank_env.start(faults="pain002_late=1", late_s=1.0)
    with psycopg.connect(bank_env.url, autocommit=True) as conn:
        run_id, plan = _prepare(conn, bank_env.tag)
        sent = sum(o.sent for o in _submit_all(conn, bank_env, plan))
        assert _poll(conn)["pending"] == sent
        time.sleep(1.6)
        assert _poll(conn)["resolved"] == sent
        assert _statuses(conn, run_id).get("accepted") == sent


def test_a_bank_that_reports_only_rejections(bank_env):
    bank_env.start({"reports": "rejections", "status_wait_s": 1}, reports="rejections", faults="reject=0.5", seed=3)
    with psycopg.connect(bank_env.url, autocommit=True) as conn:
        run_id, plan = _prepare(conn, bank_env.tag)
        sent = sum(o.sent for o in _submit_all(conn, bank_env, plan))
        first = _poll(conn)
        rejected_now = first["resolved"]
        assert 0 < rejected_now < sent, first  # the rejections came at once; silence is not yet acceptance
        time.sleep(1.2)
        assert _poll(conn)["resolved"] == sent - rejected_now
        statuses = _statuses(conn, run_id)
        assert statuses.get("accepted") == sent - rejected_now
        assert statuses.get("rejected", 0) + statuses.get("fallback", 0) + statuses.get("held", 0) >= rejected_now


def test_a_dropped_upload_executes_nothing_and_the_retry_sends_it_once(bank_env):
    bank_env.start(faults="upload_drop=1")
    with psycopg.connect(bank_env.url, autocommit=True) as conn:
        run_id, plan = _prepare(conn, bank_env.tag)
        batch = _bank_batches(plan)[0]
        connector = bank_env.connector()
        try:
            with pytest.raises(AmbiguousOutcome):  # the task fails; Airflow retries it
                submit_batch(conn, connector, batch)
        finally:
            connector.close()
        assert bank_env.folder("archive") == [] and bank_env.folder("inbox") == []
        bank_env.start()  # the line is back
        connector = bank_env.connector()
        try:
            submit_batch(conn, connector, batch)
        finally:
            connector.close()
        assert len(bank_env.folder("archive")) == 1
        assert _poll(conn)["resolved"] == batch["item_count"]


def _drop_in_outbox(bank, name: str, data: bytes) -> None:
    (bank.root / "outbox" / name).write_bytes(data)


def test_bad_files_from_the_bank_are_quarantined_with_the_reason_and_change_nothing(bank_env, shared_data):
    bank = bank_env.start()
    with psycopg.connect(bank_env.url, autocommit=True) as conn:
        run_id, batch = _send_first_batch(conn, bank_env)
        msg_id = conn.execute("SELECT msg_id FROM bank.files").fetchone()[0]
        # The bank's own reports are taken away: only the bad files are left to read.
        for name in bank_env.folder("outbox"):
            (bank.root / "outbox" / name).unlink()
        before = _item_rows(conn, run_id)
        real = (shared_data / "pain" / "moov-iso20022_pain002-epo_p_0_0_0_2018031510491259.xml").read_bytes()
        _drop_in_outbox(bank, "A_truncated.xml", b'<?xml version="1.0"?><Document><CstmrPmtStsRpt><OrgnlGrpInfAndSts>'
                        + msg_id.encode())
        _drop_in_outbox(bank, "B_never_sent.xml", real)
        camt = (shared_data / "camt" / "genkgo_camt053.v8.xml").read_bytes()
        _drop_in_outbox(bank, "C_foreign.xml", camt)
        connector = bank_env.connector()
        try:
            connector.poll_reports()
            page = connector.fetch_statements(None, Path(bank_env.bank.root.parent / "fetched"))
        finally:
            connector.close()
        reasons = dict(conn.execute("SELECT file_name, reason FROM bank.received WHERE state = 'quarantined'").fetchall())
        assert "malformed pain.002" in reasons["A_truncated.xml"]
        assert "pain.002 for a file never sent (OrgnlMsgId" in reasons["B_never_sent.xml"]
        assert "not ours" in reasons["C_foreign.xml"]
        assert page.files == []
        assert _item_rows(conn, run_id) == before
        assert conn.execute("SELECT count(*) FROM bank.file_items WHERE iso_status IS NOT NULL").fetchone()[0] == 0


def test_a_key_the_bank_does_not_know_is_refused(bank_env, tmp_path, monkeypatch):
    from payouts_sandbox.bank.process import new_key_pair

    bank_env.start()
    stranger, _ = new_key_pair(tmp_path, "stranger")
    conn_json = json.loads(bank_env.bank.connection_json())
    conn_json["extra"]["private_key"] = stranger.read_text()
    monkeypatch.setenv("AIRFLOW_CONN_PAYOUTS_BANK", json.dumps(conn_json))
    connector = bank_env.connector()
    try:
        with pytest.raises(ProviderError, match="login refused"):
            connector.health()
    finally:
        connector.close()


@pytest.mark.parametrize("same_bytes", [True, False])
def test_a_rename_onto_a_name_already_in_the_inbox_never_overwrites(bank_env, same_bytes):
    bank = bank_env.start()
    with psycopg.connect(bank_env.url, autocommit=True) as conn:
        run_id, plan = _prepare(conn, bank_env.tag)
        batch = _bank_batches(plan)[0]
        connector = bank_env.connector()
        try:
            # The file is written (write-ahead) but not sent; meanwhile a file of its name reached the
            # inbox (another worker's rename that won the race, or a stranger's file).
            real_deliver = connector._deliver

            async def stop_before_sending(name):
                raise KeyboardInterrupt("stopped before the upload")

            connector._deliver = stop_before_sending
            with pytest.raises(KeyboardInterrupt):
                submit_batch(conn, connector, batch)
            connector._deliver = real_deliver
            name, wire = conn.execute("SELECT file_name, wire FROM bank.files").fetchone()
            squatter = wire if same_bytes else wire.replace(b"<NbOfTxs>", b"<!-- another -->\n<NbOfTxs>", 1)
            (bank.root / "inbox" / name).write_bytes(squatter)
            submit_batch(conn, connector, batch)
        finally:
            connector.close()
        assert (bank.root / "inbox" / name).read_bytes() == squatter  # never overwritten
        state, uploads = conn.execute("SELECT state, uploads FROM bank.files").fetchone()
        assert uploads == 1 and bank_env.folder("archive") == []
        assert [p.name for p in (bank.root / "inbox").iterdir() if p.name.startswith(".")] == []  # temp removed
        if same_bytes:
            assert state == "uploaded"
        else:
            assert state == "parked"
            rows = _item_rows(conn, run_id)
            assert {r[-1]["code"] for s, r in rows.values() if s == "awaiting_status"} == {"FILE_NAME_TAKEN"}


# -- PGP ----------------------------------------------------------------------------------

def _gpg_home(homes: list) -> Path:
    import tempfile

    home = Path(tempfile.mkdtemp(prefix="g", dir="/tmp"))  # short: gpg-agent's socket lives in it
    homes.append(home)
    return home


def _new_key(home: Path, who: str):
    import gnupg

    gpg = gnupg.GPG(gnupghome=str(home))
    key = gpg.gen_key(gpg.gen_key_input(key_type="EDDSA", key_curve="ed25519", subkey_type="ECDH",
                                        subkey_curve="cv25519", name_real=who, name_email=f"{who}@example.com",
                                        no_protection=True))
    assert key.fingerprint, key.stderr
    return gpg, key.fingerprint


@pytest.fixture()
def pgp_keys():
    """The platform's key, the bank's key (each in a home of its own) and an impostor's."""
    import shutil
    import subprocess

    homes: list[Path] = []
    platform_gpg, platform_fpr = _new_key(_gpg_home(homes), "platform")
    bank_home = _gpg_home(homes)
    bank_gpg, bank_fpr = _new_key(bank_home, "bank")
    bank_gpg.import_keys(platform_gpg.export_keys(platform_fpr))
    impostor_gpg, impostor_fpr = _new_key(_gpg_home(homes), "impostor")
    impostor_gpg.import_keys(platform_gpg.export_keys(platform_fpr))
    keys = SimpleNamespace(
        connection={"home": str(_gpg_home(homes)), "fingerprint": platform_fpr,
                    "private_key": platform_gpg.export_keys(platform_fpr, secret=True, expect_passphrase=False),
                    "bank_public_key": bank_gpg.export_keys(bank_fpr), "bank_fingerprint": bank_fpr},
        bank={"home": str(bank_home), "fingerprint": bank_fpr, "peer": platform_fpr},
        impostor=(impostor_gpg, impostor_fpr, platform_fpr))
    yield keys
    for home in homes:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], capture_output=True, check=False)
        shutil.rmtree(home, ignore_errors=True)


def test_pgp_files_are_signed_and_encrypted_both_ways_and_only_the_pinned_signer_is_believed(bank_env, pgp_keys):
    bank = bank_env.start({"pgp": pgp_keys.connection}, pgp=pgp_keys.bank)
    with psycopg.connect(bank_env.url, autocommit=True) as conn:
        run_id, plan = _prepare(conn, bank_env.tag)
        sent = sum(o.sent for o in _submit_all(conn, bank_env, plan))
        archived = bank_env.folder("archive")
        assert archived and all(n.endswith(".xml.pgp") for n in archived)
        for name in archived:
            data = (bank.root / "archive" / name).read_bytes()
            assert data.startswith(b"-----BEGIN PGP MESSAGE-----") and b"CstmrCdtTrfInitn" not in data
        assert bank_env.folder("refused") == []  # the bank believed our signature
        outbox = bank_env.folder("outbox")
        assert outbox and all(n.endswith(".pgp") for n in outbox)
        # A status report that names every payment rejected, signed by another key: refused, applied to nothing.
        impostor_gpg, impostor_fpr, platform_fpr = pgp_keys.impostor
        msg_id = conn.execute("SELECT msg_id FROM bank.files ORDER BY file_name LIMIT 1").fetchone()[0]
        forged = impostor_gpg.encrypt(_report_rejecting_all(msg_id), [platform_fpr], sign=impostor_fpr,
                                      always_trust=True, armor=True)
        assert forged.ok
        (bank.root / "outbox" / "A_FORGED.xml.pgp").write_bytes(bytes(forged.data))
        counts = _poll(conn)
        assert counts["resolved"] == sent and _statuses(conn, run_id).get("accepted") == sent
        reason = conn.execute("SELECT reason FROM bank.received WHERE file_name = 'A_FORGED.xml.pgp'").fetchone()[0]
        assert "not signed by the bank's pinned key" in reason or "not by the bank's pinned key" in reason
        plain = conn.execute("SELECT count(*) FROM bank.received WHERE state = 'applied' AND plain LIKE '%%CstmrPmtStsRpt%%'"
                             ).fetchone()[0]
        assert plain == 2 * len(archived)  # every genuine report decrypted, kept in plain beside its raw bytes


def _report_rejecting_all(msg_id: str) -> bytes:
    from payouts_sandbox.bank.pain002 import write_pain002

    return write_pain002(msg_id="FORGED1", original_msg_id=msg_id, original_msg_name="pain.001.001.09",
                         group_status="RJCT", group_reason="AC04")


def test_providers_check_pins_the_host_key_logs_in_and_lists_the_folders(tmp_path):
    import os
    import subprocess
    import sys

    from payouts_sandbox.bank.process import new_key_pair

    project = Path(__file__).resolve().parents[2]
    with start_bank(tmp_path / "bank") as bank:
        (bank.root / "outbox" / "CAMT053_1.xml").write_bytes(b"<x/>")

        def check(connection: dict) -> subprocess.CompletedProcess:
            env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN_", "PAYOUTS_RAIL"))}
            env.update(AIRFLOW_CONN_PAYOUTS_BANK=json.dumps(connection), PYTHONPATH=str(project / "plugins"),
                       PAYOUTS_RAIL_PROVIDERS=",".join(f"{r}=payouts_bank" for r in BANK_RAILS))
            return subprocess.run([sys.executable, "-m", "payouts_tooling.cli", "providers", "check", "payouts_bank"],
                                  env=env, capture_output=True, text=True, timeout=120)

        done = check(bank.connection())
        assert done.returncode == 0, done.stdout + done.stderr
        answer = json.loads(done.stdout)
        assert answer["connector"] == "bank_h2h" and answer["rails"] == list(BANK_RAILS)
        assert answer["health"]["inbox"] == 0 and answer["health"]["outbox"] == 1
        assert answer["health"]["host_key"].startswith("SHA256:") and answer["health"]["login"] == "payouts"

        _, other = new_key_pair(tmp_path, "other")
        wrong_host = bank.connection()
        wrong_host["extra"]["host_key"] = other
        done = check(wrong_host)
        assert done.returncode == 2 and "does not match the pinned key" in done.stderr, done.stderr


# -- chaos: the submitting process killed right before and right after the rename -----------

_SUBMIT = """
import json, sys
import psycopg
from payouts.providers import registry
from payouts.payout_run.submit import submit_batch
batch = json.loads(sys.argv[1])
with psycopg.connect(sys.argv[2], autocommit=True) as conn:
    submit_batch(conn, registry.connector("payouts_bank"), batch)
"""


@pytest.mark.parametrize("stall_at, then", [("close", "retry"), ("rename", "retry"), ("close", "resolve"),
                                            ("rename", "resolve")])
def test_a_submit_killed_right_before_or_after_the_rename_is_sent_once(bank_env, stall_at, then):
    import os
    import signal
    import subprocess
    import sys

    bank = bank_env.start(stall_at=stall_at)
    project = Path(__file__).resolve().parents[2]
    with psycopg.connect(bank_env.url, autocommit=True) as conn:
        run_id, plan = _prepare(conn, bank_env.tag)
        batch = _bank_batches(plan)[0]
        env = dict(os.environ, PYTHONPATH=str(project / "plugins"))
        worker = subprocess.Popen([sys.executable, "-c", _SUBMIT, json.dumps(batch), bank_env.url], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        marker = bank.root / f"stalled-at-{stall_at}"
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert worker.poll() is None and time.monotonic() < deadline, worker.stdout.read().decode()[-3000:]
            time.sleep(0.05)
        worker.send_signal(signal.SIGKILL)  # the worker dies: no cleanup, no answer recorded
        worker.wait(10)
        state = conn.execute("SELECT state FROM bank.files").fetchone()[0]
        assert state == "uploading"
        assert len(bank_env.folder("archive")) == (1 if stall_at == "rename" else 0)
        assert _statuses(conn, run_id).get("submitted") == batch["item_count"]  # written ahead, unanswered

        if then == "resolve":
            # No retry left: the run's resolve step asks. A file the bank has is answered from its reports;
            # one it never got parks its items for a person, and is not sent.
            counts = resolve_unanswered(conn, registry.connector, run_id)
            statuses = _statuses(conn, run_id)
            if stall_at == "rename":
                assert counts["resolved"] == batch["item_count"] and statuses.get("accepted") == batch["item_count"]
            else:
                assert counts["awaiting_status"] == batch["item_count"]
                assert statuses.get("awaiting_status") == batch["item_count"] and bank_env.folder("archive") == []
            return
        # Airflow retries the task: the file goes to the bank once, whichever side of the rename it died on.
        connector = bank_env.connector()
        try:
            submit_batch(conn, connector, batch)
        finally:
            connector.close()
        name = conn.execute("SELECT file_name FROM bank.files").fetchone()[0]
        assert bank_env.folder("archive") == [name]
        assert _poll(conn)["resolved"] == batch["item_count"]
        assert _statuses(conn, run_id).get("accepted") == batch["item_count"]
        assert conn.execute("SELECT count(*) FROM bank.received WHERE reason LIKE 'duplicate%'").fetchone()[0] == 0


def test_the_older_versions_both_ways(bank_env):
    bank = bank_env.start({"pain001_version": "001.001.03"}, pain002_version="001.001.03")
    with psycopg.connect(bank_env.url, autocommit=True) as conn:
        run_id, plan = _prepare(conn, bank_env.tag)
        sent = sum(o.sent for o in _submit_all(conn, bank_env, plan))
        for name in bank_env.folder("archive"):
            document = (bank.root / "archive" / name).read_bytes()
            assert b"urn:iso:std:iso:20022:tech:xsd:pain.001.001.03" in document
            assert validate(document, "001.001.03", schema_path=SHARED_XSD / "pain.001.001.03.xsd") == []
        reports = [n for n in bank_env.folder("outbox") if n.startswith("PAIN002")]
        assert reports and all(b"pain.002.001.03" in (bank.root / "outbox" / n).read_bytes() for n in reports)
        assert _poll(conn)["resolved"] == sent
        assert _statuses(conn, run_id).get("accepted") == sent
