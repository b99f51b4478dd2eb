"""Run DAG runs to the end, one after another, in one Airflow process.

This is the engine behind `airflow dags test` (`Dag.test`: the DAG file is
parsed from the dags folder and synced to the metadata database, a real DAG
run is created and each task runs through Airflow's task runner), but the
three DAGs of a payout and reconciliation share one process: Airflow, polars,
Great Expectations and the project are imported once instead of once per DAG.

    python -m payouts.airflow_runner --conf '{"trigger": "cli"}' --results r.json \\
        payout_run clock:2 fetch_statements reconcile_statements

A step is a DAG id, or `clock:N` (the sandbox provider closes N business
days, at PAYOUTS_SANDBOX_URL). The environment (AIRFLOW_HOME, the metadata
database, PAYOUTS_*) is the caller's: see payouts.airflow_env.environment.
The results file gets one entry per step ({"step", "state", "seconds"}),
rewritten after each step, so a caller sees how far a failed invocation got.
Exit status: 0 when every DAG run succeeded, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

# Imported before the first DAG run so that no task pays for them.
WARM_IMPORTS = ("polars", "psycopg", "httpx", "great_expectations", "payouts.flows", "payouts.submit",
                "payouts.checks.run_checks", "payouts.checks.gate", "payouts.reconcile.run",
                "payouts.providers.http_client")


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


def run_dag(dag_id: str, conf: dict) -> str:
    """One DAG run to the end (Dag.test); its final state."""
    from airflow.sdk import timezone
    from airflow.utils.cli import get_bagged_dag

    dag = get_bagged_dag(None, dag_id)
    if dag is None:
        raise SystemExit(f"DAG {dag_id!r} could not be found or failed to parse")
    dag_run = dag.test(logical_date=timezone.utcnow(), run_conf=conf)
    return str(getattr(dag_run.state, "value", dag_run.state)) if dag_run else "failed"


def advance_clock(days: int) -> str:
    from payouts import settings
    from payouts.providers.http_client import SandboxProvider

    url = settings.sandbox_url()
    if not url:
        raise SystemExit("clock step: PAYOUTS_SANDBOX_URL is not set")
    SandboxProvider(url).advance_clock(days)
    return "success"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m payouts.airflow_runner", description=__doc__.split("\n\n")[0])
    parser.add_argument("steps", nargs="+", help="DAG ids, or clock:N")
    parser.add_argument("--conf", default="{}", help="the DAG runs' conf, as JSON")
    parser.add_argument("--results", type=Path, help="write the steps' states and times here (JSON)")
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
            state = run_dag(step, conf)
        record(step, state, started)
    return 0 if all(r["state"] == "success" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
