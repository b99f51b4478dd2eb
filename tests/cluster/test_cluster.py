"""Scale out on Airflow's own engine: payout_run through the api-server, its rails on their own workers.

The compose file is checked for its shape (there is no Docker engine here);
the same shape then runs for real as processes (payouts_tooling.cluster.Cluster) on
this machine's PostgreSQL and Redis, and a run triggered through the REST API
must put every rail's submit task on the worker subscribed to that rail's queue.
"""

from __future__ import annotations

import time
from pathlib import Path

import psutil
import psycopg
import pytest
import yaml

from payouts.core import states
from payouts.core.rails import QUEUES, RAILS

PROJECT = Path(__file__).resolve().parents[2]
RUN_TIMEOUT_S = 150


# -- docker-compose.yaml: its shape ------------------------------------------------------

@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((PROJECT / "docker-compose.yaml").read_text())


def _airflow_services(compose: dict) -> dict[str, dict]:
    return {name: svc for name, svc in compose["services"].items() if name.startswith("airflow-")}


def _worker_queues(service: dict) -> list[str] | None:
    command = service.get("command")
    words = command.split() if isinstance(command, str) else list(command or [])
    if words[:1] == ["airflow"]:
        words = words[1:]
    if words[:2] != ["celery", "worker"]:
        return None
    return words[words.index("-q") + 1].split(",") if "-q" in words else []


def test_compose_has_the_distributed_shape(compose):
    services = compose["services"]
    for name in ("postgres", "redis", "sandbox", "airflow-init", "airflow-apiserver", "airflow-scheduler",
                 "airflow-dag-processor", "airflow-triggerer"):
        assert name in services, f"docker-compose.yaml has no {name} service"
    assert services["sandbox"]["command"][:3] == ["python", "-m", "payouts_sandbox"]
    assert "0.0.0.0" in services["sandbox"]["command"]
    init = [c for c in services["postgres"]["configs"] if c["target"].startswith("/docker-entrypoint-initdb.d/")]
    assert init, "postgres needs an init script that creates the metadata and warehouse databases"
    sql = compose["configs"][init[0]["source"]]["content"]
    for database in ("airflow", "warehouse"):
        assert f"CREATE DATABASE {database};" in sql
    env = compose["x-airflow-common"]["environment"]
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith("/airflow")
    assert env["PAYOUTS_WAREHOUSE_URL"].endswith("/warehouse")


def test_compose_workers_cover_every_rail_queue(compose):
    queues = {name: _worker_queues(svc) for name, svc in _airflow_services(compose).items()}
    workers = {name: q for name, q in queues.items() if q is not None}
    assert all(workers.values()), f"every worker names its queues with -q: {workers}"
    covered = {q for qs in workers.values() for q in qs}
    assert set(QUEUES) <= covered, f"queues no worker takes: {set(QUEUES) - covered}"
    assert "default" in covered, "the tasks without a rail go to the default queue"
    rail_workers = {tuple(q) for q in workers.values() if set(q) & set(QUEUES)}
    assert rail_workers == {("sepa",), ("swift", "local"), ("crypto",)}


def test_compose_services_share_one_image_and_environment(compose):
    common = compose["x-airflow-common"]
    env = common["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:6379/")
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql")
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"]
    assert env["AIRFLOW_CONN_PAYOUTS_SANDBOX"] == "http://sandbox:8765"
    assert env["PAYOUTS_WAREHOUSE_URL"].startswith("postgresql://")
    mounts = " ".join(common["volumes"])
    for folder in ("dags", "plugins", "include"):
        assert f"/{folder}:" in mounts, f"{folder}/ is not mounted"
    services = _airflow_services(compose)
    services["sandbox"] = compose["services"]["sandbox"]
    for name, svc in services.items():
        # The anchor is merged by the YAML loader: same image (or build) and the same environment,
        # but for the sandbox's path: its package lives beside the runtime, never on a worker's path.
        assert svc.get("image") == common["image"], f"{name} does not use the common image"
        for key, value in env.items():
            if name == "sandbox" and key == "PYTHONPATH":
                assert svc["environment"][key] == f"{value}:/opt/airflow/sandbox"
                continue
            assert svc["environment"].get(key) == value, f"{name} differs from the common env on {key}"
        if name != "sandbox":
            assert "sandbox" not in svc["environment"]["PYTHONPATH"]
    assert any(v.endswith("/sandbox:/opt/airflow/sandbox") for v in compose["services"]["sandbox"]["volumes"])


# -- the same shape as processes on this machine --------------------------------------------

@pytest.mark.cluster
def test_payout_run_puts_each_rail_on_its_worker(platform):
    cluster = platform["cluster"]
    step = time.perf_counter()
    cluster.wait_for_dag("payout_run")
    run_id = cluster.trigger("payout_run", {"trigger": "api"})
    state = cluster.wait_for_run("payout_run", run_id, timeout_s=RUN_TIMEOUT_S)
    platform["timings"]["payout_run"] = time.perf_counter() - step
    assert state == "success", f"payout_run ended {state}: {cluster.task_states('payout_run', run_id)}"

    worker_of_queue = {q: w.name for w in cluster.workers for q in w.queues}
    ran_on: dict[str, set[str]] = {}
    for ti in cluster.task_instances("payout_run", run_id):
        rail = ti["task_id"].removeprefix("submit_")
        if rail not in RAILS or ti["state"] != "success":
            continue
        assert ti["queue"] == RAILS[rail].queue
        assert ti["hostname"] == worker_of_queue[ti["queue"]], (
            f"{ti['task_id']}[{ti['map_index']}] on queue {ti['queue']} ran on {ti['hostname']}")
        ran_on.setdefault(ti["hostname"], set()).add(rail)
    assert {"worker-a", "worker-b"} <= set(ran_on), (
        f"submits by worker: {ran_on}; tasks: {cluster.task_states('payout_run', run_id)}")

    with psycopg.connect(platform["warehouse_url"]) as conn:
        payout_run_id = conn.execute("SELECT run_id FROM payouts.runs WHERE dag_run_id = %s",
                                     (run_id,)).fetchone()[0]
        statuses = dict(conn.execute("SELECT status, count(*) FROM payouts.payout_items WHERE run_id = %s"
                                     " GROUP BY 1", (payout_run_id,)).fetchall())
    assert statuses.get("accepted", 0) > 0, statuses
    assert set(statuses) <= states.AT_REST | {"accepted"}, statuses
    platform["payout_run_id"] = payout_run_id


@pytest.mark.cluster
def test_statements_settle_the_accepted_items(platform):
    """Two provider days later, fetch_statements and reconcile_statements settle what was accepted."""
    from payouts.providers.generic.connector import GenericHttpConnector

    if "payout_run_id" not in platform:
        pytest.skip("the payout run did not complete")
    cluster = platform["cluster"]
    step = time.perf_counter()
    GenericHttpConnector(platform["sandbox"].url).advance_clock(3)
    for dag_id in ("fetch_statements", "reconcile_statements"):
        run_id = cluster.trigger(dag_id, {"trigger": "api"})
        state = cluster.wait_for_run(dag_id, run_id, timeout_s=RUN_TIMEOUT_S)
        assert state == "success", f"{dag_id} ended {state}: {cluster.task_states(dag_id, run_id)}"
    platform["timings"]["statements"] = time.perf_counter() - step
    with psycopg.connect(platform["warehouse_url"]) as conn:
        statuses = dict(conn.execute("SELECT status, count(*) FROM payouts.payout_items WHERE run_id = %s"
                                     " GROUP BY 1", (platform["payout_run_id"],)).fetchall())
    assert statuses.get("settled", 0) > 0, statuses
    assert "accepted" not in statuses, f"accepted items left unsettled: {statuses}"


@pytest.mark.cluster
def test_stop_leaves_no_process_behind(platform):
    cluster = platform["cluster"]
    pids = cluster.leftover_pids()
    assert len(pids) >= len(cluster.processes), "the cluster's processes should be running until stop()"
    step = time.perf_counter()
    cluster.stop()
    platform["timings"]["cluster_stop"] = time.perf_counter() - step
    assert all(p.poll() is not None for p in cluster.processes.values())
    assert cluster.leftover_pids() == []
    platform["sandbox"].stop()
    assert not platform["sandbox"].alive()
    survivors = [p for p in psutil.Process().children(recursive=True) if p.status() != psutil.STATUS_ZOMBIE]
    assert survivors == [], f"child processes left: {survivors}"
    print("\ncluster timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in platform["timings"].items()))
