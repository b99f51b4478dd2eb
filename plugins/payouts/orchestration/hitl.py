"""The approval steps of the payout_run DAG: the branch, the audited auto-approval, and a
person's answer through Airflow's Human-in-the-loop ApprovalOperator with four eyes.

The rules (thresholds, who may approve, what is recorded) are payouts.payout_run.approval;
this module is what the DAG calls and nothing else.
"""

from __future__ import annotations

import psycopg
from airflow.providers.standard.operators.hitl import ApprovalOperator

from payouts.payout_run.approval import (
    ApprovalConfig,
    FourEyesError,
    approval_body,
    approvers_for,
    auto_approve,
    creator,
    needs_approval,
    record_human_approval,
    record_rejection,
    set_creator,
)

HUMAN_TASK_ID = "human_approval"
AUTO_TASK_ID = "auto_approve"


def _connect() -> psycopg.Connection:
    from payouts.warehouse import resolve_url

    return psycopg.connect(resolve_url(), autocommit=True)


def route(run_id: str, triggering_user: str | None = None) -> str:
    """The branch of the approval step: AUTO_TASK_ID or HUMAN_TASK_ID."""
    with _connect() as conn:
        set_creator(conn, run_id, triggering_user)
        needed, _why = needs_approval(conn, run_id)
    return HUMAN_TASK_ID if needed else AUTO_TASK_ID


def auto_approve_run(run_id: str) -> int:
    from payouts.payout_run import stages as payout_run
    from payouts.warehouse import resolve_url

    with _connect() as conn:
        needed, why = needs_approval(conn, run_id)
        if needed:  # the run changed since the branch: never auto-release over a threshold
            raise FourEyesError(f"run {run_id} needs a person: {why}")
        with payout_run.stage(resolve_url(), run_id, "approval"):
            return auto_approve(conn, run_id, why)


def record_human_decision(run_id: str, response: dict | None) -> int:
    """The task after the ApprovalOperator: it only runs on Approve (Reject skips it)."""
    response = response or {}
    chosen = response.get("chosen_options") or []
    if chosen != ["Approve"]:
        raise FourEyesError(f"run {run_id}: the answer was {chosen}, not Approve")
    user = response.get("responded_by_user") or {}
    responder = user.get("id") or user.get("name")
    with _connect() as conn:
        body = approval_body(conn, run_id)
        return record_human_approval(conn, run_id, responder, str(response.get("responded_at")), body)


class FourEyesApprovalOperator(ApprovalOperator):
    """An ApprovalOperator whose approvers are the configured ones minus the run's creator.

    The body is written when the task runs (totals per rail and currency, held
    items, the largest payouts); a rejection or a timeout is recorded in
    payouts.approvals and, with ignore_downstream_trigger_rules, stops
    everything downstream. A timeout takes the default answer, Reject: it never
    releases money.

    Airflow 3.3's LocalExecutor fails this task when the answer comes before
    the worker that parked it has ended (both workers share one try); the
    CeleryExecutor does not. payouts.orchestration.executors.ResumeSafeLocalExecutor is a
    LocalExecutor without that fault (`make airflow` and the console tests use it).
    """

    def __init__(self, **kwargs):
        config = ApprovalConfig.from_env()
        kwargs.setdefault("task_id", HUMAN_TASK_ID)
        kwargs.setdefault("subject", "Approve payout run")
        kwargs.setdefault("defaults", "Reject")   # a timeout never releases money
        kwargs.setdefault("response_timeout", config.timeout)
        kwargs.setdefault("ignore_downstream_trigger_rules", True)  # Reject stops everything downstream
        kwargs.setdefault("retries", 0)
        if config.approvers:
            kwargs.setdefault("assigned_users", [{"id": a, "name": a} for a in config.approvers])
        super().__init__(**kwargs)

    def execute(self, context):
        run_id = context["ti"].xcom_pull(task_ids="open_run")
        config = ApprovalConfig.from_env()
        with _connect() as conn:
            made_by = creator(conn, run_id) or context["dag_run"].triggering_user_name
            _needed, why = needs_approval(conn, run_id, config)
            self.body = approval_body(conn, run_id, why)
        self.subject = f"Approve payout run {run_id}"
        if config.approvers:
            allowed = approvers_for(config, made_by)
            if not allowed:
                raise FourEyesError(f"run {run_id}: no approver other than its creator {made_by}")
            self.assigned_users = [{"id": a, "name": a} for a in allowed]
        return super().execute(context)

    def execute_complete(self, context, event):
        result = super().execute_complete(context, event)
        if result["chosen_options"] != [self.APPROVE]:
            run_id = context["ti"].xcom_pull(task_ids="open_run")
            user = result.get("responded_by_user") or {}
            with _connect() as conn:
                record_rejection(conn, run_id, user.get("id") if user else None,
                                 str(result.get("responded_at")), approval_body(conn, run_id))
        return result
