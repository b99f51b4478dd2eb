"""
### payout_run

Pays what the platform owes: snapshot the payable balances into a run, check
them, route every item to a rail and submit it exactly once.

- **Owner:** payments-data. Finance reviews held items and approvals.
- **Schedule:** daily at 06:00 UTC, before the SEPA and ACH morning cut-offs;
  also triggered by hand or API with `conf` (`{"trigger": "api"}`).
- **Reads:** `ledger.postings` (payable balances), `payouts.recipients`.
- **Writes:** `payouts.runs`, `payouts.payout_items`, `payouts.attempts`,
  `payouts.batches`, ledger postings (reserve, send, release); the asset
  `payouts://warehouse/payouts/payout_items`.
- **Stages:** open_run → snapshot (reserves the money) → quality_gate (Great
  Expectations in PostgreSQL; a failure stops the run) → check_items →
  approval_route → auto_approve (below the thresholds, audited) or
  human_approval (Airflow HITL; Reject or a timeout stops the run) →
  record_approval → approve → plan (FX quotes, rail and batches) → batches_<rail> → one mapped `submit_<rail>` task per
  rail on its own Celery queue → plan_fallback → `submit_fallback_<rail>` (the
  second wave, for rail-level rejections) → resolve (asks the provider about anything
  without an answer) → finish (summary); any_task_failed, a leaf after every
  task, fails the DAG run when any task failed (finish runs regardless).
- **Re-running safely:** every task is idempotent. A cleared or retried task
  finds its work done, or resends under the same idempotency keys, and the
  provider executes nothing twice. Submissions carry idempotency keys, so
  the submit tasks keep `retries`.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Asset, dag, get_current_context, task

from payouts.orchestration.hitl import FourEyesApprovalOperator
from payouts.core.rails import FALLBACK_RAILS, RAILS
from payouts.settings import PAYOUT_ITEMS_ASSET_URI

payout_items_asset = Asset(PAYOUT_ITEMS_ASSET_URI)


@dag(
    dag_id="payout_run",
    schedule="0 6 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # runs reserve money in turn; the snapshot also takes a lock
    tags=["payouts", "money-movement"],
    default_args={"owner": "payments-data", "retries": 2, "retry_delay": timedelta(seconds=30)},
    doc_md=__doc__,
)
def payout_run():
    @task
    def open_run() -> str:
        from payouts.orchestration import tasks

        context = get_current_context()
        conf = dict(context["dag_run"].conf or {})
        return tasks.open_run(context["run_id"], conf.get("trigger", "schedule"), conf)

    @task
    def snapshot(payout_run_id: str) -> int:
        from payouts.orchestration import tasks

        return tasks.snapshot(payout_run_id)

    # A failed gate is a verdict: AirflowFailException ends the task without a retry. A
    # dropped warehouse connection is a glitch: retried (the gate only reads and records).
    @task(retries=2)
    def quality_gate(payout_run_id: str) -> dict:
        from payouts.orchestration import tasks

        return tasks.refusal_is_final(tasks.quality_gate, payout_run_id, refusals=tasks.GateFailed)

    @task
    def check_items(payout_run_id: str) -> dict:
        from payouts.orchestration import tasks

        return tasks.check_items(payout_run_id)

    # Approval: below the thresholds (payouts.payout_run.approval, from the environment) the run is
    # auto-approved and audited; above them a person answers an Airflow HITL request
    # (payouts.orchestration.hitl.FourEyesApprovalOperator). Reject, or a timeout (default Reject), skips
    # everything downstream: no money moves.
    @task.branch
    def approval_route(payout_run_id: str) -> str:
        from payouts.orchestration import hitl

        return hitl.route(payout_run_id, get_current_context()["dag_run"].triggering_user_name)

    # Releasing money is idempotent (ready -> approved, the audit row once), so a dropped
    # connection is retried; a refusal (over a threshold, four eyes) is a verdict: no retry.
    @task(retries=2)
    def auto_approve(payout_run_id: str) -> int:
        from payouts.orchestration import hitl
        from payouts.orchestration import tasks

        return tasks.refusal_is_final(hitl.auto_approve_run, payout_run_id, refusals=hitl.FourEyesError)

    @task(retries=2)  # four eyes: refuses the run's creator, without a retry
    def record_approval(payout_run_id: str, response: dict) -> int:
        from payouts.orchestration import hitl
        from payouts.orchestration import tasks

        return tasks.refusal_is_final(hitl.record_human_decision, payout_run_id, response,
                                      refusals=hitl.FourEyesError)

    @task(trigger_rule="none_failed_min_one_success")
    def approve(payout_run_id: str) -> str:
        # The join of the two approval paths: plan follows whichever one ran.
        return payout_run_id

    @task
    def plan(payout_run_id: str) -> dict:
        from payouts.orchestration import tasks

        return tasks.plan(payout_run_id)

    @task
    def batches_of(plan: dict, rail: str) -> list[dict]:
        # `queue` cannot be mapped, so each rail maps its own task over its own list.
        return plan[rail]

    # Money moves here. Every payment carries an idempotency key derived from
    # (item, rail), so retries resend the same keys and never pay twice.
    @task(retries=3, retry_delay=timedelta(seconds=10), max_active_tis_per_dagrun=8)
    def submit(batch: dict) -> dict:
        from payouts.orchestration import tasks

        return tasks.submit(batch)

    # The second wave: items a rail rejected at rail level (instant unreachable,
    # over the cap), on the next rail of their chain, each under a new key.
    @task(trigger_rule="all_done")
    def plan_fallback(payout_run_id: str) -> dict:
        from payouts.orchestration import tasks

        return tasks.plan_fallback(payout_run_id)

    @task(trigger_rule="all_done")  # ask about unanswered payments even when a submit gave up
    def resolve(payout_run_id: str) -> dict:
        from payouts.orchestration import tasks

        return tasks.resolve(payout_run_id)

    @task(trigger_rule="all_done", outlets=[payout_items_asset])
    def finish(payout_run_id: str) -> dict:
        from payouts.orchestration import tasks

        return tasks.finish(payout_run_id)

    payout_run_id = open_run()
    gate = quality_gate(payout_run_id)
    snapshot(payout_run_id) >> gate
    checked = check_items(payout_run_id)
    gate >> checked
    route = approval_route(payout_run_id)
    checked >> route
    auto = auto_approve(payout_run_id)
    human = FourEyesApprovalOperator()
    route >> [auto, human]
    approved = approve(payout_run_id)
    [auto, record_approval(payout_run_id, human.output)] >> approved
    batches = plan(payout_run_id)
    approved >> batches
    submits = [
        submit.override(task_id=f"submit_{rail.name}", queue=rail.queue).expand(
            batch=batches_of.override(task_id=f"batches_{rail.name}")(batches, rail.name)
        )
        for rail in RAILS.values()
    ]
    fallback_plan = plan_fallback(payout_run_id)
    submits >> fallback_plan
    fallback_submits = [
        submit.override(task_id=f"submit_fallback_{rail}", queue=RAILS[rail].queue).expand(
            batch=batches_of.override(task_id=f"fallback_batches_{rail}")(fallback_plan, rail)
        )
        for rail in FALLBACK_RAILS
    ]
    resolved = resolve(payout_run_id)
    fallback_submits >> resolved
    resolved >> finish(payout_run_id)


@task(trigger_rule="one_failed", retries=0)
def any_task_failed() -> None:
    """Fails when any task of the run failed, so the DAG run does too (skipped otherwise).

    `finish` runs whatever happened upstream (all_done: the summary is always
    written), so a run's state cannot come from it: without this leaf a run whose
    submit gave up would still show as a success in the Airflow UI.
    """
    from airflow.sdk.exceptions import AirflowFailException

    raise AirflowFailException("a task of this payout run failed: see the failed task instances")


payout_run_dag = payout_run()
with payout_run_dag:
    watcher = any_task_failed().operator
    [t for t in payout_run_dag.tasks if t is not watcher] >> watcher
