"""All environment wiring in one place.

Every path, URL, threshold and switch the package reads comes from here, so a
deployment changes behaviour through the environment and never through code.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent.parent
INCLUDE_DIR = PROJECT_DIR / "include"
SQL_DIR = INCLUDE_DIR / "sql"
MIGRATIONS_DIR = SQL_DIR / "migrations"
QUERIES_DIR = SQL_DIR / "queries"
DAGS_DIR = PROJECT_DIR / "dags"
PLUGINS_DIR = PROJECT_DIR / "plugins"


def data_dir() -> Path:
    """Folder for the embedded PostgreSQL, Airflow home and sandbox state."""
    return Path(os.environ.get("PAYOUTS_DATA_DIR", PROJECT_DIR / ".data")).resolve()


def embedded_pg_dir() -> Path:
    return data_dir() / "pg"


def warehouse_url() -> str | None:
    """An external warehouse, or None for the embedded PostgreSQL."""
    return os.environ.get("PAYOUTS_WAREHOUSE_URL") or None


# The provider connection every rail uses by default (payouts.core.rails); `payouts run`
# starts a sandbox and names it so when the environment does not define it.
SANDBOX_CONN_ID = "payouts_sandbox"


def conn_env_var(conn_id: str) -> str:
    """The environment variable that defines an Airflow connection."""
    return f"AIRFLOW_CONN_{conn_id.upper()}"


def sandbox_connection() -> str | None:
    """AIRFLOW_CONN_PAYOUTS_SANDBOX when the environment defines it, else None."""
    return os.environ.get(conn_env_var(SANDBOX_CONN_ID)) or None


def sandbox_state_dir() -> Path:
    return Path(os.environ.get("PAYOUTS_SANDBOX_DIR", data_dir() / "sandbox")).resolve()


def statements_url() -> str:
    """Where fetched provider statements are kept, one folder per provider (payouts.reconcile.store).

    PAYOUTS_STATEMENTS_URL: any URL Airflow's ObjectStoragePath opens (file://, s3://, gs://,
    ...); by default the folder `statements` under the data folder.
    """
    return os.environ.get("PAYOUTS_STATEMENTS_URL") or (data_dir() / "statements").resolve().as_uri()


def sandbox_latency_ms() -> float:
    return float(os.environ.get("PAYOUTS_SANDBOX_LATENCY_MS", "0"))


def sandbox_day_seconds() -> float | None:
    """Seconds per business day of a sandbox whose clock runs by itself (None: only when asked)."""
    value = os.environ.get("PAYOUTS_SANDBOX_DAY_SECONDS")
    return float(value) if value else None


def sandbox_port() -> int:
    """The port of the sandbox `make airflow` starts."""
    return int(os.environ.get("PAYOUTS_SANDBOX_PORT", "8765"))


# When fetch_statements pulls the provider's statements: hourly in a deployment, where a
# bank's statements land a few times a day; `make airflow` sets every 3 minutes, as its
# sandbox closes a business day every 2.
FETCH_STATEMENTS_CRON = os.environ.get("PAYOUTS_FETCH_STATEMENTS_CRON", "15 * * * *")


# Batch planning: items per mapped submit task instance, and payments per HTTP
# request inside it. 20,000 per batch keeps a million-item run at ~60 mapped
# instances, well under [core] max_map_length (1024), and each instance's fixed
# cost (a task start, a few queries) small against its HTTP work.
BATCH_SIZE = int(os.environ.get("PAYOUTS_BATCH_SIZE", "20000"))
REQUEST_SIZE = int(os.environ.get("PAYOUTS_REQUEST_SIZE", "500"))
# Payments per chunk inside a submit task: a chunk's answers are recorded in the
# warehouse while the next chunk is being sent.
SUBMIT_CHUNK = int(os.environ.get("PAYOUTS_SUBMIT_CHUNK", "5000"))
# Concurrent requests in flight per submit task: the provider's rate limit.
SUBMIT_CONCURRENCY = int(os.environ.get("PAYOUTS_SUBMIT_CONCURRENCY", "8"))
HTTP_TIMEOUT_S = float(os.environ.get("PAYOUTS_HTTP_TIMEOUT_S", "30"))
# Processes for the row checks' per-value library calls (IBAN, wallet validation) on
# runs with 50,000 distinct values or more; 1 keeps them in the task's process.
CHECK_WORKERS = int(os.environ.get("PAYOUTS_CHECK_WORKERS", str(min(4, os.cpu_count() or 1))))

# Task instances `payouts run` runs side by side (each in a process forked from its
# Airflow runner), as a deployment's Celery workers would; 1 runs them one by one.
RUN_WORKERS = int(os.environ.get("PAYOUTS_RUN_WORKERS", str(os.cpu_count() or 1)))

# Days after acceptance without a statement line before a missing_at_provider break.
MISSING_AFTER_DAYS = int(os.environ.get("PAYOUTS_MISSING_AFTER_DAYS", "3"))

# Reconciliation's window: statement lines that name their payout match it whatever
# its age; debits for a whole batch, suggestions and missing_at_provider breaks look
# at the accepted items of the runs opened in the last N days (an item is flagged
# missing after MISSING_AFTER_DAYS statement days, long before it leaves the window).
RECON_WINDOW_DAYS = int(os.environ.get("PAYOUTS_RECON_WINDOW_DAYS", "35"))

# Airflow asset fed by the statement fetch, consumed by reconcile_statements.
STATEMENTS_ASSET_URI = os.environ.get(
    "PAYOUTS_STATEMENTS_ASSET_URI", "payouts://provider-sandbox/statements"
)
PAYOUT_ITEMS_ASSET_URI = os.environ.get(
    "PAYOUTS_ITEMS_ASSET_URI", "payouts://warehouse/payouts/payout_items"
)

# Row checks and screening (issue-level policy lives in configuration, not code).
EMBARGOED_COUNTRIES = frozenset(
    c.strip().upper() for c in os.environ.get("PAYOUTS_EMBARGOED_COUNTRIES", "KP,IR,SY,CU").split(",") if c.strip()
)
UNVERIFIED_MONTHLY_LIMIT_EUR = int(os.environ.get("PAYOUTS_UNVERIFIED_MONTHLY_LIMIT_EUR", "1000"))
EVM_LOWERCASE_POLICY = os.environ.get("PAYOUTS_EVM_LOWERCASE", "hold")  # 'hold' | 'accept'
SANCTIONS_REVIEW_SCORE = float(os.environ.get("PAYOUTS_SANCTIONS_REVIEW_SCORE", "88"))
SANCTIONS_BLOCK_SCORE = float(os.environ.get("PAYOUTS_SANCTIONS_BLOCK_SCORE", "95"))

# Verification of Payee: what each answer means for an item, per platform
# (e.g. "close_match=held,no_match=held,not_possible=ready").
VOP_POLICY = dict(
    part.split("=", 1) for part in os.environ.get(
        "PAYOUTS_VOP_POLICY", "match=ready,close_match=held,no_match=held,not_possible=ready"
    ).split(",") if "=" in part
)
VOP_REUSE_DAYS = int(os.environ.get("PAYOUTS_VOP_REUSE_DAYS", "30"))

# Hours a changed payee destination waits before money goes to it.
DESTINATION_COOLING_OFF_HOURS = int(os.environ.get("PAYOUTS_DESTINATION_COOLING_OFF_HOURS", "48"))


# Payout files (`payouts check`, console uploads): a file over a limit is refused with
# an error naming the file and where, before it is read any further. Read per call.
def payout_file_limits() -> dict[str, int]:
    env = os.environ.get
    return {"max_bytes": int(env("PAYOUTS_PAYOUT_FILE_MAX_BYTES", str(50 << 20))),
            "max_line_bytes": int(env("PAYOUTS_PAYOUT_FILE_MAX_LINE_BYTES", "65536")),
            "max_rows": int(env("PAYOUTS_PAYOUT_FILE_MAX_ROWS", "1000000")),
            "max_columns": int(env("PAYOUTS_PAYOUT_FILE_MAX_COLUMNS", "100")),
            "max_unpacked_bytes": int(env("PAYOUTS_PAYOUT_FILE_MAX_UNPACKED_BYTES", str(200 << 20)))}
