"""A local anvil with the stablecoins deployed, and a warehouse seeded with wallet payees."""

from __future__ import annotations

import json
import time
import uuid

import psycopg

from payouts.payout_run import approval
from payouts.payout_run import stages as payout_run
from payouts.payout_run.submit import poll_pending
from payouts.providers import registry

CONN_ID = "payouts_evm_ethereum"


def payee_address(tag: str, n: int) -> str:
    from eth_account import Account
    from eth_utils import keccak

    return Account.from_key(keccak(text=f"payee-{tag}-{n}")).address


def seed_wallet_payees(conn: psycopg.Connection, tag: str, owed: list[tuple[str, int]],
                       network: str = "ethereum") -> list[str]:
    """One verified wallet payee per (asset, minor units owed); their recipient ids."""
    ids = []
    period = f"test-{tag}"
    for n, (asset, amount) in enumerate(owed):
        rid = f"W{n:03d}-{tag}"
        conn.execute(
            "INSERT INTO payouts.recipients (recipient_id, name, country, currency, dest_kind, wallet_address,"
            " network, kyc_status) VALUES (%s, %s, 'DE', %s, 'wallet', %s, %s, 'verified')",
            (rid, f"Payee {n}", asset, payee_address(tag, n), network))
        txn = f"earn:{period}:{rid}"
        conn.execute("INSERT INTO ledger.transactions (txn_id, kind) VALUES (%s, 'earning')", (txn,))
        conn.execute("INSERT INTO ledger.postings (txn_id, account, recipient_id, currency, amount_minor) VALUES"
                     " (%s, 'earnings', %s, %s, %s), (%s, 'payable', %s, %s, %s)",
                     (txn, rid, asset, amount, txn, rid, asset, -amount))
        ids.append(rid)
    return ids


def prepare_run(conn: psycopg.Connection, tag: str, batch_size: int = 1000):
    run_id = payout_run.open_run(conn, f"dag-run-{tag}-{uuid.uuid4().hex[:4]}", "test", {"tag": tag})
    payout_run.snapshot(conn, run_id)
    payout_run.check_items(conn, run_id)
    approval.approve(conn, run_id, "tester", "test")
    plan = payout_run.route_and_plan(conn, run_id, batch_size=batch_size)
    return run_id, [b for rail_batches in plan.values() for b in rail_batches]


def statuses(conn: psycopg.Connection, run_id: str) -> dict[str, int]:
    return dict(conn.execute("SELECT status, count(*) FROM payouts.payout_items WHERE run_id = %s GROUP BY 1",
                             (run_id,)).fetchall())


def poll_until_final(conn: psycopg.Connection, timeout: float = 60.0) -> dict:
    """The poll_payments DAG's work, repeated until nothing is pending (blocks come every second)."""
    deadline = time.monotonic() + timeout
    counts = {}
    while time.monotonic() < deadline:
        counts = poll_pending(conn, registry.connector)
        if counts["pending"] == 0:
            return counts
        time.sleep(0.2)
    raise AssertionError(f"still pending after {timeout}s: {counts}")


def set_connection(monkeypatch, chain, **extra) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", chain.connection_json(**extra))
    monkeypatch.setenv("PAYOUTS_RAIL_PROVIDERS", f"crypto={CONN_ID}")


def token_balance(url: str, token: str, address: str) -> int:
    from web3 import Web3

    from payouts.providers.evm.connector import ERC20_ABI

    w3 = Web3(Web3.HTTPProvider(url))
    return w3.eth.contract(address=token, abi=ERC20_ABI).functions.balanceOf(address).call()


def rpc(url: str, method: str, *params):
    import httpx

    body = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)},
                      timeout=30).json()
    if "error" in body:
        raise RuntimeError(json.dumps(body["error"]))
    return body["result"]
