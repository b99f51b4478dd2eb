"""A payout_run whose task failed ends failed in Airflow, with the summary still written.

`finish` runs whatever happened upstream (all_done), so the run's state comes from the
`any_task_failed` leaf. Here the quality gate refuses the run (a verdict, no retry): no
money moves, finish records the run, and the DAG run is failed, not green.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest

from tests_support import fresh_database

pytestmark = pytest.mark.e2e

PROJECT = Path(__file__).resolve().parents[2]

# The runner with the gate's verdict replaced by a refusal (Dag.test runs tasks in this process).
RUNNER = """
import sys
from payouts import flows

def refused(run_id):
    raise flows.GateFailed(f"run {run_id}: the data-quality gate failed (test)")

flows.quality_gate = refused
from payouts.airflow_runner import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_failed_gate_fails_the_dag_run_and_finish_still_records_it(tmp_path, monkeypatch):
    from payouts import airflow_env, seed
    from payouts.warehouse import connect, embedded_server_url

    url, drop = fresh_database("embedded")
    metadata = f"airflow_test_{uuid.uuid4().hex[:8]}"
    admin = embedded_server_url("postgres")
    try:
        with connect(url, autocommit=True) as conn:
            seed.load(conn, 30, seed=3)
        monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
        monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", embedded_server_url(metadata).replace(
            "postgresql://", "postgresql+psycopg://", 1))
        env = airflow_env.environment(url, "http://127.0.0.1:9")  # no provider: nothing may reach one
        airflow_log = tmp_path / "airflow.log"
        airflow_env.migrate_metadata(env)
        results = tmp_path / "results.json"
        with open(airflow_log, "wb") as log:
            proc = subprocess.run(
                [sys.executable, "-c", RUNNER, "--conf", json.dumps({"trigger": "test"}),
                 "--results", str(results), "payout_run"],
                env=env, cwd=PROJECT, stdout=log, stderr=subprocess.STDOUT, timeout=600)
        steps = {r["step"]: r["state"] for r in json.loads(results.read_text())}
        assert steps["payout_run"] == "failed", airflow_log.read_text()[-3000:]
        assert proc.returncode == 1
        with connect(url) as conn:
            summary, = conn.execute("SELECT summary FROM payouts.runs WHERE conf ->> 'trigger' = 'test'").fetchone()
            attempts, = conn.execute("SELECT count(*) FROM payouts.attempts").fetchone()
            moved, = conn.execute("SELECT count(*) FROM payouts.payout_items WHERE status <> 'snapshotted'").fetchone()
        assert summary is not None, "finish did not run"
        assert attempts == 0 and moved == 0, "a refused run moved items or sent payments"
    finally:
        drop()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{metadata}" WITH (FORCE)')
