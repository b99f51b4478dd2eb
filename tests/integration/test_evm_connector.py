"""The evm connector on a real chain (anvil, producing four blocks a second) and a real warehouse.

Payments are signed ERC-20 transfers: nonces from the warehouse starting at the
node's pending nonce, the raw transaction stored before it leaves, accepted only
after the confirmations, rejected with the token's revert reason. A submit task
killed after its broadcast and re-run sends nothing new; a connection that does
not fit the chain stops before anything is signed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import psycopg
import pytest

from payouts.core import ledger
from payouts.providers import registry
from payouts.providers.contract import ConnectorConfigError
from payouts.payout_run.submit import submit_batch
from payouts_sandbox.evm_chain import DEPLOYER_KEY, call_owner, deploy_stablecoins, start_anvil
from tests_support import fresh_database

from evm_support import (CONN_ID, payee_address, poll_until_final, prepare_run, rpc, seed_wallet_payees,
                         set_connection, statuses, token_balance)

PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    with start_anvil(tmp_path_factory.mktemp("anvil"), block_time=0.25) as node:
        local = deploy_stablecoins(node.url, confirmations=2)
        local.node = node
        yield local
    assert not node.alive()


@pytest.fixture()
def warehouse(monkeypatch):
    url, drop = fresh_database("embedded")
    monkeypatch.setenv("PAYOUTS_WAREHOUSE_URL", url)
    yield url
    drop()


def _tag(request) -> str:
    import hashlib

    return hashlib.sha1(request.node.name.encode()).hexdigest()[:6]


def _hot_nonce(chain) -> int:
    return int(rpc(chain.url, "eth_getTransactionCount", _hot(chain), "pending"), 16)


def _hot(chain) -> str:
    from eth_account import Account

    return Account.from_key(chain.hot_wallet_key).address


def test_pays_on_chain_accepted_after_confirmations_with_gas_posted(chain, warehouse, monkeypatch, request):
    set_connection(monkeypatch, chain)
    tag = _tag(request)
    owed = [("USDC", 25_000_000), ("USDC", 1_230_000), ("USDT", 7_000_001), ("USDC", 1)]
    with psycopg.connect(warehouse, autocommit=True) as conn:
        seed_wallet_payees(conn, tag, owed)
        run_id, batches = prepare_run(conn, tag)
        assert [b["rail"] for b in batches] == ["crypto"]
        nonce_before = _hot_nonce(chain)
        outcome = submit_batch(conn, registry.connector(CONN_ID), batches[0])
        assert outcome.sent == outcome.pending == len(owed)
        assert statuses(conn, run_id) == {"submitted": len(owed)}
        rows = conn.execute("SELECT nonce, raw_tx, broadcasts, token_amount FROM payouts.evm_transactions"
                            " ORDER BY nonce").fetchall()
        # Consecutive nonces from the node's pending nonce; stored, then broadcast once.
        assert [r[0] for r in rows] == list(range(nonce_before, nonce_before + len(owed)))
        assert all(r[1].startswith("0x02") and r[2] == 1 for r in rows)

        counts = poll_until_final(conn)
        assert counts["awaiting_status"] == 0
        assert statuses(conn, run_id) == {"accepted": len(owed)}
        for n, (asset, amount) in enumerate(owed):
            assert token_balance(chain.url, chain.tokens[asset]["address"], payee_address(tag, n)) == amount
        # Gas: one fee per transaction, in ETH, from cash to fees; the ledger balances.
        fees = conn.execute("SELECT sum(fee_wei), count(*) FROM payouts.evm_transactions"
                            " WHERE receipt_status = 1").fetchone()
        assert fees[1] == len(owed) and fees[0] > 0
        assert ledger.balance(conn, "fees", "ETH") == {"ETH": int(fees[0])}
        assert ledger.unbalanced(conn) == []
        # Accepted only once deep enough: every accepted receipt has the confirmations behind it.
        accepted_at = conn.execute("SELECT max(block_number) FROM payouts.evm_transactions").fetchone()[0]
        assert int(rpc(chain.url, "eth_blockNumber"), 16) - accepted_at + 1 >= chain.confirmations
        assert _hot_nonce(chain) == nonce_before + len(owed)


_KILL_AFTER_BROADCAST = textwrap.dedent("""
    import os, signal, sys, psycopg
    from payouts.payout_run import submit
    from payouts.providers import registry
    def killed(*args, **kwargs):  # the worker dies after the broadcast, before any answer is recorded
        os.kill(os.getpid(), signal.SIGKILL)
    submit.record_results = killed
    batch = {"run_id": sys.argv[1], "rail": "crypto", "batch_no": 0}
    with psycopg.connect(os.environ["PAYOUTS_WAREHOUSE_URL"], autocommit=True) as conn:
        submit.submit_batch(conn, registry.connector("payouts_evm_ethereum"), batch)
""")


def test_a_task_killed_after_broadcast_and_rerun_sends_nothing_new(chain, warehouse, monkeypatch, request):
    set_connection(monkeypatch, chain)
    tag = _tag(request)
    owed = [("USDC", 5_000_000), ("USDT", 6_000_000), ("USDC", 7_000_000)]
    with psycopg.connect(warehouse, autocommit=True) as conn:
        seed_wallet_payees(conn, tag, owed)
        run_id, batches = prepare_run(conn, tag)
        nonce_before = _hot_nonce(chain)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PROJECT / "plugins"), str(PROJECT / "sandbox")])}
        done = subprocess.run([sys.executable, "-c", _KILL_AFTER_BROADCAST, run_id], env=env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
        signed = conn.execute("SELECT idempotency_key, tx_hash FROM payouts.evm_transactions").fetchall()
        assert len(signed) == len(owed)
        # Nothing recorded: the attempts are still 'sending', the items 'submitted'.
        assert conn.execute("SELECT DISTINCT status FROM payouts.attempts").fetchall() == [("sending",)]

        # The task is cleared and re-run, after its transactions were mined: the same bytes
        # go out again ("nonce too low" / "already known"), nothing new is signed.
        poll_blocks = int(rpc(chain.url, "eth_blockNumber"), 16) + 2
        while int(rpc(chain.url, "eth_blockNumber"), 16) < poll_blocks:
            pass
        outcome = submit_batch(conn, registry.connector(CONN_ID), batches[0])
        assert outcome.pending == len(owed)
        assert conn.execute("SELECT idempotency_key, tx_hash FROM payouts.evm_transactions").fetchall() == signed
        errors = [e for e, in conn.execute("SELECT last_broadcast_error FROM payouts.evm_transactions").fetchall()]
        assert all(e is None or "nonce too low" in e or "already" in e for e in errors), errors
        poll_until_final(conn)
        assert statuses(conn, run_id) == {"accepted": len(owed)}
        assert _hot_nonce(chain) == nonce_before + len(owed)
        for n, (asset, amount) in enumerate(owed):
            assert token_balance(chain.url, chain.tokens[asset]["address"], payee_address(tag, n)) == amount


def test_a_blacklist_revert_rejects_and_blocks_the_destination(chain, warehouse, monkeypatch, request):
    set_connection(monkeypatch, chain)
    tag = _tag(request)
    owed = [("USDC", 3_000_000), ("USDC", 4_000_000)]
    call_owner(chain.url, chain.tokens["USDC"]["address"], "blacklist", [payee_address(tag, 1)], DEPLOYER_KEY)
    with psycopg.connect(warehouse, autocommit=True) as conn:
        seed_wallet_payees(conn, tag, owed)
        run_id, batches = prepare_run(conn, tag)
        submit_batch(conn, registry.connector(CONN_ID), batches[0])
        poll_until_final(conn)
        assert statuses(conn, run_id) == {"accepted": 1, "rejected": 1}
        reason, status, fee = conn.execute("SELECT revert_reason, receipt_status, fee_wei FROM"
                                           " payouts.evm_transactions WHERE to_address = %s",
                                           (payee_address(tag, 1),)).fetchone()
        assert status == 0 and reason == "Blacklistable: account is blacklisted" and fee > 0
        blocked = conn.execute("SELECT destination_blocked_reason FROM payouts.recipients WHERE recipient_id = %s",
                               (f"W001-{tag}",)).fetchone()[0]
        assert json.loads(blocked)["reason_code"] == "AC06" and json.loads(blocked)["event"] == "rejected"
        code = conn.execute("SELECT reason_code FROM payouts.attempts WHERE item_id LIKE %s AND status = 'rejected'",
                            (f"{run_id}%",)).fetchone()[0]
        assert code == "AC06"
        # The reverted transaction paid gas too: posted, and the released money is owed again.
        assert ledger.balance(conn, "fees", "ETH")["ETH"] == int(
            conn.execute("SELECT sum(fee_wei) FROM payouts.evm_transactions").fetchone()[0])
        assert ledger.unbalanced(conn) == []


# -- a connection that does not fit the chain: one line, nothing signed ------------------------

def _bad_connection(chain, case: str) -> dict:
    from eth_account import Account

    good = chain.connection()
    if case == "chain_id_mismatch":
        good["extra"]["chain_id"] = 137
    elif case == "token_not_a_contract":
        good["extra"]["tokens"]["USDC"]["address"] = payee_address("nobody", 0)
    elif case == "wrong_key":
        good["extra"]["wallet"] = Account.from_key(DEPLOYER_KEY).address
    elif case == "malformed_key":
        good["password"] = "0x1234"
    return good


BAD = {
    "chain_id_mismatch": "connection 'payouts_evm_ethereum': the node at {url} is chain 1, the connection says"
                         " chain 137; nothing is signed",
    "token_not_a_contract": "connection 'payouts_evm_ethereum': token USDC at {addr} is not a contract on chain 1;"
                            " nothing is signed",
    "wrong_key": "connection 'payouts_evm_ethereum': its key signs for {hot}, not for the hot wallet {deployer}"
                 " named in extra 'wallet'",
    "malformed_key": "connection 'payouts_evm_ethereum': its password is not a valid secp256k1 private key"
                     " (0x + 64 hex digits)",
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_connection_that_does_not_fit_stops_before_signing(case, chain, warehouse, monkeypatch, request):
    from eth_account import Account

    bad = _bad_connection(chain, case)
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(bad))
    monkeypatch.setenv("PAYOUTS_RAIL_PROVIDERS", f"crypto={CONN_ID}")
    expected = BAD[case].format(url=chain.url, addr=payee_address("nobody", 0), hot=_hot(chain),
                                deployer=Account.from_key(DEPLOYER_KEY).address)
    tag = _tag(request)
    with psycopg.connect(warehouse, autocommit=True) as conn:
        seed_wallet_payees(conn, tag, [("USDC", 1_000_000)])
        run_id, batches = prepare_run(conn, tag)
        nonce_before = _hot_nonce(chain)
        with pytest.raises(ConnectorConfigError) as caught:
            submit_batch(conn, registry.connector(CONN_ID), batches[0])
        assert str(caught.value) == expected and "\n" not in str(caught.value)
        assert conn.execute("SELECT count(*) FROM payouts.evm_transactions").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM payouts.attempts").fetchone()[0] == 0
        assert statuses(conn, run_id) == {"approved": 1}
        assert _hot_nonce(chain) == nonce_before


def test_an_empty_hot_wallet_pauses_the_rail_before_signing(chain, warehouse, monkeypatch, request):
    from eth_account import Account
    from eth_utils import keccak

    empty_key = "0x" + keccak(text=f"empty-{request.node.name}").hex()
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps({**chain.connection(), "password": empty_key}))
    monkeypatch.setenv("PAYOUTS_RAIL_PROVIDERS", f"crypto={CONN_ID}")
    tag = _tag(request)
    with psycopg.connect(warehouse, autocommit=True) as conn:
        seed_wallet_payees(conn, tag, [("USDC", 1_000_000)])
        run_id, batches = prepare_run(conn, tag)
        outcome = submit_batch(conn, registry.connector(CONN_ID), batches[0])
        assert outcome.paused == 1 and outcome.sent == 0
        assert statuses(conn, run_id) == {"held": 1}
        (reason,) = conn.execute("SELECT reason FROM payouts.stops WHERE lifted_at IS NULL").fetchone()
        # Neither tokens nor gas: the gas is named first (nothing can be sent without it).
        assert reason.startswith("crypto gas: ETH for gas: ") and reason.endswith(
            f" needed for 1 transfers, the hot wallet {Account.from_key(empty_key).address} has 0.000000000000000000")
        assert conn.execute("SELECT count(*) FROM payouts.evm_transactions").fetchone()[0] == 0
        assert int(rpc(chain.url, "eth_getTransactionCount", Account.from_key(empty_key).address, "pending"), 16) == 0


def test_the_rail_stop_names_the_gas_when_only_gas_is_short_and_the_token_when_only_tokens_are(
        chain, warehouse, monkeypatch, request):
    from eth_account import Account
    from eth_utils import keccak

    from payouts.payout_run.stops import lift_stop

    monkeypatch.setenv("PAYOUTS_RAIL_PROVIDERS", f"crypto={CONN_ID}")
    tag = _tag(request)
    tokens_only = Account.from_key("0x" + keccak(text=f"tokens-{request.node.name}").hex())
    gas_only = Account.from_key("0x" + keccak(text=f"gas-{request.node.name}").hex())
    call_owner(chain.url, chain.tokens["USDC"]["address"], "mint", [tokens_only.address, 50_000_000])
    rpc(chain.url, "anvil_setBalance", gas_only.address, hex(10**18))
    with psycopg.connect(warehouse, autocommit=True) as conn:
        reasons = {}
        for name, account in (("tokens_only", tokens_only), ("gas_only", gas_only)):
            monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}",
                               json.dumps({**chain.connection(), "password": "0x" + account.key.hex().removeprefix("0x")}))
            seed_wallet_payees(conn, f"{tag}{name[0]}", [("USDC", 1_000_000), ("USDC", 2_000_000)])
            run_id, batches = prepare_run(conn, f"{tag}{name[0]}")
            outcome = submit_batch(conn, registry.connector(CONN_ID), batches[0])
            assert outcome.paused == 2 and outcome.sent == 0
            assert statuses(conn, run_id) == {"held": 2}
            (reasons[name],) = conn.execute("SELECT reason FROM payouts.stops WHERE lifted_at IS NULL").fetchone()
            assert lift_stop(conn, "rail", "crypto", "funding", "treasury") == 1
            assert int(rpc(chain.url, "eth_getTransactionCount", account.address, "pending"), 16) == 0
        assert reasons["tokens_only"].startswith("crypto gas: ETH for gas: ")
        assert reasons["tokens_only"].endswith(f" needed for 2 transfers, the hot wallet {tokens_only.address}"
                                               " has 0.000000000000000000")
        assert reasons["gas_only"] == "crypto USDC: batch needs 3000000 minor units, the prefunded balance has 0"
        assert conn.execute("SELECT count(*) FROM payouts.evm_transactions").fetchone()[0] == 0


def test_the_hot_wallet_cap_and_the_low_balance_alerts(chain, warehouse, monkeypatch, request):
    import logging

    from payouts.core import money
    from payouts.payout_run.stops import lift_stop

    tag = _tag(request)
    usdc = chain.tokens["USDC"]["address"]
    held_usdc = token_balance(chain.url, usdc, _hot(chain))
    held_wei = int(rpc(chain.url, "eth_getBalance", _hot(chain), "latest"), 16)
    # The cap is 1.50 USDC (the wallet holds far more: an alert, not a stop); the alert levels are
    # just under what the wallet holds now: the batch below takes it under them.
    set_connection(monkeypatch, chain, hot_wallet_cap={"USDC": "1.50"},
                   low_balance_alert={"USDC": money.format_amount(held_usdc - 500_000, "USDC"),
                                      "ETH": money.format_amount(held_wei, "ETH")})
    with psycopg.connect(warehouse, autocommit=True) as conn:
        # A batch that needs more than the cap is never signed: the rail pauses, naming the cap.
        seed_wallet_payees(conn, f"{tag}a", [("USDC", 1_000_000), ("USDC", 1_000_000)])
        run_id, batches = prepare_run(conn, f"{tag}a")
        nonce_before = _hot_nonce(chain)
        outcome = submit_batch(conn, registry.connector(CONN_ID), batches[0])
        assert outcome.paused == 2 and outcome.sent == 0
        (reason,) = conn.execute("SELECT reason FROM payouts.stops WHERE lifted_at IS NULL").fetchone()
        assert reason == ("crypto USDC: batch needs 2.000000, more than the hot wallet cap 1.500000 of"
                          " payouts_evm_ethereum; raise hot_wallet_cap or pay the items in smaller batches")
        assert conn.execute("SELECT count(*) FROM payouts.evm_transactions").fetchone()[0] == 0
        assert _hot_nonce(chain) == nonce_before
        assert lift_stop(conn, "rail", "crypto", "funding", "treasury") == 1
        # A batch within the cap is paid; after it the wallet is under both alert levels (and still above
        # the cap): ALERT lines in the task's log, the same alerts in the providers check.
        seed_wallet_payees(conn, f"{tag}b", [("USDC", 1_000_000)])
        run_id, batches = prepare_run(conn, f"{tag}b")
        connector = registry.connector(CONN_ID)  # Airflow's logging is configured by then
        kept: list[str] = []
        handler = logging.Handler(logging.WARNING)
        handler.emit = lambda record: kept.append(record.getMessage())
        logger = logging.getLogger("payouts.providers.evm.connector")
        logger.addHandler(handler)
        try:
            outcome = submit_batch(conn, connector, batches[0])
        finally:
            logger.removeHandler(handler)
        assert outcome.sent == 1 and _hot_nonce(chain) == nonce_before + 1
        logged = [m for m in kept if m.startswith("ALERT ")]
        assert len(logged) == 3, logged
        assert logged[0].startswith(f"ALERT connection {CONN_ID}: USDC balance ")
        assert f"below the alert level {money.format_amount(held_usdc - 500_000, 'USDC')}" in logged[0]
        assert logged[1].startswith(f"ALERT connection {CONN_ID}: ETH balance ") and "below the alert level" in logged[1]
        assert logged[2].startswith(f"ALERT connection {CONN_ID}: USDC balance ") and "above the hot wallet cap" in logged[2]
        poll_until_final(conn)
        assert statuses(conn, run_id) == {"accepted": 1}
        # What `payouts providers check` prints (its health report; the command itself is tested above).
        alerts = registry.connector(CONN_ID).health()["alerts"]
        assert [a.split(" balance ")[0] for a in alerts] == ["USDC", "ETH", "USDC"]
        assert "below" in alerts[0] and "below" in alerts[1] and "above the hot wallet cap" in alerts[2]


def test_the_transfer_logs_are_the_statement_and_settle_every_paid_item(chain, warehouse, monkeypatch, request,
                                                                         tmp_path):
    from payouts.reconcile import run as recon

    set_connection(monkeypatch, chain)
    monkeypatch.setenv("PAYOUTS_STATEMENTS_URL", (tmp_path / "statements").as_uri())
    tag = _tag(request)
    owed = [("USDC", 11_000_000), ("USDT", 12_500_000), ("USDC", 13_000_001)]
    with psycopg.connect(warehouse, autocommit=True) as conn:
        seed_wallet_payees(conn, tag, owed)
        run_id, batches = prepare_run(conn, tag)
        submit_batch(conn, registry.connector(CONN_ID), batches[0])
        poll_until_final(conn)
        connector = registry.connector(CONN_ID)
        files = recon.fetch_statements(conn, connector, CONN_ID)
        assert len(files) == 1
        loaded = recon.load_files(conn, recon.pending_files(CONN_ID), CONN_ID)
        assert [f["loaded"] for f in loaded] == [True]
        counts = recon.match_pass(conn)
        # The hot wallet's other transfers on this chain (earlier tests) are not this warehouse's items.
        ours = conn.execute("SELECT count(*), sum(token_amount) FROM payouts.evm_transfer_logs"
                            " WHERE item_id IS NOT NULL").fetchone()
        assert ours == (len(owed), sum(a for _, a in owed))
        assert statuses(conn, run_id) == {"settled": len(owed)}
        assert counts["matched"] == len(owed)
        item_breaks = conn.execute("SELECT count(*) FROM recon.breaks WHERE item_id LIKE %s",
                                   (f"{run_id}-%",)).fetchone()[0]
        assert item_breaks == 0
        # Every line names its transaction hash; the cursor moved to the newest deep-enough block.
        hashes = {h for h, in conn.execute("SELECT entry_ref FROM recon.statement_lines WHERE end_to_end_id IS NOT NULL")}
        assert hashes == {h for h, in conn.execute("SELECT tx_hash FROM payouts.evm_transactions")}
        cursor = recon.statement_cursor(conn, CONN_ID)
        assert int(cursor) >= conn.execute("SELECT max(block_number) FROM payouts.evm_transactions").fetchone()[0]
        assert ledger.unbalanced(conn) == []


def test_a_second_run_over_new_earnings_pays_only_those(chain, warehouse, monkeypatch, request):
    set_connection(monkeypatch, chain)
    tag = _tag(request)
    owed = [("USDC", 1_000_000), ("USDT", 2_000_000)]
    with psycopg.connect(warehouse, autocommit=True) as conn:
        seed_wallet_payees(conn, tag, owed)
        first, batches = prepare_run(conn, tag)
        for batch in batches:
            submit_batch(conn, registry.connector(CONN_ID), batch)
        poll_until_final(conn)
        assert statuses(conn, first) == {"accepted": 2}
        # A new period: the first payee earns again, a new payee earns; the second payee earns nothing.
        txn = f"earn:test-{tag}-2:W000-{tag}"
        conn.execute("INSERT INTO ledger.transactions (txn_id, kind) VALUES (%s, 'earning')", (txn,))
        conn.execute("INSERT INTO ledger.postings (txn_id, account, recipient_id, currency, amount_minor) VALUES"
                     " (%s, 'earnings', %s, 'USDC', 500000), (%s, 'payable', %s, 'USDC', -500000)",
                     (txn, f"W000-{tag}", txn, f"W000-{tag}"))
        seed_wallet_payees(conn, f"{tag}n", [("USDC", 700_000)])
        second, batches = prepare_run(conn, f"{tag}n")
        for batch in batches:
            submit_batch(conn, registry.connector(CONN_ID), batch)
        poll_until_final(conn)
        assert dict(conn.execute("SELECT recipient_id, amount_minor FROM payouts.payout_items WHERE run_id = %s",
                                 (second,)).fetchall()) == {f"W000-{tag}": 500_000, f"W000-{tag}n": 700_000}
        assert statuses(conn, second) == {"accepted": 2} and statuses(conn, first) == {"accepted": 2}
        # One transaction per item, one item per nonce: nothing of the first run was signed again.
        assert conn.execute("SELECT count(*), count(DISTINCT item_id), count(DISTINCT nonce)"
                            " FROM payouts.evm_transactions").fetchone() == (4, 4, 4)
        usdc, usdt = chain.tokens["USDC"]["address"], chain.tokens["USDT"]["address"]
        assert token_balance(chain.url, usdc, payee_address(tag, 0)) == 1_500_000  # both periods, once each
        assert token_balance(chain.url, usdt, payee_address(tag, 1)) == 2_000_000
        assert token_balance(chain.url, usdc, payee_address(f"{tag}n", 0)) == 700_000
        assert ledger.unbalanced(conn) == []


def test_a_token_with_18_decimals_receives_the_amount_scaled_exactly(chain, warehouse, monkeypatch, request):
    from eth_account import Account

    from payouts_sandbox.evm_chain import deploy_contract

    hot = Account.from_key(chain.hot_wallet_key).address
    usdt18 = deploy_contract(chain.url, "ERC20PresetFixedSupply", ["Tether USD", "USDT", 10**6 * 10**18, hot])
    connection = chain.connection()
    connection["extra"]["tokens"]["USDT"] = {"address": usdt18, "decimals": 18}
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(connection))
    monkeypatch.setenv("PAYOUTS_RAIL_PROVIDERS", f"crypto={CONN_ID}")
    tag = _tag(request)
    with psycopg.connect(warehouse, autocommit=True) as conn:
        seed_wallet_payees(conn, tag, [("USDT", 12_345_678)])
        run_id, batches = prepare_run(conn, tag)
        submit_batch(conn, registry.connector(CONN_ID), batches[0])
        poll_until_final(conn)
        assert statuses(conn, run_id) == {"accepted": 1}
        assert token_balance(chain.url, usdt18, payee_address(tag, 0)) == 12_345_678 * 10**12
        stored = conn.execute("SELECT token_amount FROM payouts.evm_transactions").fetchone()[0]
        assert int(stored) == 12_345_678 * 10**12  # numeric: it does not fit a bigint


def test_invalid_and_unchecked_addresses_stay_blocked_before_signing(chain, warehouse, monkeypatch, request):
    set_connection(monkeypatch, chain)
    tag = _tag(request)
    with psycopg.connect(warehouse, autocommit=True) as conn:
        seed_wallet_payees(conn, tag, [("USDC", 1_000_000)] * 3)
        good = payee_address(tag, 0)
        # An address without its checksum, one with a broken checksum.
        conn.execute("UPDATE payouts.recipients SET wallet_address = %s WHERE recipient_id = %s",
                     (payee_address(tag, 1).lower(), f"W001-{tag}"))
        broken = payee_address(tag, 2)
        flip = next(i for i in range(2, 42) if broken[i].isalpha())
        broken = broken[:flip] + broken[flip].swapcase() + broken[flip + 1:]
        conn.execute("UPDATE payouts.recipients SET wallet_address = %s WHERE recipient_id = %s",
                     (broken, f"W002-{tag}"))
        run_id, batches = prepare_run(conn, tag)
        submit_batch(conn, registry.connector(CONN_ID), batches[0])
        poll_until_final(conn)
        assert [a for a, in conn.execute("SELECT to_address FROM payouts.evm_transactions")] == [good]
        held = dict(conn.execute("SELECT recipient_id, status FROM payouts.payout_items WHERE run_id = %s",
                                 (run_id,)).fetchall())
        assert held[f"W000-{tag}"] == "accepted"
        assert held[f"W001-{tag}"] in ("held", "rejected") and held[f"W002-{tag}"] in ("held", "rejected")
        assert ledger.unbalanced(conn) == []


def test_providers_check_prints_the_chain_the_block_and_the_balances(chain, monkeypatch):
    # With treasury's levels: below the alert level, above the hot wallet cap.
    set_connection(monkeypatch, chain, low_balance_alert={"USDT": "100000000000"}, hot_wallet_cap={"USDC": "10.00"})
    env = {**os.environ, "PYTHONPATH": str(PROJECT / "plugins")}
    done = subprocess.run([sys.executable, "-m", "payouts_tooling.cli", "providers", "check", CONN_ID], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    health = report["health"]
    assert health["chain_id"] == 1 and health["latest_block"] >= 1 and health["wallet"] == _hot(chain)
    native = int(rpc(chain.url, "eth_getBalance", _hot(chain), "latest"), 16)
    assert {b["currency"] for b in report["balances"]} == {"USDC", "USDT", "ETH"}
    eth = next(b for b in report["balances"] if b["currency"] == "ETH")
    assert eth["available"] == str(__import__("payouts.core.money", fromlist=["x"]).format_amount(native, "ETH"))
    usdc = token_balance(chain.url, chain.tokens["USDC"]["address"], _hot(chain))
    assert next(b for b in report["balances"] if b["currency"] == "USDC")["available"] == f"{usdc / 10**6:.6f}"
    alerts = health["alerts"]
    assert len(alerts) == 2
    assert alerts[0].startswith("USDT balance ") and "below the alert level 100000000000.000000" in alerts[0]
    assert alerts[1].startswith("USDC balance ") and "above the hot wallet cap 10.000000" in alerts[1]

    # A node that is not the connection's chain: one line, exit 2.
    bad = chain.connection()
    bad["extra"]["chain_id"] = 8453
    env[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = json.dumps(bad)
    done = subprocess.run([sys.executable, "-m", "payouts_tooling.cli", "providers", "check", CONN_ID], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        f"payouts providers check: connection '{CONN_ID}': the node at {chain.url} is chain 1, the connection"
        " says chain 8453; nothing is signed")


# Last: it stops the chain's blocks, and they resume a second apart (not four a second).
def test_a_stuck_transaction_is_replaced_at_its_nonce_with_higher_fees(chain, warehouse, monkeypatch, request):
    set_connection(monkeypatch, chain)
    tag = _tag(request)
    with psycopg.connect(warehouse, autocommit=True) as conn:
        seed_wallet_payees(conn, tag, [("USDC", 9_000_000)])
        run_id, batches = prepare_run(conn, tag)
        rpc(chain.url, "evm_setIntervalMining", 0)
        rpc(chain.url, "evm_setAutomine", False)
        try:
            connector = registry.connector(CONN_ID)
            submit_batch(conn, connector, batches[0])
            from payouts.providers.evm import store

            (key,) = [k for k, in conn.execute("SELECT idempotency_key FROM payouts.evm_transactions").fetchall()]
            first = store.transactions_of(connector.db, CONN_ID, [key])[key][0]
            second = connector.replace(first)
            assert second.nonce == first.nonce and second.tx_hash != first.tx_hash
            assert second.max_fee_per_gas * 100 >= first.max_fee_per_gas * 110
            assert second.max_priority_fee_per_gas * 100 >= first.max_priority_fee_per_gas * 110
        finally:
            rpc(chain.url, "evm_setAutomine", True)
            rpc(chain.url, "evm_setIntervalMining", 1)
        poll_until_final(conn)
        assert statuses(conn, run_id) == {"accepted": 1}
        mined = conn.execute("SELECT tx_hash FROM payouts.evm_transactions WHERE receipt_status = 1").fetchall()
        assert mined == [(second.tx_hash,)]
        assert token_balance(chain.url, chain.tokens["USDC"]["address"], payee_address(tag, 0)) == 9_000_000
