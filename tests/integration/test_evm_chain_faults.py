"""The chain misbehaves: a reorganisation drops mined payments, the node restarts mid-batch.

Each test has its own anvil. No payment is made twice: the same signed
transactions go out again, every item ends accepted (or settled) exactly once,
the ledger balances with the reversals, and the payees hold what they are owed.
"""

from __future__ import annotations

import time
from contextlib import contextmanager

import psycopg
import pytest

from payouts.core import ledger
from payouts.providers import registry
from payouts.payout_run.submit import submit_batch
from payouts_sandbox.evm_chain import deploy_stablecoins, start_anvil
from tests_support import fresh_database

from evm_support import (CONN_ID, payee_address, poll_until_final, prepare_run, rpc, seed_wallet_payees,
                         set_connection, statuses, token_balance)


@pytest.fixture()
def warehouse(monkeypatch, tmp_path):
    url, drop = fresh_database("embedded")
    monkeypatch.setenv("PAYOUTS_WAREHOUSE_URL", url)
    monkeypatch.setenv("PAYOUTS_STATEMENTS_URL", (tmp_path / "statements").as_uri())
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


@contextmanager
def _paid_on_a_fresh_chain(tmp_path, warehouse, monkeypatch, tag, owed):
    """Its own anvil and tokens, the payees of `owed`, their run sent after a chain snapshot and
    polled until final: (node, chain, conn, run_id, snapshot). The node is gone afterwards."""
    with start_anvil(tmp_path / "anvil", block_time=0.25) as node:
        chain = deploy_stablecoins(node.url, confirmations=2)
        set_connection(monkeypatch, chain)
        with psycopg.connect(warehouse, autocommit=True) as conn:
            seed_wallet_payees(conn, tag, owed)
            run_id, batches = prepare_run(conn, tag)
            snapshot = rpc(node.url, "evm_snapshot")
            submit_batch(conn, registry.connector(CONN_ID), batches[0])
            poll_until_final(conn)
            yield node, chain, conn, run_id, snapshot
    assert not node.alive()


def _reconcile(conn) -> tuple[list[dict], dict]:
    """A reconciliation pass over the chain's logs: fetch, load, match."""
    from payouts.reconcile import run as recon

    recon.fetch_statements(conn, registry.connector(CONN_ID), CONN_ID)
    loaded = recon.load_files(conn, recon.pending_files(CONN_ID), CONN_ID)
    return loaded, recon.match_pass(conn)


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
    with _paid_on_a_fresh_chain(tmp_path, warehouse, monkeypatch, tag, owed) as (node, chain, conn, run_id, snapshot):
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
        _reconcile(conn)
        assert statuses(conn, run_id) == {"settled": len(owed)}
        assert conn.execute("SELECT count(*) FROM recon.breaks").fetchone()[0] == 0
        fees = conn.execute("SELECT sum(amount_minor) FROM ledger.postings WHERE account = 'fees'"
                            " AND currency = 'ETH'").fetchone()[0]
        mined = conn.execute("SELECT sum(fee_wei) FROM payouts.evm_transactions").fetchone()[0]
        assert fees == mined  # the dropped blocks' gas reversed, the new blocks' posted


def test_a_reorg_after_settlement_settles_again_by_the_new_block_with_no_break(tmp_path, warehouse, monkeypatch):
    from payouts.reconcile import run as recon

    tag = "reorg2"
    owed = [("USDC", 2_500_000), ("USDT", 3_500_000)]
    with _paid_on_a_fresh_chain(tmp_path, warehouse, monkeypatch, tag, owed) as (node, chain, conn, run_id, snapshot):
        assert _reconcile(conn)[1]["matched"] == len(owed)
        assert statuses(conn, run_id) == {"settled": len(owed)}
        # The chain forks below the settled payments' block and the new chain is shorter.
        assert rpc(node.url, "evm_revert", snapshot) is True
        _wait_blocks(node.url, 1)
        recon.fetch_statements(conn, registry.connector(CONN_ID), CONN_ID)
        assert statuses(conn, run_id) == {"submitted": len(owed)}
        assert conn.execute("SELECT count(*) FROM payouts.evm_transfer_logs WHERE withdrawn_at IS NOT NULL"
                            ).fetchone()[0] == len(owed)
        assert conn.execute("SELECT count(*) FROM ledger.transactions WHERE kind = 'unsettle'"
                            ).fetchone()[0] == len(owed)
        poll_until_final(conn)
        assert statuses(conn, run_id) == {"accepted": len(owed)}
        _paid_exactly_once(conn, chain, tag, owed)
        # The statement is read again from below the fork: the logs of the new blocks are new lines.
        _wait_blocks(node.url, 3)
        loaded, _ = _reconcile(conn)
        assert sum(f["lines"] for f in loaded if f["loaded"]) == len(owed)
        # The withdrawn lines no longer count: the new block's lines settle the items again, once.
        assert conn.execute("SELECT count(*) FROM recon.breaks").fetchone()[0] == 0
        assert statuses(conn, run_id) == {"settled": len(owed)}
        withdrawn = conn.execute("SELECT l.status, count(m.line_id) FROM recon.statement_lines l"
                                 " LEFT JOIN recon.matches m USING (line_id) GROUP BY 1").fetchall()
        assert sorted(withdrawn) == [("booked", len(owed)), ("withdrawn", 0)]
        # Sent, reversed, sent again; settled, reversed, settled again: paid once, nothing left in clearing.
        assert conn.execute("SELECT kind, count(*) FROM ledger.transactions WHERE kind IN"
                            " ('send', 'unsettle', 'settle') GROUP BY 1 ORDER BY 1").fetchall() == [
            ("send", 2 * len(owed)), ("settle", 2 * len(owed)), ("unsettle", len(owed))]
        assert ledger.unbalanced(conn) == []
        assert ledger.balance(conn, "clearing") in ({}, {"USDC": 0, "USDT": 0})
        _paid_exactly_once(conn, chain, tag, owed)
        # A later pass changes nothing.
        assert _reconcile(conn)[1]["matched"] == 0
        assert statuses(conn, run_id) == {"settled": len(owed)}


def test_the_node_restarted_mid_batch_keeps_its_chain_and_nothing_is_paid_twice(tmp_path, warehouse, monkeypatch):
    tag = "restart1"
    owed = [("USDC", 1_000_000 + n) for n in range(6)]
    with start_anvil(tmp_path / "anvil", block_time=0.25, state_file=tmp_path / "anvil-state.json") as node:
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


def test_a_stuck_transaction_is_replaced_by_the_poll_and_an_abandoned_nonce_is_filled(tmp_path, warehouse,
                                                                                      monkeypatch):
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from payouts.payout_run.submit import poll_pending

    tag = "stuck1"
    owed = [("USDC", 5_000_000), ("USDC", 6_000_000)]
    with start_anvil(tmp_path / "anvil", block_time=0.25) as node:
        chain = deploy_stablecoins(node.url, confirmations=2)
        set_connection(monkeypatch, chain, stuck_after_blocks=3)

        def mine(n: int) -> None:
            for _ in range(n):
                rpc(node.url, "evm_mine")

        with psycopg.connect(warehouse, autocommit=True) as conn:
            seed_wallet_payees(conn, tag, owed)
            run_id, batches = prepare_run(conn, tag)
            rpc(node.url, "evm_setIntervalMining", 0)  # blocks only when the test mines them
            submit_batch(conn, registry.connector(CONN_ID), batches[0])
            signed = dict(conn.execute("SELECT item_id, tx_hash FROM payouts.evm_transactions").fetchall())
            paid_item, abandoned_item = sorted(signed)
            # The operator abandons the second payment: its nonce is filled with a transfer to self.
            project = Path(__file__).resolve().parents[2]
            done = subprocess.run([sys.executable, "-m", "payouts_tooling.cli", "evm", "abandon", abandoned_item],
                                  env={**os.environ, "PYTHONPATH": str(project / "plugins")},
                                  capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, done.stderr
            filler = json.loads(done.stdout)
            assert filler["replaced"] == signed[abandoned_item] and filler["nonce"] == conn.execute(
                "SELECT nonce FROM payouts.evm_transactions WHERE tx_hash = %s", (signed[abandoned_item],)).fetchone()[0]
            # The node forgets the first payment and gas prices rise far above what it offered:
            # re-broadcast, it is refused as underpriced, block after block.
            offered = conn.execute("SELECT max_fee_per_gas FROM payouts.evm_transactions WHERE tx_hash = %s",
                                   (signed[paid_item],)).fetchone()[0]
            rpc(node.url, "anvil_dropTransaction", signed[paid_item])
            rpc(node.url, "anvil_setNextBlockBaseFeePerGas", hex(int(offered) * 20))
            mine(2)
            assert poll_pending(conn, registry.connector)["pending"] == 2
            refused = conn.execute("SELECT last_broadcast_error FROM payouts.evm_transactions WHERE tx_hash = %s",
                                   (signed[paid_item],)).fetchone()[0]
            assert "base fee" in refused
            # Three blocks after it was signed, the poll replaces it: same nonce, both fee caps raised.
            mine(2)
            assert poll_pending(conn, registry.connector)["pending"] == 2
            mine(3)
            poll_until_final(conn, timeout=5)
            assert statuses(conn, run_id) == {"accepted": 1, "rejected": 1}
            hashes = conn.execute("SELECT tx_hash, receipt_status, replaces, max_fee_per_gas, max_priority_fee_per_gas"
                                  " FROM payouts.evm_transactions WHERE item_id = %s ORDER BY signed_at",
                                  (paid_item,)).fetchall()
            assert len(hashes) == 2 and hashes[0][1] is None and hashes[1][1] == 1
            assert hashes[1][2] == hashes[0][0]
            assert hashes[1][3] * 100 >= hashes[0][3] * 110 and hashes[1][4] * 100 >= hashes[0][4] * 110
            assert token_balance(chain.url, chain.tokens["USDC"]["address"], payee_address(tag, 0)) == 5_000_000
            assert token_balance(chain.url, chain.tokens["USDC"]["address"], payee_address(tag, 1)) == 0
            reason = conn.execute("SELECT revert_reason FROM payouts.evm_transactions WHERE receipt_status = 1"
                                  " AND purpose = 'filler'").fetchone()[0]
            assert reason == "the nonce was filled: the payment was abandoned"
            # The abandoned item's money is owed again; the ledger balances; no nonce was skipped.
            assert conn.execute("SELECT count(*) FROM ledger.transactions WHERE txn_id = %s",
                                (f"release:{abandoned_item}",)).fetchone()[0] == 1
            assert ledger.unbalanced(conn) == []
            from eth_account import Account

            hot = Account.from_key(chain.hot_wallet_key).address
            assert int(rpc(node.url, "eth_getTransactionCount", hot, "latest"), 16) == len(owed)
