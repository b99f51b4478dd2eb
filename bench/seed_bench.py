"""Time the synthetic platform: generate and load 1,000,000 recipients and their earnings.

Creates a throw-away, migrated database on the embedded PostgreSQL (or on
--server-url's server), times generate_recipients, generate_earnings and
seed.load (first load, then the idempotent second load), and drops the database
unless --keep.

    .venv/bin/python bench/seed_bench.py [--recipients 1000000] [--server-url URL]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR / "plugins"))
os.environ.setdefault("PAYOUTS_DATA_DIR", str(PROJECT_DIR / ".data" / "bench"))

import psycopg  # noqa: E402

from payouts_tooling import seed  # noqa: E402
from payouts.warehouse import embedded_server_url, migrate  # noqa: E402

PERIOD = "2026-01-31"


def _with_db(url: str, database: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + database))


def _timed(label: str, fn):
    started = time.perf_counter()
    result = fn()
    print(f"{label}: {time.perf_counter() - started:.2f} s", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipients", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--server-url", help="a libpq URL of another server's 'postgres' database")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    n = args.recipients

    _timed("bank registry and country table (once per process)",
           lambda: [seed._iban_plan(c.code) for c in seed.countries() if c.dest_kind == "iban"])  # noqa: SLF001
    recipients = _timed(f"generate_recipients({n:,})", lambda: seed.generate_recipients(n, args.seed))
    _timed(f"generate_earnings({n:,})", lambda: seed.generate_earnings(recipients, PERIOD, args.seed))
    kinds = dict(recipients["dest_kind"].value_counts().iter_rows())
    print(f"  {recipients['country'].n_unique()} countries, {kinds}")

    admin = args.server_url or embedded_server_url("postgres")
    name = f"seed_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = _with_db(admin, name)
    try:
        with psycopg.connect(url) as conn:
            migrate(conn)
            conn.commit()

        def load() -> dict:
            with psycopg.connect(url) as conn:
                return seed.load(conn, n, seed=args.seed, period=PERIOD,
                                 progress=lambda msg: print(f"  {msg}", flush=True))

        first = _timed(f"seed.load({n:,}) into an empty warehouse (generation included)", load)
        print(f"  added {first['recipients_added']:,} recipients, posted {first['earnings_posted']:,} earnings")
        again = _timed(f"seed.load({n:,}) again (nothing to add)", load)
        print(f"  added {again['recipients_added']:,} recipients, posted {again['earnings_posted']:,} earnings")
    finally:
        if args.keep:
            print(f"kept {url}")
        else:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
