"""`make airflow` the way a user starts it: from a shell whose PATH does not hold the virtual
environment, in a data folder of its own (its own embedded PostgreSQL).

Proven here: the UI and the console answer; a payout run triggered through Airflow's REST API
is paid, and then settled and reconciled by the sandbox's running clock and the scheduled
fetch_statements and reconcile_statements, with no command in between; the dashboard's
batches show their real status in Chromium; a component that dies stops the command with a
non-zero exit and a line naming it; SIGTERM to the command's process group leaves no process
it started running, the embedded PostgreSQL included.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.e2e

PROJECT = Path(__file__).resolve().parents[2]
VENV_BIN = PROJECT / ".venv" / "bin"
USER_PATH = "/usr/local/bin:/usr/bin:/bin"
CHROMIUM = Path("/usr/bin/chromium")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def user_env(data: Path, **extra: str) -> dict[str, str]:
    """A new user's environment: no virtual environment on PATH, nothing of the test's own."""
    assert str(VENV_BIN) not in USER_PATH and shutil.which("airflow", path=USER_PATH) is None
    env = {"HOME": os.environ.get("HOME", "/root"), "PATH": USER_PATH, "LANG": "C.UTF-8",
           "PAYOUTS_DATA_DIR": str(data), "PAYOUTS_SANDBOX_PORT": str(free_port())}
    env.update(extra)
    return env


def start_make_airflow(env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(["make", "-C", str(PROJECT), "airflow"], env=env, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)


def wait_for(predicate, timeout: float, what: str, proc: subprocess.Popen | None = None, log: Path | None = None):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"make airflow ended ({proc.returncode}) waiting for {what}:\n{tail(log)}")
        try:
            last = predicate()
        except httpx.HTTPError as exc:
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; last: {last!r}\n{tail(log)}")


def tail(log: Path | None, lines: int = 60) -> str:
    if log is None or not log.exists():
        return ""
    return "\n".join(line[:300] for line in log.read_text(errors="replace").splitlines()[-lines:])


def processes_of(data: Path) -> list[str]:
    """Every process whose environment or command line names the data folder."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            environ = (proc / "environ").read_bytes()
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if f"PAYOUTS_DATA_DIR={data}".encode() in environ.split(b"\0") or str(data).encode() in cmdline:
            found.append(f"{proc.name}: {cmdline.decode(errors='replace')[:200]}")
    return found


def stop_group(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 30) -> float:
    """Signal the command's process group, as a terminal or a supervisor would; seconds to its end."""
    started = time.monotonic()
    os.killpg(proc.pid, sig)
    proc.wait(timeout)
    return time.monotonic() - started


def test_make_airflow_from_a_user_shell_pays_settles_reconciles_and_stops_clean(tmp_path):
    data = tmp_path / "data"
    log = tmp_path / "make-airflow.log"
    port = free_port()
    env = user_env(data, AIRFLOW__API__PORT=str(port))
    proc = start_make_airflow(env, log)
    base = f"http://localhost:{port}"
    try:
        wait_for(lambda: "Airflow is ready" in log.read_text(errors="replace"), 400, "Airflow's start", proc, log)
        assert httpx.get(f"{base}/", timeout=30).status_code == 200  # the UI
        password = json.loads((data / "airflow" / "simple_auth_manager_passwords.json").read_text())["admin"]
        token = httpx.post(f"{base}/auth/token", json={"username": "admin", "password": password},
                           timeout=60).json()["access_token"]
        api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60)
        dashboard = api.get("/payouts/dashboard")
        assert dashboard.status_code == 200 and "<h1>Payouts</h1>" in dashboard.text  # the console
        assert not api.get("/api/v2/dags/fetch_statements").json()["is_paused"]
        assert not api.get("/api/v2/dags/reconcile_statements").json()["is_paused"]
        assert not api.get("/api/v2/dags/poll_payments").json()["is_paused"]

        # payout_run starts paused; unpaused, it runs at once for the last 06:00 it missed
        # (catchup=False): let that run find nothing, then seed the platform and trigger a run
        # through the REST API.
        assert api.get("/api/v2/dags/payout_run").json()["is_paused"]
        assert api.patch("/api/v2/dags/payout_run", json={"is_paused": False}).status_code == 200

        def idle():
            runs = api.get("/api/v2/dags/payout_run/dagRuns").json()["dag_runs"]
            return runs and all(r["state"] in ("success", "failed") for r in runs)

        wait_for(idle, 300, "the scheduled catch-up run", proc, log)
        seeded = subprocess.run([str(VENV_BIN / "payouts"), "seed", "--recipients", "40"], env=env,
                                capture_output=True, text=True, timeout=300)
        assert seeded.returncode == 0, seeded.stderr
        triggered = api.post("/api/v2/dags/payout_run/dagRuns", json={"logical_date": None,
                                                                     "conf": {"trigger": "api"}})
        assert triggered.status_code == 200, triggered.text
        dag_run_id = triggered.json()["dag_run_id"]
        started = time.monotonic()
        state = wait_for(lambda: (s := api.get(f"/api/v2/dags/payout_run/dagRuns/{dag_run_id}").json()["state"])
                         in ("success", "failed") and s, 400, "the payout run", proc, log)
        assert state == "success", tail(log)
        paid_s = time.monotonic() - started
        run = next(r for r in api.get("/payouts/api/v1/runs").json() if r["dag_run_id"] == dag_run_id)
        run_id = run["run_id"]
        paid = api.get(f"/payouts/api/v1/runs/{run_id}").json()["by_status"]
        assert paid.get("accepted", 0) + paid.get("settled", 0) >= 30, paid

        # No command from here on: the sandbox closes a business day every two minutes, and
        # fetch_statements (every three) and reconcile_statements (on its asset) settle the run.
        def settled():
            got = api.get(f"/payouts/api/v1/runs/{run_id}").json()["by_status"]
            return got if got.get("settled", 0) > 0 and got.get("accepted", 0) == 0 else None

        by_status = wait_for(settled, 600, "the run's settlement", proc, log)
        settled_s = time.monotonic() - started
        recon = api.get("/payouts/api/v1/reconciliation/summary").json()
        batches = api.get(f"/payouts/api/v1/runs/{run_id}/batches").json()
        assert {b["status"] for b in batches} == {"done"}, batches
        assert sum(b["accepted"] for b in batches) == by_status["settled"]
        assert all(b["unanswered"] == 0 for b in batches)
        print(f"\nmake airflow: paid in {paid_s:.0f} s, settled {settled_s:.0f} s after the trigger;"
              f" {by_status}; reconciliation {recon}")

        # The dashboard in Chromium: the run's batches are done, none is shown as planned.
        from playwright.sync_api import sync_playwright

        assert CHROMIUM.exists(), "Debian's chromium is needed (apt-get install chromium)"
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
            context = browser.new_context()
            context.add_cookies([{"name": "_token", "value": token, "url": base}])
            page = context.new_page()
            page.goto(f"{base}/payouts/dashboard")
            rows = page.locator("#batches tbody tr").filter(has_text=run_id)
            assert rows.count() == len(batches)
            statuses = [rows.nth(i).locator("td").nth(7).inner_text() for i in range(rows.count())]
            assert statuses == ["done"] * len(batches)
            browser.close()
    finally:
        if proc.poll() is None:
            seconds = stop_group(proc)
        else:
            seconds = 0.0
    assert seconds < 20, f"make airflow took {seconds:.1f} s to stop"
    assert "stopped (and the embedded PostgreSQL)" in log.read_text(errors="replace"), tail(log)
    time.sleep(1)
    assert processes_of(data) == []
    assert not (data / "pg" / "postmaster.pid").exists()


def test_a_component_that_dies_stops_make_airflow_with_a_clear_line(tmp_path):
    data = tmp_path / "data"
    log = tmp_path / "make-airflow.log"
    with socket.socket() as taken:  # the api-server's port is taken: it cannot start
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        env = user_env(data, AIRFLOW__API__PORT=str(taken.getsockname()[1]))
        proc = start_make_airflow(env, log)
        try:
            proc.wait(300)
        finally:
            if proc.poll() is None:
                stop_group(proc, signal.SIGKILL)
    output = log.read_text(errors="replace")
    assert proc.returncode != 0
    assert "make airflow  | the api-server exited with code" in output, tail(log)
    assert "Airflow is ready" not in output
    time.sleep(1)
    assert processes_of(data) == []
    assert not (data / "pg" / "postmaster.pid").exists()
