"""Stablecoin payouts on a local chain: transfers per second, time to confirm and to reconcile.

    .venv/bin/python bench/evm_throughput.py                  # 10,000 USDC/USDT payouts on Ethereum
    .venv/bin/python bench/evm_throughput.py --items 1000

A fresh warehouse (embedded, or PAYOUTS_WAREHOUSE_URL's server) and an anvil
producing a block a second with the stablecoins deployed; the run's stages
without Airflow: snapshot, checks, approval, routing, then the crypto rail's
batches submitted through the evm connector (nonces allocated, signed, stored,
broadcast), polled until every payment has its confirmations, and the hot
wallet's Transfer logs fetched, loaded and matched. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT / "sandbox"), str(ROOT / "tests")]

CONN_ID = "payouts_evm_ethereum"


def seed(conn, items: int) -> None:
    from eth_account import Account
    from eth_utils import keccak

    recipients, postings, txns = [], [], []
    for n in range(items):
        rid = f"E{n:07d}"
        asset = "USDT" if n % 4 == 0 else "USDC"
        amount = 1_000_000 + (n * 7919) % 500_000_000
        address = Account.from_key(keccak(text=f"bench-payee-{n}")).address
        recipients.append((rid, f"Payee {n}", asset, address))
        txns.append((f"earn:bench:{rid}",))
        postings += [(f"earn:bench:{rid}", "earnings", rid, asset, amount),
                     (f"earn:bench:{rid}", "payable", rid, asset, -amount)]
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO payouts.recipients (recipient_id, name, country, currency, dest_kind,"
                        " wallet_address, network, kyc_status) VALUES (%s, %s, 'DE', %s, 'wallet', %s, 'ethereum',"
                        " 'verified')", recipients)
        cur.executemany("INSERT INTO ledger.transactions (txn_id, kind) VALUES (%s, 'earning')", txns)
        cur.executemany("INSERT INTO ledger.postings (txn_id, account, recipient_id, currency, amount_minor)"
                        " VALUES (%s, %s, %s, %s, %s)", postings)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=2_000)
    args = parser.parse_args()

    import psycopg

    from payouts.payout_run import approval
    from payouts.payout_run import stages as payout_run
    from payouts.providers import registry
    from payouts.reconcile import run as recon
    from payouts.payout_run.submit import poll_pending, submit_batch
    from payouts_sandbox.evm_chain import deploy_stablecoins, start_anvil
    from tests_support import fresh_database

    timings: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-evm-") as tmp:
        os.environ.setdefault("PAYOUTS_DATA_DIR", str(Path(tmp) / "data"))
        os.environ["PAYOUTS_STATEMENTS_URL"] = (Path(tmp) / "statements").as_uri()
        url, drop = fresh_database("server" if os.environ.get("PAYOUTS_TEST_SERVER_URL") else "embedded")
        os.environ["PAYOUTS_WAREHOUSE_URL"] = url
        try:
            with start_anvil(Path(tmp) / "anvil", block_time=1) as node:
                chain = deploy_stablecoins(node.url, supply_major=10**10, confirmations=2)
                os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = chain.connection_json()
                os.environ["PAYOUTS_RAIL_PROVIDERS"] = f"crypto={CONN_ID}"
                with psycopg.connect(url, autocommit=True) as conn:
                    started = time.perf_counter()
                    seed(conn, args.items)
                    run_id = payout_run.open_run(conn, "bench-evm", "bench", {})
                    payout_run.snapshot(conn, run_id)
                    payout_run.check_items(conn, run_id)
                    approval.approve(conn, run_id, "bench", "bench")
                    plan = payout_run.route_and_plan(conn, run_id, batch_size=args.batch_size)
                    timings["prepare_s"] = time.perf_counter() - started

                    started = time.perf_counter()
                    first_block = int(node.rpc("eth_blockNumber"), 16)
                    sent = 0
                    for batch in plan.get("crypto", []):
                        connector = registry.connector(CONN_ID)
                        sent += submit_batch(conn, connector, batch).sent
                        connector.close()
                    timings["submit_s"] = time.perf_counter() - started

                    started = time.perf_counter()
                    polls = 0
                    while True:
                        polls += 1
                        counts = poll_pending(conn, registry.connector)
                        if counts["pending"] == 0:
                            break
                        time.sleep(1)
                    timings["confirm_s"] = time.perf_counter() - started
                    last_block = int(node.rpc("eth_blockNumber"), 16)

                    started = time.perf_counter()
                    connector = registry.connector(CONN_ID)
                    recon.fetch_statements(conn, connector, CONN_ID)
                    connector.close()
                    timings["fetch_logs_s"] = time.perf_counter() - started
                    started = time.perf_counter()
                    recon.load_files(conn, recon.pending_files(CONN_ID), CONN_ID)
                    matched = recon.match_pass(conn)
                    timings["load_match_s"] = time.perf_counter() - started
                    statuses = dict(conn.execute("SELECT status, count(*) FROM payouts.payout_items GROUP BY 1")
                                    .fetchall())
                    breaks = conn.execute("SELECT count(*) FROM recon.breaks").fetchone()[0]
                    rejected = dict(conn.execute(
                        "SELECT coalesce(a.reason_code, '-') || ' ' || coalesce(t.revert_reason, ''), count(*)"
                        " FROM payouts.attempts a LEFT JOIN payouts.evm_transactions t ON t.idempotency_key ="
                        " a.idempotency_key AND t.receipt_status IS NOT NULL WHERE a.status = 'rejected'"
                        " GROUP BY 1").fetchall())
                    replaced = conn.execute("SELECT count(*) FROM payouts.evm_transactions"
                                            " WHERE replaces IS NOT NULL").fetchone()[0]
        finally:
            drop()
    result = {
        "items": args.items, "sent": sent, "statuses": statuses, "matched": matched["matched"], "breaks": breaks,
        "rejected": rejected, "replaced_stuck": replaced,
        "blocks": last_block - first_block, "polls": polls,
        **{k: round(v, 2) for k, v in timings.items()},
        "transfers_per_s_submit": round(sent / timings["submit_s"], 1),
        "transfers_per_s_to_confirmed": round(sent / (timings["submit_s"] + timings["confirm_s"]), 1),
    }
    print(json.dumps(result))
    return 0 if statuses.get("settled") == sent and breaks == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
