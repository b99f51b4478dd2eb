"""`payouts providers list` and `payouts providers check` against real sandboxes over HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from payouts_sandbox.process import free_port, start_sandbox

PROJECT = Path(__file__).resolve().parents[2]


def _payouts(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN_", "PAYOUTS_RAIL"))}
    clean.update(env, PYTHONPATH=str(PROJECT / "plugins"))
    return subprocess.run([sys.executable, "-m", "payouts_tooling.cli", *args], env=clean, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture(scope="module")
def two_sandboxes(tmp_path_factory):
    with start_sandbox(tmp_path_factory.mktemp("eu")) as eu, start_sandbox(tmp_path_factory.mktemp("us")) as us:
        yield {"AIRFLOW_CONN_PAYOUTS_SANDBOX_EU": eu.url, "AIRFLOW_CONN_PAYOUTS_SANDBOX_US": us.url,
               "PAYOUTS_RAIL_PROVIDERS": "sepa_instant=payouts_sandbox_eu,sepa_credit=payouts_sandbox_eu,"
                                         "swift=payouts_sandbox_eu,faster_payments=payouts_sandbox_us,"
                                         "ach=payouts_sandbox_us,crypto=payouts_sandbox_us"}


def test_list_prints_each_connection_the_rails_name(two_sandboxes):
    done = _payouts("providers", "list", **two_sandboxes)
    assert done.returncode == 0, done.stderr
    listed = [json.loads(line) for line in done.stdout.splitlines()]
    assert {c["conn_id"]: c["rails"] for c in listed} == {
        "payouts_sandbox_eu": ["sepa_instant", "sepa_credit", "swift"],
        "payouts_sandbox_us": ["faster_payments", "ach", "crypto"]}
    assert all(c["connector"] == "generic" and "balances" in c["capabilities"] for c in listed)


def test_check_prints_health_and_balances_per_currency(two_sandboxes):
    done = _payouts("providers", "check", "payouts_sandbox_us", **two_sandboxes)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["health"]["status"] == "ok"
    balances = {(b["rail"], b["currency"]): b["available"] for b in report["balances"]}
    assert ("faster_payments", "GBP") in balances and ("ach", "USD") in balances and ("crypto", "USDC") in balances
    assert not any(rail.startswith("sepa") for rail, _ in balances)
    assert all(isinstance(v, str) and "." in v for v in balances.values())  # decimal strings, never floats


def test_check_of_a_provider_that_cannot_be_reached_exits_2_saying_why(two_sandboxes):
    dead = f"http://127.0.0.1:{free_port()}"
    done = _payouts("providers", "check", "payouts_sandbox_eu", **{**two_sandboxes,
                                                                   "AIRFLOW_CONN_PAYOUTS_SANDBOX_EU": dead})
    assert done.returncode == 2 and done.stdout == ""
    assert "connection 'payouts_sandbox_eu' (generic) cannot be reached" in done.stderr
    assert "Traceback" not in done.stderr
    missing = _payouts("providers", "check", "payouts_nowhere")
    assert missing.returncode == 2 and "connection 'payouts_nowhere' is not defined" in missing.stderr


def test_list_names_a_broken_connection_and_exits_2(two_sandboxes):
    done = _payouts("providers", "list", **{**two_sandboxes, "AIRFLOW_CONN_PAYOUTS_SANDBOX_US":
                                            json.dumps({"conn_type": "http", "extra": {"connector": "nosuch"}})})
    assert done.returncode == 2
    broken = [json.loads(line) for line in done.stdout.splitlines() if "error" in line]
    assert [b["conn_id"] for b in broken] == ["payouts_sandbox_us"]
    assert "kind 'nosuch'" in broken[0]["error"]
