"""Apply include/sql/migrations/*.sql in order, once each, recorded with a checksum."""

from __future__ import annotations

import hashlib

import psycopg

from payouts import settings

_LOCK_KEY = 7_201_001  # advisory lock: two processes never migrate at once


class MigrationError(RuntimeError):
    pass


def migrate(conn: psycopg.Connection) -> list[str]:
    """Apply pending migrations; return the versions applied now."""
    applied_now: list[str] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS public.schema_migrations ("
            " version text PRIMARY KEY, checksum text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = dict(conn.execute("SELECT version, checksum FROM public.schema_migrations").fetchall())
        for path in sorted(settings.MIGRATIONS_DIR.glob("*.sql")):
            text = path.read_text(encoding="utf-8")
            checksum = hashlib.sha256(text.encode()).hexdigest()
            version = path.stem
            if version in done:
                if done[version] != checksum:
                    raise MigrationError(
                        f"migration {path.name} was changed after it was applied; "
                        "add a new migration instead of editing an applied one"
                    )
                continue
            conn.execute(text)
            conn.execute(
                "INSERT INTO public.schema_migrations (version, checksum) VALUES (%s, %s)",
                (version, checksum),
            )
            applied_now.append(version)
        from payouts.core.ledger import sync_currencies

        sync_currencies(conn)
    return applied_now


