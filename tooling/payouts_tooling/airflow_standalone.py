"""`make airflow`: Airflow's api-server, dag-processor, triggerer and scheduler on the embedded
PostgreSQL, with the provider sandbox beside it, its clock running by itself.

The UI is on http://localhost:8080 (user `admin`, password `admin` unless
AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE names another file). Each
component runs as this environment's own `airflow` (its `bin` first on the
children's PATH, whatever the caller's PATH holds), its output prefixed with its
name. A component that dies stops the command: the others are stopped and it
exits non-zero, saying which one. SIGTERM, SIGHUP or Ctrl-C stop the components,
the sandbox and the embedded PostgreSQL (when no other process uses it) within
seconds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from payouts import settings
from payouts_tooling import airflow_env

# The sandbox closes a business day every DAY_SECONDS and fetch_statements looks every
# three minutes, so a run's statements, settlements and returns arrive within minutes.
DAY_SECONDS = 120.0
FETCH_CRON = "*/3 * * * *"
# DAGs that move no money start unpaused, so statements are fetched and reconciled
# without anyone asking; payout_run stays as it is (paused when new).
UNPAUSED = ("fetch_statements", "reconcile_statements", "poll_payments")
GRACE_S = 8.0  # a component's time to stop after SIGTERM, before SIGKILL


class Stopped(Exception):
    """A signal asked the command to stop."""


class ComponentDied(Exception):
    """A component ended on its own."""


class Components:
    """The Airflow processes, each in a process group of its own (what it starts goes with it)."""

    def __init__(self, env: dict[str, str]):
        self.env = env
        self.procs: dict[str, subprocess.Popen] = {}
        self._threads: list[threading.Thread] = []

    def start(self, name: str, *args: str) -> None:
        proc = subprocess.Popen([airflow_env.airflow_bin(), *args], env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self.procs[name] = proc
        thread = threading.Thread(target=_relay, args=(name, proc), daemon=True)
        thread.start()
        self._threads.append(thread)

    def check(self) -> None:
        for name, proc in self.procs.items():
            code = proc.poll()
            if code is not None:
                raise ComponentDied(f"the {name} exited with code {code}")

    def stop(self) -> None:
        """SIGTERM to every group, up to GRACE_S for the components to end, then SIGKILL what is left."""
        for proc in self.procs.values():
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + GRACE_S
        for proc in self.procs.values():
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for proc in self.procs.values():
            _signal_group(proc, signal.SIGKILL)  # stragglers of a group whose leader ended too
            proc.wait()
        for thread in self._threads:
            thread.join(timeout=2)


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _relay(name: str, proc: subprocess.Popen) -> None:
    for line in proc.stdout:
        sys.stdout.write(f"{name:<13} | {line.decode('utf-8', 'replace').rstrip()}\n")
        sys.stdout.flush()


def _say(text: str) -> None:
    print(f"{'make airflow':<13} | {text}", flush=True)


_stopping: list[int] = []  # set once stopping has begun: later signals change nothing


def _install_signal_handlers() -> None:
    def handler(signum, _frame):
        if _stopping:  # make passes SIGTERM on, and a group kill sends it too: stop once
            return
        _stopping.append(signum)
        raise Stopped(signal.Signals(signum).name)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, handler)


def _wait(components: Components, ready, timeout: float, what: str):
    """Poll `ready()` until it returns something true, while every component stays alive."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        components.check()
        try:
            found = ready()
        except Exception:  # noqa: BLE001 - not up yet
            found = None
        if found:
            return found
        time.sleep(1.0)
    raise TimeoutError(f"{what} did not happen within {timeout:.0f} s")


def _unpause(base: str, env: dict[str, str], components: Components) -> None:
    """Unpause the DAGs that move no money, through the REST API, once they are parsed."""
    import httpx

    passwords = json.loads(Path(env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]).read_text())
    user = airflow_env.ADMIN_USER if airflow_env.ADMIN_USER in passwords else next(iter(passwords))
    token = httpx.post(f"{base}/auth/token", json={"username": user, "password": passwords[user]},
                       timeout=30).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    for dag_id in UNPAUSED:
        _wait(components, lambda d=dag_id: httpx.get(f"{base}/api/v2/dags/{d}", headers=headers,
                                                     timeout=10).status_code == 200,
              300, f"the parsing of {dag_id}")
        httpx.patch(f"{base}/api/v2/dags/{dag_id}", json={"is_paused": False}, headers=headers,
                    timeout=30).raise_for_status()


def main() -> int:
    from payouts.warehouse import connect, migrate, release_embedded, resolve_url

    _install_signal_handlers()
    sandbox = None
    components: Components | None = None
    code = 0
    try:
        url = resolve_url()
        with connect(url) as conn:
            migrate(conn)
        sandbox_url = None
        day_seconds = settings.sandbox_day_seconds() or DAY_SECONDS
        if not settings.sandbox_connection():
            from payouts_sandbox.process import start_sandbox

            sandbox = start_sandbox(settings.sandbox_state_dir(), latency_ms=settings.sandbox_latency_ms(),
                                    port=settings.sandbox_port(), day_seconds=day_seconds)
            sandbox_url = sandbox.url
        env = airflow_env.environment(url, sandbox_url)
        env.setdefault("PAYOUTS_FETCH_STATEMENTS_CRON", FETCH_CRON)
        port = env.setdefault("AIRFLOW__API__PORT", "8080")
        env.setdefault("AIRFLOW__API__WORKERS", "2")
        # The LocalExecutor starts this many workers at once (Airflow's default, 32, is a
        # server's); eight cover a run's rails side by side on a laptop.
        env.setdefault("AIRFLOW__CORE__PARALLELISM", "8")
        env.setdefault("AIRFLOW__CORE__EXECUTION_API_SERVER_URL", f"http://localhost:{port}/execution/")
        base = f"http://localhost:{port}"
        airflow_env.ensure_password_file(env)
        airflow_env.migrate_metadata(env)
        _say(f"provider sandbox: {sandbox_url} (one business day every {day_seconds:g} s)" if sandbox
             else f"provider sandbox: the connection {settings.SANDBOX_CONN_ID}")
        _say(f"warehouse: {url}")

        components = Components(env)
        components.start("api-server", "api-server")
        components.start("dag-processor", "dag-processor")
        components.start("triggerer", "triggerer")
        import httpx

        _wait(components, lambda: httpx.get(f"{base}/api/v2/monitor/health", timeout=2).status_code == 200,
              180, "the api-server's start")
        # The scheduler once the Execution API answers: tasks it starts earlier cannot report.
        components.start("scheduler", "scheduler")
        _unpause(base, env, components)
        _say(f"Airflow is ready: {base}  (user {airflow_env.ADMIN_USER}, password in"
             f" {env['AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE']}); the console: {base}/payouts/dashboard")
        _say(f"{', '.join(UNPAUSED)} are unpaused (fetch_statements runs on"
             f" '{env['PAYOUTS_FETCH_STATEMENTS_CRON']}'); payout_run runs when unpaused or triggered."
             " Stop with Ctrl-C.")
        while True:
            components.check()
            time.sleep(0.5)
    except Stopped as why:
        _say(f"{why}: stopping")
        code = 128 + getattr(signal, str(why), signal.SIGTERM).value
    except ComponentDied as died:
        _say(f"{died}; its output is above, after '{str(died).split()[1]} |'. Stopping the others.")
        code = 1
    except Exception as exc:  # noqa: BLE001 - one clear line, then stop what was started
        _say(f"cannot start: {exc}")
        code = 1
    finally:
        _stopping.append(0)  # nothing may interrupt the stopping: later signals are ignored
        if components is not None:
            components.stop()
        if sandbox is not None:
            sandbox.stop()
        stopped = release_embedded()
        _say("stopped" + (" (and the embedded PostgreSQL)" if stopped else ""))
    return code


if __name__ == "__main__":
    sys.exit(main())
