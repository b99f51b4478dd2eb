"""Airflow from inside the api-server: trigger payout_run as the caller, read run and approval state.

Triggering goes through Airflow's own REST API (POST /api/v2/dags/payout_run/dagRuns)
with the caller's token, so Airflow's authorisation decides whether this user
may trigger the DAG, and the DAG run records them as its triggering user.
Reading state uses the metadata database the api-server already has.
"""

from __future__ import annotations

import logging

from fastapi import HTTPException, Request

log = logging.getLogger(__name__)

DAG_ID = "payout_run"
HUMAN_TASK_ID = "human_approval"


def caller_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header.split(" ", 1)[1].strip()
    return request.cookies.get("_token")


def trigger_payout_run(request: Request, dag_run_id: str, conf: dict) -> dict:
    """Create the DAG run through the core API as the caller. Raises HTTPException with Airflow's answer."""
    import httpx

    token = caller_token(request)
    base = f"{request.url.scheme}://{request.url.netloc}"
    try:
        response = httpx.post(
            f"{base}/api/v2/dags/{DAG_ID}/dagRuns",
            json={"dag_run_id": dag_run_id, "logical_date": None, "conf": conf},
            headers={"Authorization": f"Bearer {token}"}, timeout=30)
    except httpx.HTTPError as exc:
        raise HTTPException(502, f"Airflow did not answer the trigger of {DAG_ID}: {exc}") from None
    if response.status_code >= 300:
        try:
            detail = response.json().get("detail")
        except ValueError:
            detail = response.text[:500]
        raise HTTPException(response.status_code if response.status_code in (401, 403, 404, 409) else 502,
                            f"Airflow refused to trigger {DAG_ID}: {detail}")
    return response.json()


def dag_run_states(dag_run_ids: list[str]) -> dict[str, dict]:
    """{dag_run_id: {state, awaiting_approval, hitl}} from the metadata database; {} outside Airflow."""
    if not dag_run_ids:
        return {}
    try:
        from sqlalchemy import select

        from airflow.models.dagrun import DagRun
        from airflow.models.hitl import HITLDetail
        from airflow.models.taskinstance import TaskInstance
        from airflow.utils.session import create_session
    except Exception:  # not inside an Airflow process
        return {}
    out: dict[str, dict] = {}
    try:
        with create_session() as session:
            for run_id, state in session.execute(
                    select(DagRun.run_id, DagRun.state).where(DagRun.dag_id == DAG_ID,
                                                              DagRun.run_id.in_(dag_run_ids))):
                out[run_id] = {"state": str(getattr(state, "value", state)), "awaiting_approval": False,
                               "approval": None}
            rows = session.execute(
                select(TaskInstance.run_id, TaskInstance.state, HITLDetail.chosen_options,
                       HITLDetail.responded_by, HITLDetail.responded_at)
                .join(HITLDetail, HITLDetail.ti_id == TaskInstance.id, isouter=True)
                .where(TaskInstance.dag_id == DAG_ID, TaskInstance.task_id == HUMAN_TASK_ID,
                       TaskInstance.run_id.in_(dag_run_ids)))
            for run_id, ti_state, chosen, by, at in rows:
                entry = out.setdefault(run_id, {"state": None, "awaiting_approval": False, "approval": None})
                ti_state = str(getattr(ti_state, "value", ti_state))
                entry["awaiting_approval"] = ti_state in ("awaiting_input", "deferred")
                entry["approval"] = {"task_state": ti_state, "chosen_options": chosen,
                                     "responded_by": by, "responded_at": at.isoformat() if at else None}
    except Exception as exc:  # the console still answers from the warehouse
        log.debug("cannot read Airflow state: %s", exc)
    return out
