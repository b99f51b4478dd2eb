"""`payouts run --provider bank` end to end through Airflow: every bank rail paid by pain.001 files
over SFTP to the sandbox bank, its pain.002 polled, its camt.053 reconciled.

Run 1 has no faults: reconciled with no breaks, every item at rest. Run 2 pays the next period's
earnings with the bank's fault knobs on (file and partial rejections, late and lost status reports,
payment rejections, connections dropped mid-upload): every item at rest or parked with a reason. Across both, no EndToEndId is
executed by the bank twice, and every file sent is valid against the official XSD.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from lxml import etree

from payouts.iso20022.pain001 import validate
from tests_support import fresh_database, items_not_at_rest, ledger_problems, parked_without_reason

pytestmark = [pytest.mark.e2e, pytest.mark.chaos]

PROJECT = Path(__file__).resolve().parents[2]
SHARED_XSD = PROJECT.parent / "shared" / "data" / "xsd"
RECIPIENTS = 80
FAULTS = "file_reject=0.15,partial_reject=0.3,pain002_late=0.2,pain002_missing=0.15,upload_drop=0.2,reject=0.03"


@pytest.fixture(scope="module")
def bank_runs(tmp_path_factory):
    url, drop = fresh_database("embedded")
    work = tmp_path_factory.mktemp("bank-e2e")
    env = dict(os.environ, PAYOUTS_WAREHOUSE_URL=url, PAYOUTS_SANDBOX_DIR=str(work / "sandbox"),
               PAYOUTS_STATEMENTS_URL=(work / "statements").as_uri(), PYTHONPATH=str(PROJECT / "plugins"),
               PAYOUTS_BANK_STATUS_WAIT_S="2", PAYOUTS_BANK_LATE_S="0.5")
    for var in ("AIRFLOW_CONN_PAYOUTS_SANDBOX", "AIRFLOW_CONN_PAYOUTS_BANK", "PAYOUTS_RAIL_PROVIDERS"):
        env.pop(var, None)
    tomorrow = (dt.date.today() + dt.timedelta(days=1)).isoformat()
    runs = []
    try:
        for n, extra in ((1, []), (2, ["--faults", FAULTS, "--period", tomorrow])):
            proc = subprocess.run(
                [sys.executable, "-m", "payouts_tooling.cli", "run", "--provider", "bank", "--recipients", str(RECIPIENTS),
                 "--days", "1", "--summary", str(work / f"summary{n}.json"), "--out", str(work / f"out{n}"), *extra],
                env=env, cwd=PROJECT, capture_output=True, text=True, timeout=900)
            assert proc.returncode == 0, f"payouts run #{n} failed:\n{proc.stdout}\n{proc.stderr[-4000:]}"
            runs.append(json.loads((work / f"summary{n}.json").read_text()))
        yield url, runs, work
    finally:
        drop()


def test_the_first_run_is_paid_through_the_bank_and_reconciled_with_no_breaks(bank_runs):
    url, (first, _), work = bank_runs
    by_provider = first["items"]["by_provider"]
    assert set(by_provider) == {"payouts_bank", "payouts_sandbox"}
    assert set(by_provider["payouts_bank"]) == {"settled"}, by_provider
    assert first["reconciliation"]["breaks"] == {} and first["reconciliation"]["matched"] > 0
    assert "submitted" not in first["items"]["by_status"]
    assert first["dag_runs"] == {"payout_run": "success", "fetch_statements": "success",
                                 "reconcile_statements": "success"}


def test_every_item_is_at_rest_or_parked_with_a_reason_and_the_ledger_balances(bank_runs):
    url, (_, second), _ = bank_runs
    assert second["items"]["total"] > 0
    with psycopg.connect(url) as conn:
        assert items_not_at_rest(conn) == {}
        assert parked_without_reason(conn) == 0
        assert ledger_problems(conn) == []
        reasons = dict(conn.execute(
            "SELECT r ->> 'code', count(*) FROM payouts.payout_items, jsonb_array_elements(reasons) r"
            " WHERE status = 'awaiting_status' GROUP BY 1").fetchall())
    assert set(reasons) <= {"NO_STATUS_REPORT", "FILE_UNCONFIRMED", "FILE_NAME_TAKEN"}


def test_the_bank_executed_no_end_to_end_id_twice(bank_runs):
    url, _, work = bank_runs
    archive = work / "sandbox" / "bank" / "sftp" / "archive"
    executed: dict[str, str] = {}
    seen_msg_ids: set[str] = set()
    files = sorted(archive.iterdir(), key=lambda p: p.stat().st_mtime)
    assert files
    for path in files:
        doc = etree.fromstring(path.read_bytes())
        msg_id = doc.findtext("{*}CstmrCdtTrfInitn/{*}GrpHdr/{*}MsgId")
        if msg_id in seen_msg_ids:
            continue  # refused by the bank as a duplicate MsgId (DU01): nothing executed
        seen_msg_ids.add(msg_id)
        for e2e in doc.iterfind(".//{*}CdtTrfTxInf/{*}PmtId/{*}EndToEndId"):
            assert e2e.text not in executed, f"{e2e.text} in {executed.get(e2e.text)} and {path.name}"
            executed[e2e.text] = path.name
    with psycopg.connect(url) as conn:
        sent = conn.execute("SELECT count(*) FROM bank.file_items").fetchone()[0]
    assert len(executed) == sent


def test_every_file_sent_is_valid_and_copied_with_what_came_back(bank_runs):
    url, runs, work = bank_runs
    sent = sorted((work / "out2" / "bank" / "sent").iterdir())
    received = sorted((work / "out2" / "bank" / "received").iterdir())
    assert runs[1]["files_exchanged"] == {"sent": len(sent), "received": len(received)}
    assert any(p.name.startswith("CAMT053") for p in received) and any(p.name.startswith("PAIN002") for p in received)
    for path in sent:
        assert validate(path.read_bytes(), "001.001.09", schema_path=SHARED_XSD / "pain.001.001.09.xsd") == []
    for path in received:
        if path.name.startswith("PAIN002"):
            assert validate(path.read_bytes(), "", schema_path=SHARED_XSD / "pain.002.001.10.xsd") == []
