"""The environment the project gives Airflow's processes: its own `bin` first on PATH."""

from __future__ import annotations

import os
from pathlib import Path

from payouts_tooling import airflow_env


def test_the_environments_bin_comes_first_on_a_users_path(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", "/usr/local/bin:/usr/bin:/bin")
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "postgresql+psycopg://u@/airflow?host=/nowhere")
    env = airflow_env.environment("postgresql://u@/warehouse?host=/nowhere", "http://127.0.0.1:1")
    path = env["PATH"].split(os.pathsep)
    bin_dir = str(Path(airflow_env.airflow_bin()).parent)
    assert path == [bin_dir, "/usr/local/bin", "/usr/bin", "/bin"]
    assert Path(airflow_env.airflow_bin()).name == "airflow" and Path(airflow_env.airflow_bin()).exists()
    assert os.environ["PATH"] == "/usr/local/bin:/usr/bin:/bin"  # the caller's own is left alone


def test_a_path_that_already_holds_it_keeps_it_once(monkeypatch, tmp_path):
    bin_dir = str(Path(airflow_env.airflow_bin()).parent)
    monkeypatch.setenv("PATH", f"/usr/bin:{bin_dir}:/bin")
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "postgresql+psycopg://u@/airflow?host=/nowhere")
    env = airflow_env.environment("postgresql://u@/warehouse?host=/nowhere")
    assert env["PATH"].split(os.pathsep) == [bin_dir, "/usr/bin", "/bin"]
