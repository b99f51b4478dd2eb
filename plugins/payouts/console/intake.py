"""Payouts that arrive through the console: a payout file or an API request.

The rows are checked as `payouts check` checks a file (payouts.checks), every
row's result is kept (payouts.intake_rows), and the ready rows become ledger
payables, once per (source, payout_id) across all runs: an earning
'file:<source>:<payout_id>' (earnings +amount, payable -amount), the recipient
created or updated from the row. A payout run is then opened for the DAG run
that will pay them (the run snapshots every payable balance, as scheduled
runs do).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from payouts.core import destinations, ledger
from payouts import settings
from payouts.warehouse.queries import sql

if TYPE_CHECKING:
    import polars as pl
    import psycopg

_INTAKE_LOCK = 7_201_009  # intakes take turns: a payout id seen by one is seen by the next
MAX_FILE_BYTES = 50 << 20


class IntakeError(ValueError):
    """The request cannot be taken at all (unreadable file, empty list)."""


class DuplicateFile(IntakeError):
    def __init__(self, sha256: str, file_id: int, name: str, uploaded_at, run_id: str | None):
        self.sha256, self.file_id, self.run_id = sha256, file_id, run_id
        super().__init__(
            f"this file was already uploaded as {name!r} (file {file_id}, {uploaded_at:%Y-%m-%d %H:%M} UTC"
            f"{', run ' + run_id if run_id else ''}); nothing was taken again")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_upload(conn: "psycopg.Connection", name: str, data: bytes) -> tuple["pl.DataFrame", list[str]]:
    """Read and check an uploaded CSV/XLSX exactly as `payouts check FILE` with a warehouse does."""
    from payouts.checks.payout_file import PayoutFileError, read_payout_file
    from payouts.checks.rows import CheckPolicy, check_rows
    from payouts.checks.run_checks import file_warehouse_checks

    suffix = "".join(ch for ch in Path(name).suffix[:10] if ch.isalnum() or ch == ".") or ".csv"  # any name
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"upload{suffix}"
        path.write_bytes(data)
        try:
            frame, warnings = read_payout_file(path)
        except PayoutFileError as exc:
            raise IntakeError(str(exc).replace(str(path), name)) from None
    policy = CheckPolicy(evm_lowercase=settings.EVM_LOWERCASE_POLICY)
    return check_rows(frame, policy, extra_checks=file_warehouse_checks(conn)), warnings


def check_payload(conn: "psycopg.Connection", payouts: list[dict]) -> "pl.DataFrame":
    """Check a JSON list of payouts (the file's columns as keys) like the rows of a file."""
    import polars as pl

    from payouts.checks.payout_file import KNOWN_COLUMNS, normalise_header
    from payouts.checks.rows import CheckPolicy, check_rows
    from payouts.checks.run_checks import file_warehouse_checks

    if not payouts:
        raise IntakeError("the request holds no payouts")
    rows = [{normalise_header(k): (None if v is None else str(v)) for k, v in p.items()} for p in payouts]
    for i, row in enumerate(rows, start=1):   # PostgreSQL text cannot hold NUL: refused here, by name
        if bad := [k for k, v in row.items() if "\x00" in k or (v is not None and "\x00" in v)]:
            raise IntakeError(f"payout {i}: field {bad[0]!r} contains a NUL character; nothing was taken")
    columns = [c for c in KNOWN_COLUMNS if any(c in r for r in rows)]
    frame = pl.DataFrame({c: pl.Series(c, [r.get(c) for r in rows], dtype=pl.Utf8) for c in columns})
    frame = frame.with_columns(row=pl.int_range(1, frame.height + 1, dtype=pl.Int64)).select("row", *columns)
    policy = CheckPolicy(evm_lowercase=settings.EVM_LOWERCASE_POLICY)
    return check_rows(frame, policy, extra_checks=file_warehouse_checks(conn))


def _rows_frame(checked: "pl.DataFrame") -> "pl.DataFrame":
    import polars as pl

    def col(name: str) -> pl.Expr:
        return pl.col(name) if name in checked.columns else pl.lit(None, dtype=pl.Utf8)

    reasons = pl.lit("[") + pl.col("reasons").list.eval(pl.element().struct.json_encode()).list.join(",") + pl.lit("]")
    return checked.select(
        row_no=pl.col("row").cast(pl.Int64),
        payout_id=col("payout_id"), recipient_id=col("recipient_id"), name=col("name"),
        country=pl.coalesce(col("country"), col("account_country")),
        currency=col("currency"), amount_minor=col("amount_minor").cast(pl.Int64, strict=False),
        dest_kind=col("dest_kind"), iban=col("iban_norm"), bic=col("bic_norm"),
        account_number=col("account_number"), routing_code=col("routing_code"),
        wallet_address=col("wallet_address"), network=col("network_norm"),
        decision=pl.col("decision"), reasons=reasons,
    )


_ROW_COLUMNS = ["row_no", "payout_id", "recipient_id", "name", "country", "currency", "amount_minor", "dest_kind",
                "iban", "bic", "account_number", "routing_code", "wallet_address", "network", "decision", "reasons"]


def take_rows(conn: "psycopg.Connection", checked: "pl.DataFrame", *, intake: str, source: str,
              user: str) -> dict[str, int]:
    """Keep every row's result; turn the ready rows into payables (once per source and payout id).

    Runs inside the caller's transaction. Returns counts: rows, ready, held, rejected,
    accepted (payables made now), seen_before (ready rows whose payout id was taken before).
    """
    from payouts.warehouse import copy_in

    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_INTAKE_LOCK,))
    conn.execute(
        "CREATE TEMP TABLE _intake (row_no int PRIMARY KEY, payout_id text, recipient_id text, name text,"
        " country text, currency text, amount_minor bigint, dest_kind text, iban text, bic text,"
        " account_number text, routing_code text, wallet_address text, network text, decision text,"
        " reasons jsonb) ON COMMIT DROP")
    copy_in(conn, "_intake", _rows_frame(checked), _ROW_COLUMNS)
    # Ready rows that cannot become a payable after all: seen before, or no country for the payee.
    seen = conn.execute(
        sql("console/intake_seen_before"), {"source": source}).rowcount
    conn.execute(
        """
        UPDATE _intake SET decision = 'rejected', reasons = reasons || jsonb_build_array(jsonb_build_object(
            'code', 'MISSING_FIELD', 'iso_code', NULL, 'text', 'Required field country is empty.'))
        WHERE decision = 'ready' AND (country IS NULL OR length(country) <> 2)
        """)
    # A blocked destination stays blocked until the payee gives another one.
    destinations.unblock(conn, sql("console/intake_known_payees"))
    conn.execute(
        sql("console/intake_upsert_payees"))
    conn.execute("CREATE TEMP TABLE _earned (txn_id text PRIMARY KEY) ON COMMIT DROP")
    ledger.post_rows(
        conn, "earning",
        "SELECT 'file:' || %(source)s || ':' || payout_id, recipient_id, currency, amount_minor, NULL, NULL"
        " FROM _intake WHERE decision = 'ready' ORDER BY 1",
        [("earnings", 1, "owed", False), ("payable", -1, "owed", False)], {"source": source}, fresh_into="_earned")
    accepted = conn.execute(
        sql("console/intake_take_payouts"), {"source": source, "intake": intake, "user": user}).rowcount
    conn.execute(
        sql("console/intake_rows"), {"intake": intake, "source": source})
    counts = dict(conn.execute("SELECT decision, count(*) FROM _intake GROUP BY 1").fetchall())
    return {"rows": int(sum(counts.values())), "ready": int(counts.get("ready", 0)),
            "held": int(counts.get("held", 0)), "rejected": int(counts.get("rejected", 0)),
            "accepted": int(accepted), "seen_before": int(seen)}


def new_dag_run_id(kind: str, key: str) -> str:
    """An Airflow run id ([A-Za-z0-9_.~:+-]) that says where the run came from."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S.%f")
    safe = "".join(ch if ch.isalnum() else "-" for ch in key)[:24]
    return f"console__{kind}__{safe}__{stamp}"


def open_console_run(conn: "psycopg.Connection", dag_run_id: str, trigger: str, user: str, conf: dict,
                     intake: str) -> str:
    """The payout run the DAG run will own (open_run finds it by dag_run_id), with its creator."""
    from payouts.payout_run import approval
    from payouts.payout_run import stages as payout_run

    run_id = payout_run.open_run(conn, dag_run_id, trigger, conf)
    approval.set_creator(conn, run_id, user)
    conn.execute("UPDATE payouts.file_payouts SET run_id = %s WHERE intake = %s", (run_id, intake))
    return run_id


def forget_run(conn: "psycopg.Connection", run_id: str) -> None:
    """Undo open_console_run when Airflow refused the DAG run (the payables stay for the next run)."""
    with conn.transaction():
        conn.execute("UPDATE payouts.file_payouts SET run_id = NULL WHERE run_id = %s", (run_id,))
        conn.execute("UPDATE payouts.uploaded_files SET run_id = NULL, dag_run_id = NULL WHERE run_id = %s",
                     (run_id,))
        conn.execute("DELETE FROM payouts.runs r WHERE run_id = %s AND NOT EXISTS"
                     " (SELECT 1 FROM payouts.payout_items i WHERE i.run_id = r.run_id)", (run_id,))


def store_file(conn: "psycopg.Connection", name: str, source: str, data: bytes, user: str) -> int:
    """Keep the uploaded bytes; the same content twice raises DuplicateFile."""
    if "\x00" in name or "\x00" in source:
        raise IntakeError(f"the file name {name!r} or source contains a NUL character; nothing was taken")
    digest = sha256(data)
    row = conn.execute(
        "INSERT INTO payouts.uploaded_files (sha256, name, source, size_bytes, content, uploaded_by)"
        " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (sha256) DO NOTHING RETURNING file_id",
        (digest, name, source, len(data), data, user)).fetchone()
    if row is None:
        file_id, old_name, at, run_id = conn.execute(
            "SELECT file_id, name, uploaded_at, run_id FROM payouts.uploaded_files WHERE sha256 = %s",
            (digest,)).fetchone()
        raise DuplicateFile(digest, file_id, old_name, at, run_id)
    return int(row[0])


def body_hash(payouts: list[dict]) -> str:
    return sha256(json.dumps(payouts, sort_keys=True, separators=(",", ":"), default=str).encode())
