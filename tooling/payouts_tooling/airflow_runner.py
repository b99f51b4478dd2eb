"""Run DAG runs to the end, one after another, in one Airflow process.

This is the engine behind `airflow dags test` (`Dag.test`: the DAG file is
parsed from the dags folder and synced to the metadata database, a real DAG
run is created and each task runs through Airflow's task runner), but the
three DAGs of a payout and reconciliation share one process: Airflow, polars,
Great Expectations and the project are imported once instead of once per DAG.

    python -m payouts_tooling.airflow_runner --conf '{"trigger": "cli"}' --results r.json \\
        payout_run clock:2 fetch_statements reconcile_statements

A step is a DAG id, or `clock:N` (every sandbox among the rails' provider
connections closes N business days). The environment (AIRFLOW_HOME, the metadata
database, PAYOUTS_*) is the caller's: see payouts_tooling.airflow_env.environment.
Tasks that are ready at the same time (the mapped submit batches of every
rail, say) run side by side, `--workers` at a time (PAYOUTS_RUN_WORKERS, the
CPU count by default), as a deployment's Celery workers run them: each task
instance runs in a child process forked from this warm one, through the same
task runner, and the DAG run's loop hands out the next ready task when one
ends.

The results file gets one entry per step ({"step", "state", "seconds"}),
rewritten after each step, so a caller sees how far a failed invocation got.
Exit status: 0 when every DAG run succeeded, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
import traceback
from pathlib import Path

# Imported before the first DAG run so that no task pays for them.
WARM_IMPORTS = ("polars", "psycopg", "httpx", "great_expectations", "payouts.orchestration.tasks", "payouts.payout_run.submit",
                "payouts.checks.run_checks", "payouts.checks.gate", "payouts.reconcile.run",
                "payouts.providers.generic.connector")


def warm_up() -> None:
    import importlib

    for name in WARM_IMPORTS:
        importlib.import_module(name)
    # The Execution API that Dag.test's tasks talk to in-process is built on first
    # use (a FastAPI app): build it now, so that the first task does not pay for it.
    try:
        from airflow.sdk.execution_time.supervisor import in_process_api_server
    except ImportError:  # another Airflow layout: the first task builds it
        return
    api = in_process_api_server()
    api.app  # noqa: B018 (built on access)
    # The app builds its versioned routes on the first request it serves (about 5 s):
    # serve one now. Any path will do; the answer does not matter.
    import httpx

    with httpx.Client(transport=api.transport, base_url="http://in-process.invalid/") as client:
        client.get("execution/health")


class ForkedTasks:
    """Dag.test's task runs, each in a child forked from this process, `workers` at once.

    Dag.test's loop calls this for every task instance it finds scheduled,
    one after another. The task instance is marked queued (so the next pass
    does not pick it again) and a child runs it through Airflow's own
    `_run_task`, as Dag.test would have run it here. The call returns at once
    while other task instances are waiting to start; the last one waits for
    the children to end, so that the loop's next pass finds the work that
    followed (instead of finding nothing to start and sleeping a second).

    This process runs no task itself, so no library here starts the threads
    (polars' pool, say) that a forked child could not use. A child that dies
    without finishing its task instance (killed, or crashed) leaves it failed.
    """

    def __init__(self, workers: int, run_task) -> None:
        self.workers = max(1, workers)
        self.run_task = run_task
        self.children: dict[int, object] = {}  # pid -> the task instance it runs

    def __call__(self, *, ti, task, run_triggerer: bool = False):
        from airflow.utils.state import TaskInstanceState

        self.reap(block=False)
        while len(self.children) >= self.workers:
            self.reap(block=True)
        ti.set_state(TaskInstanceState.QUEUED)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child: run the task instance, then leave without cleaning up the parent's state
            code = 1
            try:
                from airflow import settings

                settings.Session.registry.clear()  # the parent's session (and its connection) stay the parent's
                _own_execution_api()
                self.run_task(ti=ti, task=task, run_triggerer=run_triggerer)
                code = 0
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        self.children[pid] = ti
        if not self._waiting(ti):
            self.drain()
        return None

    @staticmethod
    def _waiting(ti) -> bool:
        """Whether other task instances of this DAG run are scheduled and not started yet."""
        from airflow.models.taskinstance import TaskInstance
        from airflow.utils.session import create_session
        from airflow.utils.state import TaskInstanceState
        from sqlalchemy import func, select

        with create_session() as session:
            return bool(session.scalar(select(func.count()).select_from(TaskInstance).where(
                TaskInstance.dag_id == ti.dag_id, TaskInstance.run_id == ti.run_id,
                TaskInstance.state == TaskInstanceState.SCHEDULED)))

    def reap(self, *, block: bool) -> None:
        """Collect ended children (one at least when `block`); fail what a dead child left running."""
        from airflow.utils.state import TaskInstanceState, State

        while self.children:
            pid, status = os.waitpid(-1, 0 if block else os.WNOHANG)
            if pid == 0:
                return
            ti = self.children.pop(pid, None)
            if ti is not None and os.waitstatus_to_exitcode(status) != 0:
                ti.refresh_from_db()
                if ti.state not in State.finished:
                    print(f"[payouts runner] the process running {ti.task_id} (map index {ti.map_index})"
                          f" ended with status {os.waitstatus_to_exitcode(status)}: marked failed", flush=True)
                    ti.set_state(TaskInstanceState.FAILED)
            block = False

    def drain(self) -> None:
        while self.children:
            self.reap(block=True)


def _own_execution_api() -> None:
    """In a forked child: the in-process Execution API on a loop thread of the child's own.

    The parent's (built by warm_up, kept by Airflow in a one-entry cache) serves
    its requests on an event-loop thread that a forked child does not have; the
    child keeps the parent's app, with its routes built, and starts its own loop.
    """
    from airflow.api_fastapi.execution_api.app import InProcessExecutionAPI
    from airflow.sdk.execution_time import supervisor

    own = InProcessExecutionAPI(supervisor.in_process_api_server().app)  # its one field: the app
    supervisor.in_process_api_server = lambda: own


@contextlib.contextmanager
def forked_tasks(workers: int):
    """Dag.test runs its ready task instances in forked children, `workers` at once, inside the block."""
    from airflow.sdk.definitions import dag as dag_module

    inline = dag_module._run_task
    forked = ForkedTasks(workers, inline)
    dag_module._run_task = forked
    try:
        yield forked
    finally:
        forked.drain()
        dag_module._run_task = inline


def run_dag(dag_id: str, conf: dict, workers: int = 1) -> str:
    """One DAG run to the end (Dag.test); its final state. With workers > 1, see ForkedTasks."""
    from airflow.sdk import timezone
    from airflow.utils.cli import get_bagged_dag

    dag = get_bagged_dag(None, dag_id)
    if dag is None:
        raise SystemExit(f"DAG {dag_id!r} could not be found or failed to parse")
    with forked_tasks(workers) if workers > 1 else contextlib.nullcontext():
        dag_run = dag.test(logical_date=timezone.utcnow(), run_conf=conf)
    return str(getattr(dag_run.state, "value", dag_run.state)) if dag_run else "failed"


def advance_clock(days: int) -> str:
    """Let `days` business days pass at every sandbox the rails' connections name.

    A generic connection that is not a sandbox has no clock (404): it is left alone.
    """
    from payouts.providers import registry
    from payouts.providers.contract import ProviderRequestRejected
    from payouts.providers.generic.connector import GenericHttpConnector

    advanced = 0
    for conn_id in registry.check_rail_providers():
        connector = registry.connector(conn_id)
        try:
            if isinstance(connector, GenericHttpConnector):
                try:
                    connector.advance_clock(days)
                    advanced += 1
                except ProviderRequestRejected as exc:
                    if exc.status_code != 404:
                        raise
        finally:
            connector.close()
    if not advanced:
        raise SystemExit("clock step: no provider connection of the rails is a sandbox")
    return "success"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m payouts_tooling.airflow_runner", description=__doc__.split("\n\n")[0])
    parser.add_argument("steps", nargs="+", help="DAG ids, or clock:N")
    parser.add_argument("--conf", default="{}", help="the DAG runs' conf, as JSON")
    parser.add_argument("--results", type=Path, help="write the steps' states and times here (JSON)")
    parser.add_argument("--workers", type=int, default=1,
                        help="task instances run side by side, each in a forked process (1: one after another,"
                             " in this process)")
    parser.add_argument("--wait-for-go", action="store_true",
                        help="after loading, wait for the line 'go' on stdin before the first step"
                             " (the caller prepares the metadata database meanwhile)")
    args = parser.parse_args(argv)
    try:
        conf = json.loads(args.conf)
    except ValueError as exc:
        parser.error(f"--conf is not valid JSON: {exc}")

    results: list[dict] = []

    def record(step: str, state: str, started: float) -> None:
        results.append({"step": step, "state": state, "seconds": round(time.perf_counter() - started, 3)})
        if args.results:
            args.results.write_text(json.dumps(results, indent=1))

    started = time.perf_counter()
    warm_up()
    record("warm_up", "success", started)
    if args.wait_for_go:
        started = time.perf_counter()
        if sys.stdin.readline().strip() != "go":
            record("wait_for_go", "failed", started)
            return 1  # the caller's preparation failed: run nothing
        record("wait_for_go", "success", started)
    for step in args.steps:
        started = time.perf_counter()
        if step.startswith("clock:"):
            state = advance_clock(int(step.split(":", 1)[1]))
        else:
            state = run_dag(step, conf, args.workers)
        record(step, state, started)
    return 0 if all(r["state"] == "success" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
