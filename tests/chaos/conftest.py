"""The distributed shape with its faults within reach: a warehouse on a PostgreSQL of the
test's own (so it can be restarted), a slow provider sandbox with faults on, and a Cluster
whose scheduler notices a dead worker within seconds.

The Airflow metadata database and the Celery broker are this machine's PostgreSQL and
Redis, as for tests/cluster (PAYOUTS_CLUSTER_PG_URL, PAYOUTS_CLUSTER_REDIS_URL; skipped
when unreachable unless PAYOUTS_REQUIRE_CLUSTER=1). The shared servers are never stopped.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from tests_support import require_cluster_services

PROJECT_DIR = Path(__file__).resolve().parents[2]

RECIPIENTS = 300
SEED = 11
# Faults as in the e2e test, less the statement-side ones (no statements are fetched here).
SANDBOX_FAULTS = "transient=0.05,ambiguous=0.01,reject=0.02,instant_unreachable=0.05"
# Each provider request takes this long, so a submit batch is in flight for seconds:
# long enough to kill its worker, or restart the warehouse, in the middle of it.
SANDBOX_LATENCY_MS = 1000
BATCH_ENV = {
    "PAYOUTS_BATCH_SIZE": "20",          # ~8 batches on sepa_instant, ~4 on swift: plenty to break
    "PAYOUTS_REQUEST_SIZE": "5",         # four requests per batch ...
    "PAYOUTS_SUBMIT_CONCURRENCY": "1",   # ... one after another: a batch sends for ~4 s
}
# Airflow notices a dead worker in seconds: a task instance without a heartbeat for
# HEARTBEAT_TIMEOUT_S is failed (and retried), looked for every HEARTBEAT_CHECK_S.
HEARTBEAT_TIMEOUT_S = 15
HEARTBEAT_CHECK_S = 2
CHAOS_AIRFLOW_ENV = {
    # Celery: acknowledge a task only when it ends (a killed worker's task is not lost as
    # "done"), take one message per free process (nothing waits in a worker that dies).
    "AIRFLOW__CELERY__TASK_ACKS_LATE": "True",
    "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
    # Redis redelivers an unacknowledged message only after this; it must outlast the
    # longest task, or a running task is delivered twice. (The default, 24 h, is set
    # explicitly so the broker's warning does not clutter the logs.)
    "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": "86400",
    # The safety net for a message a worker had taken but not started when it died: it
    # would stay queued until this timeout; then the scheduler queues it again.
    "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "180",
    "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "15",
}
APPROVAL_ENV = {"PAYOUTS_APPROVAL_TOTAL_EUR": "", "PAYOUTS_APPROVAL_NEW_PAYEES": ""}  # auto-approved


@pytest.fixture(scope="session")
def cluster_services() -> dict[str, str]:
    return require_cluster_services()


@pytest.fixture(scope="module")
def chaos_platform(cluster_services, request):
    """A seeded warehouse on its own PostgreSQL, a slow faulty sandbox and a started Cluster.

    Everything is stopped at teardown, failed or not; the logs are kept when a test failed.
    """
    from payouts_tooling import seed
    from payouts_tooling.cluster import Cluster, claim_redis_db, create_database, free_port
    from payouts_sandbox.process import start_sandbox
    from payouts.warehouse import connect, migrate

    from chaos_support import LocalPostgres, SandboxBook

    # Not under pytest's basetemp (a parallel session prunes old basetemps while we run).
    work = PROJECT_DIR / ".data" / "test" / f"chaos-{os.getpid()}-{int(time.time())}"
    work.mkdir(parents=True)
    failed_before = request.session.testsfailed
    timings: dict[str, float] = {}
    cleanups = []

    def cleanup() -> None:
        errors = []
        for step in reversed(cleanups):
            try:
                step()
            except Exception as exc:  # one failed step must not leave the others' processes running
                errors.append(repr(exc))
        if request.session.testsfailed == failed_before and not errors:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"\nchaos logs kept in {work}")
        assert not errors, errors

    request.addfinalizer(cleanup)
    started = time.perf_counter()
    pg = LocalPostgres(free_port()).init()
    cleanups.append(pg.destroy)

    def keep_server_log() -> None:  # the server's folder goes; its log stays with the others
        if pg.log_path.exists():
            shutil.copy(pg.log_path, work / "warehouse-postgres.log")

    cleanups.append(keep_server_log)
    pg.start()
    warehouse_url, _ = create_database(pg.url(), "payouts_chaos")  # goes with the server at teardown
    with connect(warehouse_url, autocommit=True) as conn:
        migrate(conn)
        seed.load(conn, RECIPIENTS, seed=SEED)
    timings["warehouse"] = time.perf_counter() - started

    sandbox = start_sandbox(work / "sandbox", latency_ms=SANDBOX_LATENCY_MS, faults=SANDBOX_FAULTS, seed=SEED)
    cleanups.append(sandbox.stop)
    metadata_url, drop_metadata = create_database(cluster_services["pg"], "payouts_chaos_meta")
    cleanups.append(drop_metadata)
    broker_url, release_broker = claim_redis_db(cluster_services["redis"])
    cleanups.append(release_broker)

    step = time.perf_counter()
    cluster = Cluster(work / "airflow-cluster", metadata_url, warehouse_url, sandbox.url, broker_url=broker_url,
                      heartbeat_timeout_s=HEARTBEAT_TIMEOUT_S, heartbeat_check_s=HEARTBEAT_CHECK_S,
                      extra_env={**BATCH_ENV, **CHAOS_AIRFLOW_ENV, **APPROVAL_ENV})
    cleanups.append(cluster.stop)  # runs before the databases are dropped and the server stops
    cluster.start()
    cluster.wait_for_dag("payout_run")
    timings["cluster_start"] = time.perf_counter() - step
    yield {"cluster": cluster, "sandbox": sandbox, "book": SandboxBook(sandbox.state_dir), "pg": pg,
           "warehouse_url": warehouse_url, "timings": timings, "work": work}
