"""Shared fixtures: real PostgreSQL warehouses, fresh and migrated per session.

Database tests run on the embedded PostgreSQL, and again on the server named
by PAYOUTS_WAREHOUSE_URL when it is set (CI sets it), through the
`warehouse_url` fixture's parameters.
"""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR / "plugins"))
SHARED_DATA = PROJECT_DIR.parent / "shared" / "data"
FIXTURES = Path(__file__).resolve().parent / "fixtures"

# Tests keep their embedded server apart from the one `make run` uses.
os.environ.setdefault("PAYOUTS_DATA_DIR", str(PROJECT_DIR / ".data" / "test"))
os.environ.setdefault("AIRFLOW_HOME", str(PROJECT_DIR / ".data" / "test" / "airflow"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
SERVER_URL = os.environ.pop("PAYOUTS_WAREHOUSE_URL", None)
os.environ["PAYOUTS_TEST_SERVER_URL"] = SERVER_URL or ""

WAREHOUSES = ["embedded"] + (["server"] if SERVER_URL else [])


def _with_db(url: str, database: str) -> str:
    parts = urlsplit(url.replace("postgresql+psycopg://", "postgresql://"))
    return urlunsplit(parts._replace(path="/" + database))


def _admin_url(kind: str) -> str:
    if kind == "embedded":
        from payouts.warehouse import embedded_server_url

        return embedded_server_url("postgres")
    return _with_db(SERVER_URL, "postgres")


def fresh_database(kind: str) -> tuple[str, callable]:
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


@pytest.fixture(scope="session", params=WAREHOUSES)
def warehouse_url(request) -> str:
    """A migrated warehouse database on each configured PostgreSQL."""
    url, drop = fresh_database(request.param)
    yield url
    drop()


@pytest.fixture()
def wh(warehouse_url):
    """A connection to the session's warehouse; rolled back after the test."""
    conn = psycopg.connect(warehouse_url)
    yield conn
    conn.rollback()
    conn.close()


@pytest.fixture()
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.fail(f"the shared sample data is missing at {SHARED_DATA}")
    return SHARED_DATA
