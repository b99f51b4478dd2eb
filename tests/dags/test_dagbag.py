"""DagBag integrity: every DAG imports, has an owner, known tags, retries, docs, and parses fast."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"
ALLOWED_TAGS = {"payouts", "money-movement", "reconciliation"}
KNOWN_OWNERS = {"payments-data", "finance-ops"}
PARSE_BUDGET_S = 5.0


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    started = time.perf_counter()
    bag = DagBag(dag_folder=str(DAGS_DIR))
    bag.parse_seconds = time.perf_counter() - started
    return bag


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}


def test_expected_dags_present(dagbag):
    assert {"payout_run", "fetch_statements", "reconcile_statements", "poll_payments"} <= set(dagbag.dag_ids)


def test_one_dag_per_file_named_after_it(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert Path(dag.fileloc).stem == dag_id


@pytest.mark.parametrize("dag_id", ["payout_run", "fetch_statements", "reconcile_statements", "poll_payments"])
def test_owner_tags_retries_docs(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    assert set(dag.tags) and set(dag.tags) <= ALLOWED_TAGS, dag.tags
    assert dag.doc_md and dag_id in dag.doc_md
    assert dag.catchup is False
    for task in dag.tasks:
        assert task.owner in KNOWN_OWNERS, (task.task_id, task.owner)
        assert task.retries is not None


def test_submit_tasks_one_per_rail_on_its_queue_with_retries(dagbag):
    from payouts.core.rails import RAILS

    dag = dagbag.dags["payout_run"]
    for rail in RAILS.values():
        task = dag.get_task(f"submit_{rail.name}")
        assert task.queue == rail.queue
        # Submissions carry idempotency keys, so they may and must retry.
        assert task.retries >= 1


def test_parse_time(dagbag):
    assert dagbag.parse_seconds < PARSE_BUDGET_S, f"parsing dags/ took {dagbag.parse_seconds:.2f}s"


def test_statements_flow_from_producer_to_consumer(dagbag):
    """fetch_statements updates the statements asset; reconcile_statements consumes it and never updates it."""
    from payouts.settings import STATEMENTS_ASSET_URI

    producer = dagbag.dags["fetch_statements"]
    consumer = dagbag.dags["reconcile_statements"]
    produced = {o.uri for t in producer.tasks for o in t.outlets}
    assert STATEMENTS_ASSET_URI in produced
    assert STATEMENTS_ASSET_URI in str(consumer.timetable.asset_condition)
    assert not any(getattr(o, "uri", None) == STATEMENTS_ASSET_URI for t in consumer.tasks for o in t.outlets)
