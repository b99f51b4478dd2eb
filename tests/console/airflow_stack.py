"""A real Airflow for the console tests: api-server, scheduler and dag-processor on the embedded
PostgreSQL (a fresh metadata database), the simple auth manager with users and passwords from
the environment, the provider sandbox, and a fresh warehouse."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parents[1]
USERS = {"creator": "admin", "approver": "admin", "viewer": "viewer"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Stack:
    base: str
    env: dict
    warehouse_url: str
    passwords: dict
    home: Path
    procs: list = field(default_factory=list)

    def token(self, user: str) -> str:
        r = httpx.post(f"{self.base}/auth/token", json={"username": user, "password": self.passwords[user]},
                       timeout=30)
        assert r.status_code == 201, r.text
        return r.json()["access_token"]

    def client(self, user: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token(user)}"} if user else {}
        return httpx.Client(base_url=self.base, headers=headers, timeout=60)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(self.home.glob("*.log")))


def start(tmp: Path, warehouse_url: str, sandbox_url: str, extra_env: dict | None = None) -> Stack:
    from payouts.warehouse import embedded_server_url

    port = free_port()
    metadata = embedded_server_url(f"airflow_console_{uuid.uuid4().hex[:8]}")
    home = tmp / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    passwords = {u: secrets.token_urlsafe(12) for u in USERS}
    (home / "passwords.json").write_text(json.dumps(passwords))
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ)
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        # LocalExecutor that does not fail a HITL task answered before its parking worker ended
        "AIRFLOW__CORE__EXECUTOR": "payouts.orchestration.executors.ResumeSafeLocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "8",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:{r}" for u, r in USERS.items()),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "AIRFLOW__API__BASE_URL": base,
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata.replace("postgresql://", "postgresql+psycopg://", 1),
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "600",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": os.environ.get("PAYOUTS_CONSOLE_LOG_LEVEL", "WARNING"),
        "AIRFLOW__CORE__LAZY_LOAD_PLUGINS": "False",
        "GX_ANALYTICS_ENABLED": "False",
        "PAYOUTS_WAREHOUSE_URL": warehouse_url,
        "AIRFLOW_CONN_PAYOUTS_SANDBOX": sandbox_url,
        "PYTHONPATH": os.pathsep.join([str(PROJECT / "plugins"), env.get("PYTHONPATH", "")]),
    })
    env.update(extra_env or {})
    airflow = str(PROJECT / ".venv" / "bin" / "airflow")
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
    stack = Stack(base, env, warehouse_url, passwords, home)

    def launch(name: str, *args: str) -> None:
        log = open(home / f"{name}.log", "wb")
        stack.procs.append(subprocess.Popen([airflow, *args], env=env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True))

    launch("api-server", "api-server", "--port", str(port), "--workers", "2")
    launch("dag-processor", "dag-processor")
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if httpx.get(f"{base}/api/v2/monitor/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    else:
        stop(stack)
        raise RuntimeError("the api-server did not come up:\n" + stack.logs())
    # The scheduler only once the Execution API answers: tasks it starts earlier fail to connect.
    launch("scheduler", "scheduler")
    with stack.client("creator") as client:
        while time.time() < deadline + 60:
            if client.get("/api/v2/dags/payout_run").status_code == 200:
                break
            time.sleep(1)
        else:
            stop(stack)
            raise RuntimeError("payout_run was not parsed:\n" + stack.logs())
        # The DAG starts unpaused and catchup=False creates the latest scheduled run at once:
        # let it finish (it finds nothing payable) so the tests' runs do not race it.
        def idle():
            runs = client.get("/api/v2/dags/payout_run/dagRuns").json()
            return runs["total_entries"] > 0 and all(r["state"] not in ("queued", "running")
                                                     for r in runs["dag_runs"])
        try:
            wait_for(idle, 90, what="the first scheduled run to finish")
        except AssertionError:
            stop(stack)
            raise
    return stack


def stop(stack: Stack) -> None:
    for proc in stack.procs:  # each was started in its own session: end its group
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    for proc in stack.procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    metadata = urlsplit(stack.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].replace("postgresql+psycopg://",
                                                                                  "postgresql://"))
    name = metadata.path.lstrip("/")
    with psycopg.connect(urlunsplit(metadata._replace(path="/postgres")), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def wait_for(predicate, timeout: float, interval: float = 1.0, what: str = "condition"):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; last: {last!r}")
