"""The chain's own statement: the tokens' Transfer logs from the hot wallet, as crypto-csv files.

Read from a stored block cursor up to the newest block with the connection's
confirmations, one statement line per log (transaction hash, log index in the
statement's position, block number and time, amount, counterparty). The item
of a line is found by its transaction hash, whichever hash of the item was
mined. Logs already read are kept with their block's hash: when a block is no
longer canonical its logs are withdrawn and the transactions are unmined again
(reorg.py moves their items back).
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

from payouts.core import money
from payouts.providers.contract import StatementPage
from payouts.providers.evm import store
from payouts.statements.crypto_export import CRYPTO_HEADER

if TYPE_CHECKING:
    from payouts.providers.evm.connector import EvmConnector

# Blocks per eth_getLogs request (nodes cap the range or the answer's size).
LOG_RANGE = 2_000
# How far back logs already read are checked against the canonical chain.
REORG_WINDOW = 256


def fetch_transfer_logs(connector: EvmConnector, cursor: str | None, dest: Path) -> StatementPage:
    from payouts.providers.evm.connector import TRANSFER_TOPIC, _hex, _topic_address
    from payouts.providers.evm import reorg

    s = connector.settings
    w3 = connector.w3
    latest = int(connector._rpc("eth_blockNumber", lambda: w3.eth.block_number))
    reorg.withdraw_orphaned_logs(connector, latest)
    safe = latest - s.confirmations + 1
    start = int(cursor) + 1 if cursor else 0
    if connector.reorged_from is not None:
        start = min(start, connector.reorged_from)
    if safe < start:
        # Nothing deep enough yet; after a reorganisation the cursor still goes back.
        return StatementPage([], str(start - 1) if start > 0 else cursor)
    by_token = {t.address.lower(): t for t in s.tokens.values()}
    logs = []
    for lo in range(start, safe + 1, LOG_RANGE):
        hi = min(lo + LOG_RANGE - 1, safe)
        logs += connector._rpc("eth_getLogs", lambda: w3.eth.get_logs({
            "fromBlock": lo, "toBlock": hi, "address": [t.address for t in s.tokens.values()],
            "topics": [TRANSFER_TOPIC, _topic_address(connector.wallet)]}))
    # Logs kept already (a window read again after a reorganisation) are not lines again.
    kept = {tuple(k) for k in connector.db.execute(
        "SELECT block_hash, tx_hash, log_index FROM payouts.evm_transfer_logs WHERE provider = %s"
        " AND tx_hash = ANY(%s) AND withdrawn_at IS NULL",
        (connector.conn_id, list({_hex(e["transactionHash"]) for e in logs}))).fetchall()}
    logs = [e for e in logs
            if (_hex(e["blockHash"]), _hex(e["transactionHash"]), int(e["logIndex"])) not in kept]
    times: dict[int, int] = {}
    rows = []
    items = store.items_of_hashes(connector.db, list({_hex(e["transactionHash"]) for e in logs}))
    for entry in logs:
        number = int(entry["blockNumber"])
        if number not in times:
            times[number] = int(connector._rpc("eth_getBlockByNumber", lambda: w3.eth.get_block(number)["timestamp"]))
        token = by_token[entry["address"].lower()]
        topics = [_hex(t) for t in entry["topics"]]
        tx_hash = _hex(entry["transactionHash"])
        amount = int(_hex(entry["data"]), 16)
        rows.append({
            "tx_hash": tx_hash, "log_index": int(entry["logIndex"]), "block_number": number,
            "block_hash": _hex(entry["blockHash"]), "block_time": times[number], "token": token.address,
            "asset": token.asset, "from": connector.wallet, "to": "0x" + topics[2][-40:],
            "amount": amount, "item_id": items.get(tx_hash),
        })
    files = []
    if rows:
        with connector.db.transaction(), connector.db.cursor() as cur:
            cur.executemany(
                "INSERT INTO payouts.evm_transfer_logs (provider, tx_hash, log_index, block_number, block_hash,"
                " block_time, token, asset, from_address, to_address, token_amount, item_id) VALUES"
                " (%s, %s, %s, %s, %s, to_timestamp(%s), %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                [(connector.conn_id, r["tx_hash"], r["log_index"], r["block_number"], r["block_hash"],
                  r["block_time"], r["token"], r["asset"], r["from"], r["to"], r["amount"], r["item_id"])
                 for r in rows])
        dest.mkdir(parents=True, exist_ok=True)
        # The range and the hash of its last block: the same range read again after a reorg is another file.
        head = _hex(connector._rpc("eth_getBlockByNumber", lambda: w3.eth.get_block(safe)["hash"]))
        path = dest / f"evm-{s.network}-{s.chain_id}-{start:010d}-{safe:010d}-{head[2:12]}.csv"
        write_export(path, rows, s.network, s.tokens, latest)
        files.append(path)
    return StatementPage(files, str(safe))


def write_export(path: Path, rows: list[dict], network: str, tokens: dict, latest: int) -> None:
    """The lines in the crypto export format the statement loader reads (statements/crypto_export.py)."""
    tmp = path.with_suffix(".part")
    with open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CRYPTO_HEADER)
        for r in sorted(rows, key=lambda r: (r["block_number"], r["log_index"])):
            token = tokens[r["asset"]]
            amount = money.format_amount(token.to_minor(r["amount"]), r["asset"])
            writer.writerow([
                r["tx_hash"], network, r["asset"], "out", amount, "", r["item_id"] or "NOTPROVIDED", r["to"],
                dt.datetime.fromtimestamp(r["block_time"], dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                latest - r["block_number"] + 1, "confirmed", "",
            ])
    tmp.replace(path)
