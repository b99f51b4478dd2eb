"""`payouts run` prepares Airflow's metadata database while the runner loads Airflow."""

from __future__ import annotations

import json
import subprocess
import sys

import psutil
import pytest

from payouts_tooling import airflow_env


def _runners() -> set[int]:
    return {p.pid for p in psutil.process_iter(["cmdline"])
            if "payouts_tooling.airflow_runner" in " ".join(p.info["cmdline"] or [])}


def test_a_failed_preparation_stops_the_runner_before_any_step(tmp_path):
    before = _runners()
    env = airflow_env.environment("postgresql://127.0.0.1:9/nowhere", "http://127.0.0.1:9")
    env["AIRFLOW_HOME"] = str(tmp_path / "airflow")
    prepared = []

    def prepare() -> None:
        prepared.append(True)
        raise RuntimeError("metadata database unreachable (test)")

    with pytest.raises(RuntimeError, match="unreachable"):
        airflow_env.run_dags(["payout_run"], env, {}, tmp_path / "runner.log", prepare=prepare)
    assert prepared == [True]
    assert _runners() - before == set()  # the runner was stopped, not left waiting


def test_the_runner_starts_only_on_go(tmp_path):
    """Without 'go' on stdin (the caller gave up), the runner runs no step and fails."""
    env = airflow_env.environment("postgresql://127.0.0.1:9/nowhere", "http://127.0.0.1:9")
    env["AIRFLOW_HOME"] = str(tmp_path / "airflow")
    results = tmp_path / "results.json"
    done = subprocess.run([sys.executable, "-m", "payouts_tooling.airflow_runner", "--results", str(results),
                           "--wait-for-go", "payout_run"], env=env, input=b"stop\n",
                          capture_output=True, timeout=300)
    assert done.returncode == 1
    assert [(r["step"], r["state"]) for r in json.loads(results.read_text())] == [
        ("warm_up", "success"), ("wait_for_go", "failed")]
