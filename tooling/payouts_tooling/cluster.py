"""The distributed shape on one machine, without Docker: Airflow's own processes as subprocesses.

`Cluster` runs what docker-compose.yaml runs (api-server, scheduler,
dag-processor, triggerer, Celery workers by rail queue) on an existing
PostgreSQL and Redis, each process with its own log, all sharing one
environment (CeleryExecutor, broker, result backend, JWT secret, execution API).

    with Cluster(work_dir, metadata_url, warehouse_url, sandbox_url, broker_url=broker) as cluster:
        run_id = cluster.trigger("payout_run", {"trigger": "api"})
        cluster.wait_for_run("payout_run", run_id)

Only the standard library is imported at module level: the Task SDK imports
this module in every task process to name its worker (`worker_hostname`).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit, urlunsplit

from payouts import settings
from payouts_tooling import airflow_env
from payouts.core.rails import QUEUES

# Every process the cluster starts, and every process those start, carries
# this variable; stop() finds stragglers by it (and by nothing else).
CLUSTER_ID_VAR = "PAYOUTS_CLUSTER_ID"
WORKER_NAME_VAR = "PAYOUTS_WORKER_NAME"
# The queue of every task that names none ([operators] default_queue).
DEFAULT_QUEUE = "default"
# Two rail workers that together take every queue of payouts.core.rails, dealt in turn.
RAIL_WORKER_QUEUES: tuple[tuple[str, ...], ...] = tuple(QUEUES[i::2] for i in range(2))


def worker_hostname() -> str:
    """[core] hostname_callable: the worker's name, so task instances say which worker ran them.

    Workers of one machine share its FQDN; each Cluster worker gets its own
    name instead. Processes without a name (scheduler, api-server) keep the FQDN.
    """
    return os.environ.get(WORKER_NAME_VAR) or socket.getfqdn()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


def create_database(server_url: str, prefix: str) -> tuple[str, Callable[[], None]]:
    """Create an empty database `<prefix>_<random>` on a server; return its libpq URL and a dropper."""
    import psycopg
    from psycopg import sql

    admin = with_database(server_url.replace("postgresql+psycopg://", "postgresql://", 1), "postgres")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def drop() -> None:
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    return with_database(admin, name), drop


def claim_redis_db(redis_url: str) -> tuple[str, Callable[[], None]]:
    """Claim an empty Redis database number (15 down to 1) for a broker; return its URL and a releaser.

    The claim is a key set with NX, so two clusters never share a number; the
    releaser empties the database.
    """
    import redis

    base = redis_url.rstrip("/")
    for db in range(15, 0, -1):
        client = redis.Redis.from_url(f"{base}/{db}", socket_connect_timeout=3)
        if client.dbsize() == 0 and client.set("payouts:cluster:claim", str(os.getpid()), nx=True):
            def release(client=client) -> None:
                client.flushdb()
                client.close()

            return f"{base}/{db}", release
        client.close()
    raise RuntimeError(f"no empty Redis database left on {redis_url}")


@dataclass(frozen=True)
class Worker:
    name: str
    queues: tuple[str, ...]
    concurrency: int

    def command(self) -> list[str]:
        return [airflow_env.airflow_bin(), "celery", "worker", "-q", ",".join(self.queues),
                "--celery-hostname", f"{self.name}@%h", "--concurrency", str(self.concurrency),
                # logs are files on this machine: no log server per worker (they would share a port)
                "--skip-serve-logs", "--without-gossip", "--without-mingle"]


class Cluster:
    """Airflow's distributed shape as subprocesses: start(), stop(), or a context manager."""

    def __init__(
        self,
        work_dir: str | Path,
        metadata_url: str,
        warehouse_url: str,
        sandbox_url: str,
        broker_url: str = "redis://127.0.0.1:6379/0",
        worker_queues: list[list[str]] | None = None,
        worker_concurrency: int = 2,
        default_queue_worker: bool = True,
        heartbeat_timeout_s: int = 60,
        scheduled_runs: bool = False,
        ready_timeout_s: float = 180.0,
        password: str | None = None,
        heartbeat_check_s: float | None = None,
        extra_env: dict[str, str] | None = None,
    ):
        self.work_dir = Path(work_dir).resolve()
        self.metadata_url = metadata_url.replace("postgresql://", "postgresql+psycopg://", 1)
        self.warehouse_url = warehouse_url
        self.sandbox_url = sandbox_url
        self.broker_url = broker_url
        queues = [tuple(q) for q in (worker_queues or RAIL_WORKER_QUEUES)]
        # Rail workers are worker-a, worker-b, ...; the tasks without a rail
        # (open_run, plan, resolve...) go to the default queue and its own worker.
        self.workers = [Worker(f"worker-{chr(ord('a') + i)}", q, worker_concurrency) for i, q in enumerate(queues)]
        if default_queue_worker and not any(DEFAULT_QUEUE in w.queues for w in self.workers):
            self.workers.append(Worker("worker-default", (DEFAULT_QUEUE,), worker_concurrency))
        self.heartbeat_timeout_s = heartbeat_timeout_s
        # How often the scheduler looks for, and each task's supervisor sends, heartbeats;
        # None keeps Airflow's defaults (10 s and 5 s). Chaos tests lower it with the timeout.
        self.heartbeat_check_s = heartbeat_check_s
        self.extra_env = dict(extra_env or {})
        self.scheduled_runs = scheduled_runs
        self.ready_timeout_s = ready_timeout_s
        self.password = password or secrets.token_urlsafe(12)
        self.cluster_id = uuid.uuid4().hex
        self.api_port = free_port()
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        self.logs_dir = self.work_dir / "logs"
        self.processes: dict[str, subprocess.Popen] = {}
        self._known: dict[int, Any] = {}  # pid -> psutil.Process of every process seen in the tree
        self._token: str | None = None
        self.env = self._environment()

    # -- environment -------------------------------------------------------

    def _environment(self) -> dict[str, str]:
        """One environment for every process: what differs from the embedded default is all here."""
        home = self.work_dir / "airflow"
        result_backend = "db+" + self.metadata_url
        env = dict(os.environ)
        # A caller's own Airflow settings must not leak into the cluster (tests set some).
        for key in [k for k in env if k.startswith("AIRFLOW__") or k in ("AIRFLOW_HOME", "AIRFLOW_CONFIG")]:
            del env[key]
        env.update({
            # the same folders and defaults as airflow_env.environment
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(settings.DAGS_DIR),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(settings.PLUGINS_DIR),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.logs_dir / "tasks"),
            "GX_ANALYTICS_ENABLED": "False",
            # the distributed shape
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.metadata_url,
            "AIRFLOW__CELERY__BROKER_URL": self.broker_url,
            "AIRFLOW__CELERY__RESULT_BACKEND": result_backend,
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": DEFAULT_QUEUE,
            # Every process signs and checks the same JWTs (workers call the execution API with them).
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            "AIRFLOW__CORE__FERNET_KEY": _fernet_key(),
            "AIRFLOW__API__BASE_URL": self.api_url,
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
            "AIRFLOW__CORE__AUTH_MANAGER":
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{airflow_env.ADMIN_USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "simple_auth_manager_passwords.json"),
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "payouts_tooling.cluster.worker_hostname",
            # DAGs run when asked: unpaused, but no cron or asset runs unless scheduled_runs.
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": str(self.scheduled_runs),
            # fast parsing and scheduling; one parser process (the DAG folder is three files)
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
            "AIRFLOW__DAG_PROCESSOR__BUNDLE_REFRESH_CHECK_INTERVAL": "2",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "60",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            "AIRFLOW__DAG_PROCESSOR__PRINT_STATS_INTERVAL": "0",
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(self.heartbeat_timeout_s),
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            # the project
            "PAYOUTS_WAREHOUSE_URL": self.warehouse_url,
            settings.conn_env_var(settings.SANDBOX_CONN_ID): self.sandbox_url,
            "PAYOUTS_DATA_DIR": str(self.work_dir / "data"),
            "PAYOUTS_STATEMENTS_URL": (self.work_dir / "statements").as_uri(),
            "PYTHONPATH": os.pathsep.join(p for p in [str(settings.PLUGINS_DIR), env.get("PYTHONPATH", "")] if p),
            CLUSTER_ID_VAR: self.cluster_id,
        })
        if self.heartbeat_check_s is not None:
            env["AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL"] = str(self.heartbeat_check_s)
            env["AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL"] = str(max(1, int(self.heartbeat_check_s)))
        env.update(self.extra_env)
        return env

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> Cluster:
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        home = Path(self.env["AIRFLOW_HOME"])
        home.mkdir(parents=True, exist_ok=True)
        Path(self.env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]).write_text(
            json.dumps({airflow_env.ADMIN_USER: self.password}))
        try:
            self.migrate()
            airflow = airflow_env.airflow_bin()
            self._spawn("api-server", [airflow, "api-server", "--port", str(self.api_port), "--host", "127.0.0.1"])
            self._spawn("scheduler", [airflow, "scheduler"])
            self._spawn("dag-processor", [airflow, "dag-processor"])
            self._spawn("triggerer", [airflow, "triggerer", "--skip-serve-logs"])
            for worker in self.workers:
                self._spawn(worker.name, worker.command(), {WORKER_NAME_VAR: worker.name})
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def migrate(self) -> None:
        """`airflow db migrate`, once per metadata database (a marker in work_dir remembers it)."""
        marker = self.work_dir / ".migrated"
        if marker.exists() and marker.read_text() == self.metadata_url:
            return
        with open(self.logs_dir / "db-migrate.log", "ab") as log:
            proc = subprocess.run([airflow_env.airflow_bin(), "db", "migrate"], env=self.env,
                                  stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=300)
        if proc.returncode:
            raise RuntimeError(f"airflow db migrate failed:\n{self.log_tail('db-migrate')}")
        marker.write_text(self.metadata_url)

    def _spawn(self, name: str, cmd: list[str], extra_env: dict[str, str] | None = None) -> None:
        with open(self.logs_dir / f"{name}.log", "ab") as log:
            # Its own session, so stop() can signal the process and all it forked at once.
            self.processes[name] = subprocess.Popen(
                cmd, env={**self.env, **(extra_env or {})}, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True, cwd=self.work_dir,
            )

    # -- workers: crash and come back ------------------------------------------

    def worker(self, name: str) -> Worker:
        return next(w for w in self.workers if w.name == name)

    def worker_pids(self, name: str) -> list[int]:
        """Live processes of one worker: the Celery worker, its pool, the task supervisors and tasks."""
        return sorted(p.pid for p in self._worker_processes(name))

    def _worker_processes(self, name: str) -> list:
        """The worker's process tree, and anything else carrying its name in its environment.

        By the tree: Celery's pool processes and Airflow's task processes rename
        themselves (setproctitle), which overwrites what /proc shows of their
        environment; and a task runs in its own process group.
        """
        import psutil

        found: dict[int, Any] = {}
        process = self.processes.get(name)
        if process is not None and process.poll() is None:
            try:
                root = psutil.Process(process.pid)
                found.update({p.pid: p for p in [root, *root.children(recursive=True)]})
            except psutil.Error:
                pass
        for proc in psutil.process_iter(["pid"]):
            if proc.pid in found or proc.pid == os.getpid():
                continue
            try:
                env = proc.environ()
            except (psutil.Error, OSError):
                continue
            if env.get(CLUSTER_ID_VAR) == self.cluster_id and env.get(WORKER_NAME_VAR) == name:
                found[proc.pid] = proc
        self._remember(found.values())
        return [p for p in found.values() if _alive(p)]

    def kill_worker(self, name: str, timeout_s: float = 15.0) -> list[int]:
        """SIGKILL every process of a worker at once, as when its machine dies; return their pids.

        The whole tree is frozen first (SIGSTOP: nothing forks a new task meanwhile),
        then killed. Nothing gets to clean up: the running tasks stop heartbeating and
        their Celery messages stay unacknowledged. Returns when all of them are gone.
        """
        import psutil

        frozen: dict[int, Any] = {}
        for _ in range(10):
            new = [p for p in self._worker_processes(name) if p.pid not in frozen]
            if not new:
                break
            for proc in new:
                try:
                    proc.suspend()
                except psutil.Error:
                    pass
                frozen[proc.pid] = proc
        for proc in frozen.values():
            try:
                proc.kill()
            except psutil.Error:
                pass
        process = self.processes.get(name)
        if process is not None:
            try:
                process.wait(timeout_s)  # reap it: our child
            except subprocess.TimeoutExpired:
                pass
        _, alive = psutil.wait_procs(list(frozen.values()), timeout=timeout_s)
        if alive:
            raise RuntimeError(f"{name}: processes {[p.pid for p in alive]} survived SIGKILL for {timeout_s}s")
        return sorted(frozen)

    def restart_worker(self, name: str) -> None:
        """Start a worker again under the same name and queues (its log continues)."""
        process = self.processes.get(name)
        if process is not None and process.poll() is None:
            raise RuntimeError(f"{name} is still running (pid {process.pid})")
        worker = self.worker(name)
        self._spawn(worker.name, worker.command(), {WORKER_NAME_VAR: worker.name})

    def wait_ready(self) -> None:
        """Until the api-server answers and reports scheduler, dag-processor and triggerer healthy."""
        import httpx

        deadline = time.monotonic() + self.ready_timeout_s
        last: Any = None
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                response = httpx.get(f"{self.api_url}/api/v2/monitor/health", timeout=5)
                last = response.text
                if response.status_code == 200:
                    health = response.json()
                    parts = ("metadatabase", "scheduler", "triggerer", "dag_processor")
                    if all((health.get(p) or {}).get("status") == "healthy" for p in parts):
                        return
            except httpx.TransportError as exc:
                last = repr(exc)
            time.sleep(1)
        raise TimeoutError(f"cluster not ready after {self.ready_timeout_s}s (last health: {last})\n"
                           + self.log_tails())

    def check_alive(self) -> None:
        dead = {name: p.returncode for name, p in self.processes.items() if p.poll() is not None}
        if dead:
            raise RuntimeError(f"cluster processes exited: {dead}\n"
                               + "\n".join(self.log_tail(n) for n in dead))

    def stop(self, grace_s: float = 20.0) -> None:
        """End every process the cluster started: SIGTERM to each group, SIGKILL after grace_s, then stragglers."""
        self._remember_trees()
        for process in self.processes.values():
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for process in self.processes.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for process in self.processes.values():
            _signal_group(process, signal.SIGKILL)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                pass
        # Anything that left its group (a daemonised child) is still found by its cluster id.
        for pid in self.leftover_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while self.leftover_pids() and time.monotonic() < deadline:
            time.sleep(0.2)

    def _remember(self, procs) -> None:
        for proc in procs:
            if proc.pid not in self._known or not _alive(self._known[proc.pid]):  # a reused pid
                self._known[proc.pid] = proc

    def _remember_trees(self) -> None:
        """Note every live descendant: once its parent dies it is found by nothing else."""
        import psutil

        for process in self.processes.values():
            if process.poll() is None:
                try:
                    root = psutil.Process(process.pid)
                    self._remember([root, *root.children(recursive=True)])
                except psutil.Error:
                    pass

    def leftover_pids(self) -> list[int]:
        """Live processes (other than this one) started by this cluster.

        Found by the cluster id in their environment, and among the descendants
        noted while their parents lived (processes that rename themselves hide
        their environment).
        """
        import psutil

        self._remember_trees()
        found = [pid for pid, proc in self._known.items() if _alive(proc) and pid != os.getpid()]
        for proc in psutil.process_iter(["pid"]):
            if proc.pid == os.getpid():
                continue
            try:
                if proc.status() == psutil.STATUS_ZOMBIE:
                    continue
                if proc.pid not in found and proc.environ().get(CLUSTER_ID_VAR) == self.cluster_id:
                    found.append(proc.pid)
            except (psutil.Error, OSError):
                continue
        return sorted(found)

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- logs --------------------------------------------------------------

    def log_tail(self, name: str, chars: int = 3000) -> str:
        try:
            text = (self.logs_dir / f"{name}.log").read_text(errors="replace")
        except OSError:
            text = ""
        return f"--- {name}.log (last {chars} chars) ---\n{text[-chars:]}"

    def log_tails(self, chars: int = 2000) -> str:
        return "\n".join(self.log_tail(name, chars) for name in self.processes)

    # -- the REST API ------------------------------------------------------

    def token(self) -> str:
        """A JWT from the simple auth manager (POST /auth/token)."""
        import httpx

        if self._token is None:
            response = httpx.post(f"{self.api_url}/auth/token", timeout=30,
                                  json={"username": airflow_env.ADMIN_USER, "password": self.password})
            response.raise_for_status()
            self._token = response.json()["access_token"]
        return self._token

    def api(self, method: str, path: str, **kwargs) -> Any:
        import httpx

        response = httpx.request(method, f"{self.api_url}/api/v2{path}", timeout=30,
                                 headers={"Authorization": f"Bearer {self.token()}"}, **kwargs)
        if response.status_code >= 400:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:1000]}")
        return response.json() if response.content else None

    def wait_for_dag(self, dag_id: str, timeout_s: float = 120.0) -> dict:
        """Until the dag-processor has parsed `dag_id` into the metadata database."""
        deadline = time.monotonic() + timeout_s
        while True:
            self.check_alive()
            try:
                return self.api("GET", f"/dags/{dag_id}")
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{dag_id} not parsed after {timeout_s}s\n" + self.log_tail("dag-processor"))
            time.sleep(1)

    def trigger(self, dag_id: str, conf: dict) -> str:
        """Unpause `dag_id` and trigger a run with `conf`; return its run id."""
        self.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
        run = self.api("POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf})
        return run["dag_run_id"]

    def wait_for_run(self, dag_id: str, run_id: str, timeout_s: float = 180.0) -> str:
        """Until the run reaches success or failed; return its state."""
        deadline = time.monotonic() + timeout_s
        while True:
            state = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"]
            if state in ("success", "failed"):
                return state
            if time.monotonic() > deadline:
                raise TimeoutError(f"{dag_id} run {run_id} still {state} after {timeout_s}s: "
                                   f"{self.task_states(dag_id, run_id)}\n" + self.log_tails())
            self.check_alive()
            time.sleep(1)

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances",
                        params={"limit": 1000})["task_instances"]

    def clear_dag_run(self, dag_id: str, run_id: str) -> dict:
        """Clear every task instance of a finished run (POST .../dagRuns/{run}/clear); return the run, queued again."""
        return self.api("POST", f"/dags/{dag_id}/dagRuns/{run_id}/clear", json={"dry_run": False, "only_failed": False})

    def clear_task_instances(self, dag_id: str, run_id: str, task_ids: list[str | tuple[str, int]]) -> list[dict]:
        """Clear single task instances (a task id, or (task id, map index)) of a run; nothing downstream."""
        result = self.api("POST", f"/dags/{dag_id}/clearTaskInstances", json={
            "dry_run": False, "dag_run_id": run_id, "only_failed": False, "reset_dag_runs": True,
            "include_downstream": False, "include_upstream": False,
            "task_ids": [list(t) if isinstance(t, tuple) else t for t in task_ids],
        })
        return result.get("task_instances", [])

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        return {f"{ti['task_id']}[{ti['map_index']}]": ti["state"] for ti in self.task_instances(dag_id, run_id)}


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    if process.poll() is not None and sig == signal.SIGTERM:
        return
    try:
        os.killpg(process.pid, sig)  # the group is the process's own session (start_new_session)
    except (ProcessLookupError, PermissionError):
        pass


def _alive(proc) -> bool:
    """A psutil.Process still running (the same process: is_running() compares its start time)."""
    import psutil

    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _fernet_key() -> str:
    import base64

    return base64.urlsafe_b64encode(os.urandom(32)).decode()
