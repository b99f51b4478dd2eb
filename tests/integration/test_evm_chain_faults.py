"""The chain misbehaves: a reorganisation drops mined payments, the node restarts mid-batch.

Each test has its own anvil. No payment is made twice: the same signed
transactions go out again, every item ends accepted (or settled) exactly once,
the ledger balances with the reversals, and the payees hold what they are owed.
"""

from __future__ import annotations

import time

import psycopg
import pytest

from payouts import ledger
from payouts.providers import registry
from payouts.submit import submit_batch
from payouts_sandbox.evm_chain import deploy_stablecoins, start_anvil
from tests_support import fresh_database

from evm_support import (CONN_ID, payee_address, poll_until_final, prepare_run, rpc, seed_wallet_payees,
                         set_connection, statuses, token_balance)


@pytest.fixture()
def warehouse(monkeypatch, tmp_path):
    url, drop = fresh_database("embedded")
    monkeypatch.setenv("PAYOUTS_WAREHOUSE_URL", url)
    monkeypatch.setenv("PAYOUTS_STATEMENTS_DIR", str(tmp_path / "statements"))
    yield url
    drop()


def _block(url: str) -> int:
    return int(rpc(url, "eth_blockNumber"), 16)


def _wait_blocks(url: str, n: int) -> None:
    target = _block(url) + n
    deadline = time.monotonic() + 30
    while _block(url) < target:
        assert time.monotonic() < deadline, "the node stopped producing blocks"
        time.sleep(0.2)


def _paid_exactly_once(conn, chain, tag, owed):
    for n, (asset, amount) in enumerate(owed):
        assert token_balance(chain.url, chain.tokens[asset]["address"], payee_address(tag, n)) == amount
    # Each item has one nonce; no second transaction was signed for any of them.
    assert conn.execute("SELECT count(*), count(DISTINCT nonce), count(DISTINCT idempotency_key)"
                        " FROM payouts.evm_transactions").fetchone() == (len(owed),) * 3
    assert ledger.unbalanced(conn) == []


def test_a_reorg_moves_accepted_items_back_and_the_same_transactions_pay_them_once(tmp_path, warehouse,
                                                                                   monkeypatch):
    from payouts.reconcile import run as recon

    tag = "reorg1"
    owed = [("USDC", 2_000_000), ("USDT", 3_000_000), ("USDC", 4_000_000)]
    with start_anvil(tmp_path / "anvil", block_time=1) as node:
        chain = deploy_stablecoins(node.url, confirmations=2)
        set_connection(monkeypatch, chain)
        with psycopg.connect(warehouse, autocommit=True) as conn:
            seed_wallet_payees(conn, tag, owed)
            run_id, batches = prepare_run(conn, tag)
            snapshot = rpc(node.url, "evm_snapshot")
            submit_batch(conn, registry.connector(CONN_ID), batches[0])
            poll_until_final(conn)
            assert statuses(conn, run_id) == {"accepted": len(owed)}
            sent = ledger.balance(conn, "clearing")
            # The chain drops every block since the snapshot: the payments are gone from it.
            assert rpc(node.url, "evm_revert", snapshot) is True
            for n, (asset, _) in enumerate(owed):
                assert token_balance(chain.url, chain.tokens[asset]["address"], payee_address(tag, n)) == 0
            _wait_blocks(node.url, 1)
            # The next statement fetch sees it: items back to submitted, sends reversed, bytes re-broadcast.
            recon.fetch_statements(conn, registry.connector(CONN_ID), CONN_ID)
            assert statuses(conn, run_id) == {"submitted": len(owed)}
            reasons = [r[-1]["code"] for r, in conn.execute(
                "SELECT reasons FROM payouts.payout_items WHERE run_id = %s", (run_id,)).fetchall()]
            assert reasons == ["CHAIN_REORG"] * len(owed)
            assert conn.execute("SELECT count(*) FROM ledger.transactions WHERE kind = 'unsend'").fetchone()[0] == 3
            assert ledger.balance(conn, "clearing") in ({}, {"USDC": 0, "USDT": 0})
            assert ledger.unbalanced(conn) == []

            poll_until_final(conn)
            assert statuses(conn, run_id) == {"accepted": len(owed)}
            assert ledger.balance(conn, "clearing") == sent  # sent once, net
            _paid_exactly_once(conn, chain, tag, owed)
            # The chain's own logs then settle them, with no break.
            recon.fetch_statements(conn, registry.connector(CONN_ID), CONN_ID)
            recon.load_files(conn, recon.pending_files(CONN_ID), CONN_ID)
            recon.match_pass(conn)
            assert statuses(conn, run_id) == {"settled": len(owed)}
            assert conn.execute("SELECT count(*) FROM recon.breaks").fetchone()[0] == 0
            fees = conn.execute("SELECT sum(amount_minor) FROM ledger.postings WHERE account = 'fees'"
                                " AND currency = 'ETH'").fetchone()[0]
            mined = conn.execute("SELECT sum(fee_wei) FROM payouts.evm_transactions").fetchone()[0]
            assert fees == mined  # the dropped blocks' gas reversed, the new blocks' posted
    assert not node.alive()


def test_the_node_restarted_mid_batch_keeps_its_chain_and_nothing_is_paid_twice(tmp_path, warehouse, monkeypatch):
    tag = "restart1"
    owed = [("USDC", 1_000_000 + n) for n in range(6)]
    with start_anvil(tmp_path / "anvil", block_time=1, state_file=tmp_path / "anvil-state.json") as node:
        chain = deploy_stablecoins(node.url, confirmations=2)
        set_connection(monkeypatch, chain)
        _wait_blocks(node.url, 1)
        with psycopg.connect(warehouse, autocommit=True) as conn:
            seed_wallet_payees(conn, tag, owed)
            run_id, batches = prepare_run(conn, tag)
            # Blocks stop: the batch's transactions wait in the node's pool when it goes down.
            rpc(node.url, "evm_setIntervalMining", 0)
            submit_batch(conn, registry.connector(CONN_ID), batches[0])
            assert statuses(conn, run_id) == {"submitted": len(owed)}
            node.restart()  # SIGTERM writes --state; the new process loads it
            assert _block(node.url) >= 1 and rpc(node.url, "eth_getCode", chain.tokens["USDC"]["address"],
                                                 "latest") != "0x"
            poll_until_final(conn)
            assert statuses(conn, run_id) == {"accepted": len(owed)}
            _paid_exactly_once(conn, chain, tag, owed)
            rebroadcast = conn.execute("SELECT min(broadcasts) FROM payouts.evm_transactions").fetchone()[0]
            assert rebroadcast >= 2  # the restarted node had lost its pool: the same bytes went out again
