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


