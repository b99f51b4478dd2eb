"""Shared fixtures: real PostgreSQL warehouses, fresh and migrated per session.

Database tests run on the embedded PostgreSQL, and again on the server named
by PAYOUTS_WAREHOUSE_URL when it is set (CI sets it), through the
`warehouse_url` fixture's parameters.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import psycopg
import pytest

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR / "plugins"))
sys.path.insert(1, str(PROJECT_DIR / "tooling"))
sys.path.insert(2, str(PROJECT_DIR / "sandbox"))
SHARED_DATA = PROJECT_DIR.parent / "shared" / "data"
FIXTURES = Path(__file__).resolve().parent / "fixtures"

# Tests keep their embedded server apart from the one `make run` uses.
os.environ.setdefault("PAYOUTS_DATA_DIR", str(PROJECT_DIR / ".data" / "test"))
os.environ.setdefault("AIRFLOW_HOME", str(PROJECT_DIR / ".data" / "test" / "airflow"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
SERVER_URL = os.environ.pop("PAYOUTS_WAREHOUSE_URL", None)
os.environ["PAYOUTS_TEST_SERVER_URL"] = SERVER_URL or ""

from tests_support import WAREHOUSES, fresh_database  # noqa: E402


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
