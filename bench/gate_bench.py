"""Time the data-quality gate on a large run (default 1,000,000 items).

Seeds a throw-away database on the embedded PostgreSQL (or on --server-url's
server) server-side with generate_series, runs `run_gate` twice (the first call
pays the GX import) and drops the database unless --keep.

    .venv/bin/python bench/gate_bench.py [--items 1000000] [--prior-items 1000000]
"""

from __future__ import annotations

import argparse
import json
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

from payouts.warehouse import embedded_server_url, migrate  # noqa: E402

RUN_ID = "R000002"
PRIOR_RUN_ID = "R000001"
CURRENCIES = "(ARRAY['EUR','USD','GBP','USDC','JPY'])"

SEED_RECIPIENTS = f"""
INSERT INTO payouts.recipients (recipient_id, name, country, currency, dest_kind, iban)
SELECT 'B' || g, 'bench ' || g, 'DE', {CURRENCIES}[1 + g % 5], 'iban', 'DE89370400440532013000'
FROM generate_series(0, 9999) g
"""

# One run: its items and, as the snapshot posts them, their reservations.
SEED_RUN = [
    "INSERT INTO payouts.runs (run_id, dag_run_id, trigger) VALUES (%(run)s, 'bench-' || %(run)s, 'bench')",
    f"""INSERT INTO payouts.payout_items (item_id, run_id, recipient_id, currency, amount_minor, status)
SELECT %(run)s || '-' || lpad(g::text, 8, '0'), %(run)s, 'B' || (g %% 10000), {CURRENCIES}[1 + (g %% 10000) %% 5],
       1 + (g::bigint * 7919) %% 10000000, 'snapshotted'
FROM generate_series(1, %(n)s) g""",
    """INSERT INTO ledger.transactions (txn_id, kind)
SELECT 'reserve:' || item_id, 'reserve' FROM payouts.payout_items WHERE run_id = %(run)s""",
    """INSERT INTO ledger.postings (txn_id, account, recipient_id, currency, amount_minor)
SELECT 'reserve:' || i.item_id, a.account, i.recipient_id, i.currency,
       CASE a.account WHEN 'reserved' THEN -i.amount_minor ELSE i.amount_minor END
FROM payouts.payout_items i CROSS JOIN (VALUES ('reserved'), ('payable')) a (account)
WHERE i.run_id = %(run)s""",
]


def _seed_run(conn: psycopg.Connection, run_id: str, n: int) -> None:
    for statement in SEED_RUN:
        conn.execute(statement, {"run": run_id, "n": n})


def _with_db(url: str, database: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + database))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--prior-items", type=int, default=1_000_000,
                        help="items of an earlier run already in the ledger (a realistic postings table)")
    parser.add_argument("--server-url", help="a libpq URL of another server's 'postgres' database")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    admin = args.server_url or embedded_server_url("postgres")
    name = f"gate_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = _with_db(admin, name)
    try:
        started = time.perf_counter()
        with psycopg.connect(url) as conn:
            migrate(conn)
            conn.execute(SEED_RECIPIENTS)
            if args.prior_items:
                _seed_run(conn, PRIOR_RUN_ID, args.prior_items)
            _seed_run(conn, RUN_ID, args.items)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
        print(f"seeded {args.items:,} items (+{args.prior_items:,} prior) in {time.perf_counter() - started:.1f} s")

        from payouts.checks.gate import run_gate

        for label in ("first call (includes the GX import)", "second call"):
            result = run_gate(url, RUN_ID)
            print(f"run_gate {label}: {result.duration_s:.2f} s, success={result.success}, "
                  f"{len(result.expectations)} expectations")
        if not result.success:
            print(json.dumps([e for e in result.expectations if not e["success"]], indent=1))
    finally:
        if args.keep:
            print(f"kept {url}")
        else:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
