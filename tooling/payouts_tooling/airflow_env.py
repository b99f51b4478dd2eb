"""The environment Airflow runs in when the project starts it: home, folders, metadata database.

Settings the caller already has (AIRFLOW__DATABASE__SQL_ALCHEMY_CONN for a
real deployment, say) win over these defaults.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from payouts import settings

ADMIN_USER = "admin"


def airflow_home() -> Path:
    return Path(os.environ.get("AIRFLOW_HOME", settings.data_dir() / "airflow"))


def environment(warehouse_url: str, sandbox_url: str | None = None) -> dict[str, str]:
    """A copy of os.environ with everything the Airflow processes and tasks need."""
    from payouts.warehouse import embedded_server_url

    env = dict(os.environ)
    home = airflow_home()
    home.mkdir(parents=True, exist_ok=True)
    defaults = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(settings.DAGS_DIR),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(settings.PLUGINS_DIR),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "simple_auth_manager_passwords.json"),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        # LocalExecutor without the fault that fails a HITL approval answered within
        # seconds (payouts/executors.py); `make airflow` runs on it.
        "AIRFLOW__CORE__EXECUTOR": "payouts.orchestration.executors.ResumeSafeLocalExecutor",
        "GX_ANALYTICS_ENABLED": "False",
    }
    for key, value in defaults.items():
        env.setdefault(key, value)
    if "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" not in env:
        # Airflow's metadata lives on the same embedded PostgreSQL, in its own database.
        url = embedded_server_url("airflow")
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = url.replace("postgresql://", "postgresql+psycopg://", 1)
    env["PAYOUTS_WAREHOUSE_URL"] = warehouse_url
    if sandbox_url:
        env[settings.conn_env_var(settings.SANDBOX_CONN_ID)] = sandbox_url
    # Airflow starts processes of its own as `airflow ...` found on PATH (`airflow standalone`
    # does, for every component): this environment's bin comes first, whatever the caller's PATH.
    bin_dir = str(Path(airflow_bin()).parent)
    env["PATH"] = os.pathsep.join([bin_dir] + [p for p in env.get("PATH", "").split(os.pathsep)
                                               if p and p != bin_dir])
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in [str(settings.PLUGINS_DIR), env.get("PYTHONPATH", "")] if p
    )
    return env


def airflow_bin() -> str:
    return str(Path(sys.executable).with_name("airflow"))


def migrate_metadata(env: dict[str, str]) -> None:
    """`airflow db migrate`, once per metadata database (a marker file remembers it)."""
    marker = Path(env["AIRFLOW_HOME"]) / ".migrated"
    conn = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    if marker.exists() and marker.read_text() == conn:
        return
    subprocess.run([airflow_bin(), "db", "migrate"], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    marker.write_text(conn)


def ensure_password_file(env: dict[str, str], password: str = "admin") -> None:
    path = Path(env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])
    if not path.exists():
        path.write_text('{"%s": "%s"}' % (ADMIN_USER, password))


def run_dags(steps: list[str], env: dict[str, str], conf: dict, log_path: Path,
             prepare: Callable[[], None] | None = None) -> list[dict]:
    """Run DAG runs (and `clock:N` steps) to the end, in order, in one Airflow process.

    See payouts_tooling.airflow_runner. Returns one {"step", "state", "seconds"} per step
    it reached; Airflow's own output goes to log_path. `prepare()` (the metadata
    database's migration, say) runs here while the runner loads Airflow and the
    project; the runner starts the first step once it has returned, and is
    stopped if it raises.
    """
    import json
    import tempfile

    log_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="payouts-runner-") as tmp, open(log_path, "ab") as log:
        results = Path(tmp) / "results.json"
        runner = subprocess.Popen(
            [sys.executable, "-m", "payouts_tooling.airflow_runner", "--conf", json.dumps(conf),
             "--results", str(results), "--workers", str(settings.RUN_WORKERS),
             *(["--wait-for-go"] if prepare else []), *steps],
            env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.PIPE if prepare else None,
        )
        try:
            if prepare is not None:
                prepare()
                runner.stdin.write(b"go\n")
                runner.stdin.close()
            runner.wait()
        except BaseException:
            runner.kill()
            runner.wait()
            raise
        done = json.loads(results.read_text()) if results.exists() else []
    reached = {r["step"] for r in done}
    return done + [{"step": s, "state": "not run", "seconds": 0.0} for s in steps if s not in reached]
