"""Helpers the tests share: fresh, migrated warehouse databases on each PostgreSQL."""

from __future__ import annotations

import os
import uuid
from typing import Callable
from urllib.parse import urlsplit, urlunsplit

import psycopg
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def server_url() -> str | None:
    return os.environ.get("PAYOUTS_TEST_SERVER_URL") or None


# Database tests run on the embedded PostgreSQL, and on the server when one is named.
WAREHOUSES = ["embedded"] + (["server"] if server_url() else [])


def _with_db(url: str, database: str) -> str:
    parts = urlsplit(url.replace("postgresql+psycopg://", "postgresql://"))
    return urlunsplit(parts._replace(path="/" + database))


def _admin_url(kind: str) -> str:
    if kind == "embedded":
        from payouts.warehouse import embedded_server_url

        return embedded_server_url("postgres")
    return _with_db(server_url(), "postgres")


def fresh_database(kind: str) -> tuple[str, Callable[[], None]]:
    """Create an empty, migrated database; return its URL and a dropper."""
    from payouts.warehouse import connect, migrate

    admin = _admin_url(kind)
    name = f"payouts_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = _with_db(admin, name)
    with connect(url) as conn:
        migrate(conn)
        conn.commit()

    def drop() -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return url, drop


# -- the services of the distributed shape (tests/cluster, tests/chaos) --------------

def cluster_pg_url() -> str:
    """PAYOUTS_CLUSTER_PG_URL, else the test server, else this machine's PostgreSQL."""
    return (os.environ.get("PAYOUTS_CLUSTER_PG_URL") or server_url()
            or "postgresql://postgres@127.0.0.1:5432/postgres")


def cluster_redis_url() -> str:
    return os.environ.get("PAYOUTS_CLUSTER_REDIS_URL", "redis://127.0.0.1:6379")


def cluster_services_unreachable() -> str | None:
    """Why the cluster's PostgreSQL or Redis cannot be used, or None."""
    import redis

    pg = _with_db(cluster_pg_url(), "postgres")
    try:
        psycopg.connect(pg, connect_timeout=3).close()
    except psycopg.Error as exc:
        return f"PostgreSQL server not reachable at {pg}: {exc}".strip()
    try:
        redis.Redis.from_url(cluster_redis_url(), socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        return f"Redis not reachable at {cluster_redis_url()}: {exc}"
    return None


def require_cluster_services() -> dict[str, str]:
    """{"pg", "redis"} URLs; skips the test when one is unreachable (fails under PAYOUTS_REQUIRE_CLUSTER=1)."""
    import pytest

    reason = cluster_services_unreachable()
    if reason:
        if os.environ.get("PAYOUTS_REQUIRE_CLUSTER") == "1":
            pytest.fail(f"PAYOUTS_REQUIRE_CLUSTER=1 but {reason}")
        pytest.skip(reason)
    return {"pg": cluster_pg_url(), "redis": cluster_redis_url()}


# -- what must hold after any payout run, whatever failed on the way ------------------

# Statuses whose money sits in the `reserved` account (snapshotted, not yet sent or given back).
RESERVED_STATUSES = ("snapshotted", "ready", "held", "approved", "submitted", "awaiting_status", "fallback")


def item_statuses(conn: psycopg.Connection, run_id: str | None = None) -> dict[str, int]:
    """status -> item count, of one run or of the whole warehouse."""
    return dict(conn.execute(
        "SELECT status, count(*) FROM payouts.payout_items WHERE %(run)s::text IS NULL OR run_id = %(run)s"
        " GROUP BY 1", {"run": run_id}).fetchall())


def items_not_at_rest(conn: psycopg.Connection) -> dict[str, int]:
    """Items neither final, nor parked (held, awaiting_status), nor accepted: status -> count."""
    from payouts.core import states

    resting = sorted(states.AT_REST | {"accepted"})
    return dict(conn.execute(
        "SELECT status, count(*) FROM payouts.payout_items WHERE status <> ALL(%s) GROUP BY 1",
        (resting,)).fetchall())


def parked_without_reason(conn: psycopg.Connection) -> int:
    """Held, awaiting_status or rejected items that carry no reason."""
    return conn.execute(
        "SELECT count(*) FROM payouts.payout_items WHERE status IN ('held', 'awaiting_status', 'rejected')"
        " AND jsonb_array_length(reasons) = 0").fetchone()[0]


def ledger_problems(conn: psycopg.Connection) -> list[str]:
    """Why the ledger does not balance against the items; [] when it does.

    Every transaction balances per currency; `clearing` holds exactly what the
    accepted items paid (per paid currency), `reserved` exactly what the items
    still in the run's hands owe (per owed currency); no payable is negative.
    """
    problems = []
    unbalanced = conn.execute("SELECT count(*) FROM ledger.unbalanced_transactions").fetchone()[0]
    if unbalanced:
        problems.append(f"{unbalanced} ledger transactions do not balance")
    orphans = conn.execute("SELECT count(*) FROM ledger.orphan_postings").fetchone()[0]
    if orphans:
        problems.append(f"{orphans} postings have no ledger transaction")
    for source, reference, count in conn.execute(
            "SELECT source, reference, count(*) FROM payouts.orphan_references GROUP BY 1, 2 ORDER BY 1, 2"):
        problems.append(f"{count} rows of {source} name a {reference} that does not exist")

    def per_currency(query: str, params: tuple = ()) -> dict[str, int]:
        return {c: int(v) for c, v in conn.execute(query, params).fetchall() if v}

    clearing = per_currency("SELECT currency, sum(-amount_minor) FROM ledger.postings"
                            " WHERE account = 'clearing' GROUP BY 1")
    accepted = per_currency("SELECT COALESCE(paid_currency, currency), sum(COALESCE(paid_amount_minor, amount_minor))"
                            " FROM payouts.payout_items WHERE status = 'accepted' GROUP BY 1")
    if clearing != accepted:
        problems.append(f"clearing {clearing} != accepted items {accepted}")
    reserved = per_currency("SELECT currency, sum(-amount_minor) FROM ledger.postings"
                            " WHERE account = 'reserved' GROUP BY 1")
    owed = per_currency("SELECT currency, sum(amount_minor) FROM payouts.payout_items"
                        " WHERE status = ANY(%s) GROUP BY 1", (list(RESERVED_STATUSES),))
    if reserved != owed:
        problems.append(f"reserved {reserved} != items still reserved {owed}")
    negative = conn.execute(
        "SELECT count(*) FROM (SELECT 1 FROM ledger.postings WHERE account = 'payable'"
        " GROUP BY recipient_id, currency HAVING sum(amount_minor) > 0) n").fetchone()[0]
    if negative:
        problems.append(f"{negative} payable balances are negative")
    return problems


def ledger_balances(conn: psycopg.Connection) -> dict[str, int]:
    """'account currency' -> balance, and the number of ledger transactions: to compare before and after."""
    balances = {f"{a} {c}": int(v) for a, c, v in conn.execute(
        "SELECT account, currency, sum(amount_minor) FROM ledger.postings GROUP BY 1, 2 ORDER BY 1, 2").fetchall()}
    balances["transactions"] = conn.execute("SELECT count(*) FROM ledger.transactions").fetchone()[0]
    return balances


# A small warehouse for the unit tests of the parts that write it (tests/unit/conftest.py).
RUN = "R000001"
PAYEES = [("U-1", "Ada Payee", "DE", "EUR", "DE89370400440532013000"),
          ("U-2", "Ben Payee", "FR", "EUR", "FR1420041010050500013M02606"),
          ("U-3", "Cleo Payee", "NL", "EUR", "NL91ABNA0417164300")]


def add_item(conn, item_id: str, recipient_id: str, amount_minor: int, status: str = "approved",
             rail: str | None = "sepa_instant", **extra) -> str:
    """An item of RUN; one with a rail is planned (batch 0 of its rail unless `batch_no` says)."""
    columns = {"item_id": item_id, "run_id": RUN, "recipient_id": recipient_id, "currency": "EUR",
               "amount_minor": amount_minor, "status": status, "rail": rail,
               "batch_no": None if rail is None else 0, **extra}
    names = ", ".join(columns)
    marks = ", ".join(["%s"] * len(columns))
    conn.execute(f"INSERT INTO payouts.payout_items ({names}) VALUES ({marks})", list(columns.values()))
    return item_id
