"""The Airflow runner on a fresh warehouse and a fresh metadata database, with a patched project.

`run_runner(script, steps, ...)` runs `python -c script` (a runner whose
project functions the test replaced, then payouts_tooling.airflow_runner.main) and
returns its exit code, its steps' states and its output; the databases go
away after the test.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from tests_support import fresh_database

PROJECT = Path(__file__).resolve().parents[2]


@dataclass
class RunnerResult:
    returncode: int
    steps: dict[str, str]
    output: str


@pytest.fixture()
def airflow_runner(tmp_path, monkeypatch):
    from payouts_tooling import airflow_env
    from payouts.warehouse import embedded_server_url

    url, drop = fresh_database("embedded")
    metadata = f"airflow_test_{uuid.uuid4().hex[:8]}"
    admin = embedded_server_url("postgres")
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", embedded_server_url(metadata).replace(
        "postgresql://", "postgresql+psycopg://", 1))

    class Runner:
        warehouse_url = url
        metadata_url = embedded_server_url(metadata)

        @staticmethod
        def run(script: str, steps: list[str], sandbox_url: str = "http://127.0.0.1:9", workers: int = 1,
                extra_env: dict[str, str] | None = None, timeout: float = 600) -> RunnerResult:
            env = airflow_env.environment(url, sandbox_url)  # port 9: nothing may reach a provider
            env.update(extra_env or {})
            airflow_env.migrate_metadata(env)
            results = tmp_path / "results.json"
            log_path = tmp_path / "airflow.log"
            with open(log_path, "wb") as log:
                proc = subprocess.run(
                    [sys.executable, "-c", script, "--conf", json.dumps({"trigger": "test"}),
                     "--results", str(results), "--workers", str(workers), *steps],
                    env=env, cwd=PROJECT, stdout=log, stderr=subprocess.STDOUT, timeout=timeout)
            done = json.loads(results.read_text()) if results.exists() else []
            return RunnerResult(proc.returncode, {r["step"]: r["state"] for r in done},
                                log_path.read_text(errors="replace"))

    try:
        yield Runner
    finally:
        drop()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{metadata}" WITH (FORCE)')
