"""The evm connector's warehouse rows: nonces, signed transactions, receipts and Transfer logs.

Nonces are allocated and the signed transactions stored in one transaction, so
no nonce is ever handed out without the transaction that uses it, and nothing
is broadcast before its raw bytes are committed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import psycopg
from psycopg import sql


@dataclass(frozen=True)
class StoredTx:
    tx_hash: str
    nonce: int
    purpose: str
    idempotency_key: str | None
    item_id: str | None
    asset: str | None
    token: str | None
    to_address: str | None
    token_amount: int | None
    raw_tx: str
    max_fee_per_gas: int
    max_priority_fee_per_gas: int
    gas_limit: int
    replaces: str | None
    block_number: int | None
    receipt_status: int | None

    @property
    def raw(self) -> bytes:
        return bytes.fromhex(self.raw_tx.removeprefix("0x"))


_TX_FIELDS = ("tx_hash", "nonce", "purpose", "idempotency_key", "item_id", "asset", "token", "to_address",
              "token_amount", "raw_tx", "max_fee_per_gas", "max_priority_fee_per_gas", "gas_limit", "replaces",
              "block_number", "receipt_status")


def _columns(table: str | None = None) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(*((table, c) if table else (c,))) for c in _TX_FIELDS)


def _stored(row) -> StoredTx:
    (tx_hash, nonce, purpose, key, item_id, asset, token, to, amount, raw, max_fee, tip, gas, replaces,
     block, status) = row
    return StoredTx(tx_hash, int(nonce), purpose, key, item_id, asset, token, to,
                    None if amount is None else int(amount), raw, int(max_fee), int(tip), int(gas), replaces,
                    None if block is None else int(block), None if status is None else int(status))


def transactions_of(conn: psycopg.Connection, provider: str, keys: Sequence[str]) -> dict[str, list[StoredTx]]:
    """Every transaction signed for each key (the first, then its replacements, in order)."""
    rows = conn.execute(sql.SQL(
        "SELECT {} FROM payouts.evm_transactions WHERE provider = %s AND idempotency_key = ANY(%s)"
        " ORDER BY signed_at, tx_hash").format(_columns()), (provider, list(keys))).fetchall()
    found: dict[str, list[StoredTx]] = {}
    for row in rows:
        tx = _stored(row)
        found.setdefault(tx.idempotency_key, []).append(tx)
    # A filler of an abandoned nonce replaces the payment: it belongs to the same key.
    fillers = conn.execute(sql.SQL(
        "WITH RECURSIVE f AS (SELECT {cols}, signed_at FROM payouts.evm_transactions"
        "   WHERE purpose = 'filler' AND replaces = ANY(%s)"
        " UNION SELECT {t_cols}, t.signed_at FROM payouts.evm_transactions t JOIN f ON t.replaces = f.tx_hash)"
        " SELECT {cols} FROM f ORDER BY signed_at").format(cols=_columns(), t_cols=_columns("t")),
        ([t.tx_hash for txs in found.values() for t in txs],)).fetchall()
    by_hash = {t.tx_hash: key for key, txs in found.items() for t in txs}
    for row in fillers:
        tx = _stored(row)
        by_hash[tx.tx_hash] = by_hash[tx.replaces]
        found[by_hash[tx.replaces]].append(tx)
    return found


def sign_and_store(conn: psycopg.Connection, chain_id: int, wallet: str, provider: str, node_nonce: int,
                   requests: list[dict], sign: Callable[[dict, int], tuple[str, bytes, dict]]) -> list[StoredTx]:
    """Allocate consecutive nonces for `requests`, sign each, store every signed transaction: one commit.

    The wallet's row is locked for the whole transaction (one allocator per chain
    and wallet at a time). Starts from the node's pending nonce when that is ahead
    (the wallet sent transactions of its own). `sign(request, nonce)` returns
    (tx hash, raw bytes, the columns to store).
    """
    if not requests:
        return []
    stored = []
    with conn.transaction():
        conn.execute("INSERT INTO payouts.evm_nonces (chain_id, wallet, next_nonce) VALUES (%s, %s, %s)"
                     " ON CONFLICT DO NOTHING", (chain_id, wallet, node_nonce))
        (next_nonce,) = conn.execute("SELECT next_nonce FROM payouts.evm_nonces WHERE chain_id = %s AND wallet = %s"
                                     " FOR UPDATE", (chain_id, wallet)).fetchone()
        nonce = max(int(next_nonce), node_nonce)
        rows = []
        for request in requests:
            tx_hash, raw, columns = sign(request, nonce)
            rows.append((tx_hash, chain_id, wallet, nonce, columns.get("purpose", "payment"), provider,
                         columns.get("idempotency_key"), columns.get("item_id"), columns.get("asset"),
                         columns.get("token"), columns.get("to_address"), columns.get("token_amount"),
                         "0x" + raw.hex(), columns["max_fee_per_gas"], columns["max_priority_fee_per_gas"],
                         columns["gas_limit"], columns.get("replaces"), columns.get("signed_block")))
            nonce += 1
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO payouts.evm_transactions (tx_hash, chain_id, wallet, nonce, purpose, provider,"
                " idempotency_key, item_id, asset, token, to_address, token_amount, raw_tx, max_fee_per_gas,"
                " max_priority_fee_per_gas, gas_limit, replaces, signed_block) VALUES"
                " (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", rows)
        conn.execute("UPDATE payouts.evm_nonces SET next_nonce = %s, updated_at = now()"
                     " WHERE chain_id = %s AND wallet = %s", (nonce, chain_id, wallet))
        for row in rows:
            stored.append(StoredTx(row[0], row[3], row[4], row[6], row[7], row[8], row[9], row[10], row[11],
                                   row[12], row[13], row[14], row[15], row[16], None, None))
    return stored


def store_replacement(conn: psycopg.Connection, chain_id: int, wallet: str, provider: str, original: StoredTx,
                      tx_hash: str, raw: bytes, columns: dict) -> StoredTx:
    """A transaction that replaces `original` at the same nonce (higher fees, or a filler)."""
    with conn.transaction():
        conn.execute(
            "INSERT INTO payouts.evm_transactions (tx_hash, chain_id, wallet, nonce, purpose, provider,"
            " idempotency_key, item_id, asset, token, to_address, token_amount, raw_tx, max_fee_per_gas,"
            " max_priority_fee_per_gas, gas_limit, replaces, signed_block) VALUES"
            " (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (tx_hash, chain_id, wallet, original.nonce, columns["purpose"], provider, columns.get("idempotency_key"),
             columns.get("item_id"), columns.get("asset"), columns.get("token"), columns.get("to_address"),
             columns.get("token_amount"), "0x" + raw.hex(), columns["max_fee_per_gas"],
             columns["max_priority_fee_per_gas"], columns["gas_limit"], original.tx_hash, columns.get("signed_block")))
    return StoredTx(tx_hash, original.nonce, columns["purpose"], columns.get("idempotency_key"),
                    columns.get("item_id"), columns.get("asset"), columns.get("token"), columns.get("to_address"),
                    columns.get("token_amount"), "0x" + raw.hex(), columns["max_fee_per_gas"],
                    columns["max_priority_fee_per_gas"], columns["gas_limit"], original.tx_hash, None, None)


def record_broadcasts(conn: psycopg.Connection, outcomes: list[tuple[str, str | None]]) -> None:
    """(tx hash, the node's error or None) for each broadcast."""
    if not outcomes:
        return
    with conn.cursor() as cur:
        cur.executemany("UPDATE payouts.evm_transactions SET broadcasts = broadcasts + 1,"
                        " last_broadcast_at = now(), last_broadcast_error = %s WHERE tx_hash = %s",
                        [(error, tx_hash) for tx_hash, error in outcomes])


def record_receipt(conn: psycopg.Connection, tx_hash: str, receipt: dict, revert_reason: str | None,
                   l1_fee: int | None) -> None:
    gas_used = int(receipt["gasUsed"])
    price = int(receipt["effectiveGasPrice"])
    conn.execute(
        "UPDATE payouts.evm_transactions SET block_number = %s, block_hash = %s, receipt_status = %s,"
        " revert_reason = %s, gas_used = %s, effective_gas_price = %s, fee_wei = %s, l1_fee_wei = %s"
        " WHERE tx_hash = %s",
        (int(receipt["blockNumber"]), block_hash if isinstance(block_hash := receipt["blockHash"], str)
         else "0x" + bytes(block_hash).hex(), int(receipt["status"]),
         revert_reason, gas_used, price, gas_used * price + (l1_fee or 0), l1_fee, tx_hash))


def clear_receipt(conn: psycopg.Connection, tx_hash: str) -> None:
    """Its block is gone (a reorg): the transaction is unmined again."""
    conn.execute("UPDATE payouts.evm_transactions SET block_number = NULL, block_hash = NULL, receipt_status = NULL,"
                 " revert_reason = NULL WHERE tx_hash = %s", (tx_hash,))


def items_of_hashes(conn: psycopg.Connection, hashes: Sequence[str]) -> dict[str, str]:
    """tx hash -> the payout item it pays (any hash an item has: first, replacement)."""
    return dict(conn.execute("SELECT tx_hash, item_id FROM payouts.evm_transactions"
                             " WHERE tx_hash = ANY(%s) AND item_id IS NOT NULL", (list(hashes),)).fetchall())


def unmined(conn: psycopg.Connection, provider: str) -> list[StoredTx]:
    """The newest transaction of every nonce of ours that has no receipt yet."""
    rows = conn.execute(sql.SQL(
        "SELECT {} FROM payouts.evm_transactions t WHERE provider = %s AND block_number IS NULL"
        " AND NOT EXISTS (SELECT 1 FROM payouts.evm_transactions n WHERE n.replaces = t.tx_hash)"
        " AND NOT EXISTS (SELECT 1 FROM payouts.evm_transactions m WHERE m.chain_id = t.chain_id"
        "                 AND m.wallet = t.wallet AND m.nonce = t.nonce AND m.block_number IS NOT NULL)"
        " ORDER BY nonce").format(_columns("t")), (provider,)).fetchall()
    return [_stored(r) for r in rows]
