"""The distributed shape on this machine's PostgreSQL and Redis: services, a seeded platform, a Cluster.

PAYOUTS_CLUSTER_PG_URL (default: the server named by PAYOUTS_WAREHOUSE_URL, else
postgresql://postgres@127.0.0.1:5432/postgres) and PAYOUTS_CLUSTER_REDIS_URL
(default redis://127.0.0.1:6379) name the services. When one is unreachable the
cluster tests skip, unless PAYOUTS_REQUIRE_CLUSTER=1, when they fail.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from tests_support import require_cluster_services

RECIPIENTS = 300
PROJECT_DIR = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def cluster_services() -> dict[str, str]:
    return require_cluster_services()


@pytest.fixture(scope="module")
def platform(cluster_services, request):
    """A seeded warehouse, the provider sandbox and a started Cluster; everything ends at teardown."""
    from payouts_tooling import seed
    from payouts_tooling.cluster import Cluster, claim_redis_db, create_database
    from payouts_sandbox.process import start_sandbox
    from payouts.warehouse import connect, migrate

    # Not under pytest's basetemp: a parallel pytest session prunes old basetemps, and would
    # delete this folder (Airflow's home, the statements) while the cluster runs.
    work = PROJECT_DIR / ".data" / "test" / f"cluster-{os.getpid()}-{int(time.time())}"
    work.mkdir(parents=True)
    failed_before = request.session.testsfailed
    timings: dict[str, float] = {}
    cleanups = []

    def cleanup() -> None:
        for step in reversed(cleanups):
            step()
        if request.session.testsfailed == failed_before:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"\ncluster logs kept in {work / 'airflow-cluster' / 'logs'}")

    request.addfinalizer(cleanup)
    started = time.perf_counter()
    warehouse_url, drop_warehouse = create_database(cluster_services["pg"], "payouts_test")
    cleanups.append(drop_warehouse)
    with connect(warehouse_url, autocommit=True) as conn:
        migrate(conn)
        seed.load(conn, RECIPIENTS, seed=11)
    timings["seed"] = time.perf_counter() - started

    sandbox = start_sandbox(work / "sandbox", seed=11)
    cleanups.append(sandbox.stop)
    metadata_url, drop_metadata = create_database(cluster_services["pg"], "payouts_cluster")
    cleanups.append(drop_metadata)
    broker_url, release_broker = claim_redis_db(cluster_services["redis"])
    cleanups.append(release_broker)

    step = time.perf_counter()
    cluster = Cluster(work / "airflow-cluster", metadata_url, warehouse_url, sandbox.url, broker_url=broker_url)
    cleanups.append(cluster.stop)  # runs before the databases are dropped
    cluster.start()
    timings["cluster_start"] = time.perf_counter() - step
    yield {"cluster": cluster, "sandbox": sandbox, "warehouse_url": warehouse_url, "timings": timings}
