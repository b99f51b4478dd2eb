"""`payouts run --provider evm` end to end through Airflow on a local chain.

Ethereum's crypto items are ERC-20 transfers on anvil (its chain kept in the data
folder, `--state`); the other rails stay on the sandbox. Proven here: every item
is at rest; reconciliation against the chain's own Transfer logs has no break;
the count and total of the hot wallet's Transfer logs, read from the chain the
run left behind, equal the items settled on chain. That a second run over a new
period's earnings pays only those is shown on the same connector and warehouse
code without Airflow (tests/integration/test_evm_connector.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from tests_support import fresh_database, items_not_at_rest, ledger_problems, parked_without_reason

pytestmark = [pytest.mark.e2e]

PROJECT = Path(__file__).resolve().parents[2]
RECIPIENTS = 80
TRANSFER = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"


@pytest.fixture(scope="module")
def one_run(tmp_path_factory):
    url, drop = fresh_database("embedded")
    work = tmp_path_factory.mktemp("evm-e2e")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN_", "PAYOUTS_RAIL_PROVIDERS"))}
    env.update(PAYOUTS_WAREHOUSE_URL=url, PAYOUTS_DATA_DIR=str(work / "data"), PYTHONPATH=str(PROJECT / "plugins"))
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "payouts_tooling.cli", "run", "--provider", "evm", "--recipients", str(RECIPIENTS),
             "--days", "1", "--period", "2026-11-30", "--summary", str(work / "summary.json")],
            env=env, cwd=work, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, f"the run failed:\n{proc.stdout}\n{proc.stderr[-4000:]}"
        yield url, json.loads((work / "summary.json").read_text()), work
    finally:
        drop()


def _chain_logs(work: Path) -> tuple[list[dict], dict]:
    """Every Transfer log from the hot wallet on the chain the runs left behind (its --state file)."""
    sys.path.insert(0, str(PROJECT / "sandbox"))
    from eth_account import Account
    from payouts_sandbox.evm_chain import start_anvil

    described = json.loads((work / "data" / "evm" / "chain.json").read_text())
    hot = Account.from_key(described["hot_wallet_key"]).address
    with start_anvil(work / "inspect", block_time=0, state_file=work / "data" / "evm" / "anvil-state.json") as node:
        import httpx

        body = httpx.post(node.url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_getLogs", "params": [{
            "fromBlock": "0x0", "toBlock": "latest",
            "address": [t["address"] for t in described["tokens"].values()],
            "topics": [TRANSFER, "0x" + "0" * 24 + hot.lower()[2:]]}]}, timeout=60).json()
    by_address = {t["address"].lower(): asset for asset, t in described["tokens"].items()}
    return [{"tx_hash": log["transactionHash"], "asset": by_address[log["address"].lower()],
             "amount": int(log["data"], 16)} for log in body["result"]], described


def test_reconciled_against_the_chain_with_no_breaks(one_run):
    url, summary, _ = one_run
    assert summary["reconciliation"]["breaks"] == {}
    assert summary["dag_runs"] == {"payout_run": "success", "fetch_statements": "success",
                                   "reconcile_statements": "success"}
    with psycopg.connect(url) as conn:
        assert items_not_at_rest(conn) == {}
        assert parked_without_reason(conn) == 0
        assert ledger_problems(conn) == []


def test_the_chain_logs_count_and_total_equal_the_items_settled_on_chain(one_run):
    url, _, work = one_run
    logs, described = _chain_logs(work)
    with psycopg.connect(url) as conn:
        settled = conn.execute(
            "SELECT t.tx_hash, t.asset, t.token_amount, i.status, i.amount_minor FROM payouts.evm_transactions t"
            " JOIN payouts.payout_items i USING (item_id) WHERE t.receipt_status = 1").fetchall()
    assert settled and {status for *_, status, _ in settled} == {"settled"}
    assert len(logs) == len(settled)
    assert {log["tx_hash"] for log in logs} == {tx for tx, *_ in settled}
    for asset in described["tokens"]:
        on_chain = sum(log["amount"] for log in logs if log["asset"] == asset)
        assert on_chain == sum(int(amount) for _, a, amount, _, _ in settled if a == asset)
        # 6-decimal tokens: the token amount is the item's amount in minor units.
        assert on_chain == sum(minor for _, a, _, _, minor in settled if a == asset)

