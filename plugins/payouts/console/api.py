"""The console API, /payouts/api/v1: payout files and requests in, runs, items and reconciliation out.

Every endpoint depends on Airflow's own security dependencies (a bearer token
from POST /auth/token, or the UI's session cookie): reads need GET on the
payout_run DAG's runs, writes need POST (the right to trigger it). Every read
answers CSV with ?format=csv; cells starting with = + - @ are neutralised.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from contextlib import contextmanager
from typing import Annotated, Any, Iterator, Literal

from fastapi import APIRouter, Depends, File, Form, Header, HTTPException, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag

from payouts.console import airflow_api, intake, views

DAG_ID = airflow_api.DAG_ID
can_read = Depends(requires_access_dag("GET", DagAccessEntity.RUN, param_dag_id=DAG_ID))
can_write = Depends(requires_access_dag("POST", DagAccessEntity.RUN, param_dag_id=DAG_ID))
Format = Annotated[Literal["json", "csv"], Query(description="json (default) or csv")]

router = APIRouter(prefix="/api/v1")


@contextmanager
def warehouse() -> Iterator[Any]:
    import psycopg

    from payouts.warehouse import resolve_url

    with psycopg.connect(resolve_url(), autocommit=True) as conn:
        yield conn


# -- CSV ------------------------------------------------------------------------

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> str:
    """A cell a spreadsheet will not run: text starting with = + - @ (or tab, CR) gets a leading quote."""
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        value = json.dumps(value, default=str, ensure_ascii=False)
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def to_csv(rows: list[dict], filename: str) -> Response:
    buffer = io.StringIO()
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    writer = csv.writer(buffer)
    writer.writerow([safe_cell(c) for c in columns])
    for row in rows:
        writer.writerow([safe_cell(row.get(c)) for c in columns])
    return Response(buffer.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def answer(data: Any, fmt: str, filename: str, rows: list[dict] | None = None) -> Any:
    if fmt == "csv":
        return to_csv(rows if rows is not None else (data if isinstance(data, list) else [data]), filename)
    return JSONResponse(json.loads(json.dumps(data, default=str)))


def _flatten(prefix: str, value: Any, out: dict) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = value


# -- models (for the OpenAPI schema) ---------------------------------------------

class RowCounts(BaseModel):
    rows: int
    ready: int
    held: int
    rejected: int
    accepted: int = Field(description="ready rows that became ledger payables now")
    seen_before: int = Field(description="ready rows refused: their payout id was received before")


class IntakeResponse(BaseModel):
    run_id: str
    dag_run_id: str
    rows: RowCounts
    file_id: int | None = None
    warnings: list[str] = []
    rejected_rows: list[dict] = Field(default_factory=list, description="row, payout_id, reasons of each non-ready row")


class PayoutIn(BaseModel):
    model_config = ConfigDict(extra="allow")
    payout_id: str
    recipient_id: str
    name: str
    amount: str = Field(description="decimal text, e.g. '12.34'; never a float")
    currency: str
    country: str | None = None
    iban: str | None = None
    bic: str | None = None
    account_number: str | None = None
    routing_code: str | None = None
    wallet_address: str | None = None
    network: str | None = None
    reference: str | None = None


class PayoutsRequest(BaseModel):
    payouts: list[PayoutIn]
    source: str = "api"


# -- intake ---------------------------------------------------------------------

def _row_problems(conn, key: str, limit: int = 200) -> list[dict]:
    rows = conn.execute(
        "SELECT row_no, payout_id, decision, reasons FROM payouts.intake_rows WHERE intake = %s"
        " AND NOT accepted ORDER BY row_no LIMIT %s", (key, limit)).fetchall()
    return [{"row": r, "payout_id": p, "decision": d, "reasons": rs} for r, p, d, rs in rows]


def _start_run(request: Request, conn, kind: str, key: str, intake_key: str, user: str, conf: dict) -> tuple[str, str]:
    dag_run_id = intake.new_dag_run_id(kind, key)
    conf = {"trigger": kind, "created_by": user, "intake": intake_key, **conf}
    with conn.transaction():
        run_id = intake.open_console_run(conn, dag_run_id, kind, user, conf, intake_key)
    try:
        airflow_api.trigger_payout_run(request, dag_run_id, conf)
    except HTTPException:
        intake.forget_run(conn, run_id)
        raise
    return run_id, dag_run_id


@router.post("/files", status_code=201, response_model=IntakeResponse, dependencies=[can_write],
             summary="Upload a payout file (CSV or XLSX), check it, make its ready rows payable, start a run",
             responses={409: {"description": "the same file (same SHA-256) was uploaded before"},
                        422: {"description": "the file cannot be read as a payout file"}})
def upload_file(request: Request, user: GetUserDep, file: Annotated[UploadFile, File()],
                source: Annotated[str, Form(max_length=40, pattern=r"^[A-Za-z0-9_.-]+$")] = "upload"):
    data = file.file.read(intake.MAX_FILE_BYTES + 1)
    if len(data) > intake.MAX_FILE_BYTES:
        raise HTTPException(413, f"the file is over {intake.MAX_FILE_BYTES >> 20} MB")
    name = file.filename or "upload.csv"
    who = user.get_name()
    with warehouse() as conn:
        try:
            with conn.transaction():
                file_id = intake.store_file(conn, name, source, data, who)
                checked, warnings = intake.check_upload(conn, name, data)
                key = f"file:{file_id}"
                counts = intake.take_rows(conn, checked, intake=key, source=source, user=who)
                conn.execute("UPDATE payouts.uploaded_files SET warnings = %s, counts = %s WHERE file_id = %s",
                             (json.dumps(warnings), json.dumps(counts), file_id))
        except intake.DuplicateFile as exc:
            raise HTTPException(409, str(exc)) from None
        except intake.IntakeError as exc:
            raise HTTPException(422, str(exc)) from None
        run_id, dag_run_id = _start_run(request, conn, "file", f"{file_id}", key, who,
                                        {"file_id": file_id, "file_name": name})
        conn.execute("UPDATE payouts.uploaded_files SET run_id = %s, dag_run_id = %s WHERE file_id = %s",
                     (run_id, dag_run_id, file_id))
        problems = _row_problems(conn, key)
    return {"run_id": run_id, "dag_run_id": dag_run_id, "rows": counts, "file_id": file_id,
            "warnings": warnings, "rejected_rows": problems}


@router.post("/runs", status_code=201, response_model=IntakeResponse, dependencies=[can_write],
             summary="Start a run from a JSON list of payouts (Idempotency-Key required)",
             responses={422: {"description": "the same Idempotency-Key was used with another body"}})
def post_run(request: Request, user: GetUserDep, body: PayoutsRequest,
             idempotency_key: Annotated[str, Header(alias="Idempotency-Key", min_length=8, max_length=200)]):
    payouts = [p.model_dump(exclude_none=True) for p in body.payouts]
    digest = intake.body_hash({"source": body.source, "payouts": payouts})  # type: ignore[arg-type]
    who = user.get_name()
    key = f"api:{idempotency_key}"
    with warehouse() as conn:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (key,))
            seen = conn.execute("SELECT body_sha256, response FROM payouts.api_requests WHERE idempotency_key = %s",
                                (idempotency_key,)).fetchone()
            if seen is not None:
                if seen[0] != digest:
                    raise HTTPException(422, "this Idempotency-Key was already used with a different body")
                if seen[1] is not None:
                    return JSONResponse(seen[1], status_code=200)
                raise HTTPException(409, "a request with this Idempotency-Key is still being processed")
            conn.execute("INSERT INTO payouts.api_requests (idempotency_key, body_sha256, created_by)"
                         " VALUES (%s, %s, %s)", (idempotency_key, digest, who))
            try:
                checked = intake.check_payload(conn, payouts)
            except intake.IntakeError as exc:
                raise HTTPException(422, str(exc)) from None
            counts = intake.take_rows(conn, checked, intake=key, source=body.source, user=who)
        try:
            run_id, dag_run_id = _start_run(request, conn, "api", idempotency_key, key, who, {})
        except HTTPException:
            conn.execute("DELETE FROM payouts.api_requests WHERE idempotency_key = %s AND response IS NULL",
                         (idempotency_key,))
            raise
        result = {"run_id": run_id, "dag_run_id": dag_run_id, "rows": counts, "file_id": None, "warnings": [],
                  "rejected_rows": _row_problems(conn, key)}
        conn.execute("UPDATE payouts.api_requests SET response = %s WHERE idempotency_key = %s",
                     (json.dumps(result, default=str), idempotency_key))
    return result


# -- reads ------------------------------------------------------------------------

@router.get("/runs", dependencies=[can_read], summary="Payout runs, newest first, with their status")
def get_runs(format: Format = "json", limit: Annotated[int, Query(ge=1, le=1000)] = 50,
             offset: Annotated[int, Query(ge=0)] = 0):
    with warehouse() as conn:
        runs = views.list_runs(conn, limit, offset)
    states = airflow_api.dag_run_states([r["dag_run_id"] for r in runs])
    for run in runs:
        run["status"], run["warehouse_status"] = views.run_status(run, states.get(run["dag_run_id"])), run["status"]
    return answer(runs, format, "runs.csv")


@router.get("/runs/{run_id}", dependencies=[can_read],
            summary="One run: status, counts per status and rail, money per currency, approval",
            responses={404: {"description": "no such run"}})
def get_run(run_id: str, format: Format = "json"):
    with warehouse() as conn:
        run = views.get_run(conn, run_id)
    if run is None:
        raise HTTPException(404, f"no run {run_id}")
    state = airflow_api.dag_run_states([run["dag_run_id"]]).get(run["dag_run_id"])
    run["warehouse_status"], run["status"] = run["status"], views.run_status(run, state)
    run["airflow"] = state
    flat: dict = {}
    _flatten("", run, flat)
    return answer(run, format, f"run-{run_id}.csv", rows=[flat])


@router.get("/runs/{run_id}/items", dependencies=[can_read], summary="The items of a run")
def get_run_items(run_id: str, format: Format = "json", status: str | None = None,
                  limit: Annotated[int, Query(ge=1, le=100_000)] = 1000, offset: Annotated[int, Query(ge=0)] = 0):
    with warehouse() as conn:
        rows = views.run_items(conn, run_id, status, limit, offset)
    return answer(rows, format, f"run-{run_id}-items.csv")


@router.get("/items/{payout_id}", dependencies=[can_read],
            summary="Full history of an item (by item id, or the payout id of a file or API request)",
            responses={404: {"description": "unknown id"}})
def get_item(payout_id: str, format: Format = "json"):
    with warehouse() as conn:
        history = views.item_history(conn, payout_id)
    if history is None:
        raise HTTPException(404, f"no item or payout {payout_id}")
    if format == "csv":  # one line per event of any kind, in order
        rows = [{"section": section, **row} for section in ("intake", "payout", "attempts", "events", "postings",
                                                            "statement_lines", "breaks")
                for row in history.get(section, [])]
        return to_csv(rows, f"item-{payout_id}.csv")
    return answer(history, format, "")


@router.get("/reconciliation/summary", dependencies=[can_read],
            summary="Reconciliation per day, provider and currency (reporting.reconciliation_daily)")
def get_reconciliation(format: Format = "json", start: Annotated[dt.date | None, Query(alias="from")] = None,
                       end: Annotated[dt.date | None, Query(alias="to")] = None):
    with warehouse() as conn:
        rows = views.reconciliation_summary(conn, start, end)
    return answer(rows, format, "reconciliation.csv")


@router.get("/breaks", dependencies=[can_read], summary="Reconciliation breaks with their age")
def get_breaks(format: Format = "json", status: Literal["open", "resolved", "all"] = "open",
               limit: Annotated[int, Query(ge=1, le=100_000)] = 1000):
    with warehouse() as conn:
        rows = views.breaks(conn, None if status == "all" else status, limit)
    return answer(rows, format, "breaks.csv")


@router.get("/runs/{run_id}/batches", dependencies=[can_read],
            summary="The batches of a run with the Airflow task instance that sent each one")
def get_batches(run_id: str, format: Format = "json"):
    with warehouse() as conn:
        rows = views.batches(conn, [run_id])
    return answer(rows, format, f"run-{run_id}-batches.csv")


# -- stops and four eyes -----------------------------------------------------------

class StopIn(BaseModel):
    scope: Literal["run", "rail"]
    target: str = Field(max_length=40)
    reason: str = Field(min_length=3, max_length=500)


@router.post("/stops", status_code=201, dependencies=[can_write],
             summary="Kill switch: stop new submissions of a run or a rail (audited)")
def set_stop(body: StopIn, user: GetUserDep):
    from payouts.payout_run.stops import set_stop as store

    with warehouse() as conn:
        store(conn, body.scope, body.target, "kill", body.reason, user.get_name())
    return {"scope": body.scope, "target": body.target, "kind": "kill", "set_by": user.get_name()}


@router.delete("/stops/{scope}/{target}", dependencies=[can_write], summary="Lift a kill switch (audited)")
def lift_stop(scope: Literal["run", "rail"], target: str, user: GetUserDep):
    from payouts.payout_run.stops import lift_stop as lift

    with warehouse() as conn:
        lifted = lift(conn, scope, target, "kill", user.get_name())
    if not lifted:
        raise HTTPException(404, f"no active kill switch on {scope} {target}")
    return {"scope": scope, "target": target, "lifted_by": user.get_name()}


@router.get("/stops", dependencies=[can_read], summary="Kill switches and pauses, active first")
def get_stops(format: Format = "json"):
    with warehouse() as conn:
        cur = conn.execute("SELECT * FROM payouts.stops ORDER BY lifted_at IS NOT NULL, set_at DESC LIMIT 500")
        rows = views._dicts(cur)
    return answer(rows, format, "stops.csv")


class FourEyesIn(BaseModel):
    kind: Literal["sanctions_clear", "break_write_off"]
    subject: dict = Field(description="{recipient_id, list_entry_id} or {break_id}")
    note: str = Field(min_length=3, max_length=1000)


@router.post("/four-eyes", status_code=201, dependencies=[can_write],
             summary="Ask for a sanctions clearance or a break write-off; a second person decides")
def request_four_eyes(body: FourEyesIn, user: GetUserDep):
    from payouts.payout_run import approval

    with warehouse() as conn:
        try:
            request_id = approval.request_action(conn, body.kind, body.subject, body.note, user.get_name())
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
    return {"request_id": request_id, "status": "open", "requested_by": user.get_name()}


@router.post("/four-eyes/{request_id}/{decision}", dependencies=[can_write],
             summary="Approve (and apply) or refuse a four-eyes request; never by the one who asked")
def decide_four_eyes(request_id: int, decision: Literal["approve", "refuse"], user: GetUserDep):
    from payouts.payout_run import approval

    with warehouse() as conn:
        try:
            return approval.decide_action(conn, request_id, user.get_name(), decision == "approve")
        except approval.FourEyesError as exc:
            raise HTTPException(403, str(exc)) from None
        except LookupError as exc:
            raise HTTPException(404, str(exc)) from None
        except ValueError as exc:
            raise HTTPException(409, str(exc)) from None


@router.get("/four-eyes", dependencies=[can_read], summary="Four-eyes requests")
def get_four_eyes(format: Format = "json"):
    with warehouse() as conn:
        rows = views._dicts(conn.execute(
            "SELECT * FROM payouts.four_eyes_requests ORDER BY status <> 'open', requested_at DESC LIMIT 500"))
    return answer(rows, format, "four-eyes.csv")
