"""The quality gate tells a glitch from a verdict.

A dropped warehouse connection under the gate (tests/chaos/test_chaos_cluster.py restarts
the warehouse while the gate reads it) must be retried by Airflow; a failed gate must
stop the run at once, without retries. Here, without a cluster: the task's callable
with the flow underneath it replaced.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

pytestmark = pytest.mark.chaos

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def gate_task():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS_DIR / "payout_run.py"))
    assert bag.import_errors == {}
    return bag.dags["payout_run"].get_task("quality_gate")


def test_the_gate_is_retried_after_a_glitch(gate_task):
    assert gate_task.retries >= 1


def test_a_failed_gate_fails_the_task_without_retries(gate_task, monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException

    from payouts.orchestration import tasks

    def failed_gate(run_id: str) -> dict:
        raise tasks.GateFailed(f"run {run_id}: the data-quality gate failed")

    monkeypatch.setattr(tasks, "quality_gate", failed_gate)
    with pytest.raises(AirflowFailException, match="data-quality gate failed"):
        gate_task.python_callable("R000001")


def test_a_dropped_connection_is_left_to_the_retries(gate_task, monkeypatch):
    from payouts.orchestration import tasks

    def dropped(run_id: str) -> dict:
        raise psycopg.OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(tasks, "quality_gate", dropped)
    with pytest.raises(psycopg.OperationalError):
        gate_task.python_callable("R000001")


@pytest.mark.parametrize("task_id, flow", [("auto_approve", "auto_approve_run"),
                                            ("record_approval", "record_human_decision")])
def test_approvals_retry_a_glitch_but_not_a_refusal(task_id, flow, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk.exceptions import AirflowFailException

    from payouts.orchestration import hitl

    task = DagBag(dag_folder=str(DAGS_DIR / "payout_run.py")).dags["payout_run"].get_task(task_id)
    assert task.retries >= 1
    args = ("R000001",) if task_id == "auto_approve" else ("R000001", {})

    def refused(*_args):
        raise hitl.FourEyesError("run R000001: creator cannot approve")

    monkeypatch.setattr(hitl, flow, refused)
    with pytest.raises(AirflowFailException, match="cannot approve"):
        task.python_callable(*args)

    def dropped(*_args):
        raise psycopg.OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(hitl, flow, dropped)
    with pytest.raises(psycopg.OperationalError):
        task.python_callable(*args)
