"""A block that is no longer canonical: its Transfer logs are withdrawn and its transactions unmined.

The transactions' stored bytes are broadcast again (the same signature, the same
nonce: never a second payment), and their items are handed back to the poll.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from payouts.providers.evm import store

if TYPE_CHECKING:
    from payouts.providers.evm.connector import EvmConnector

REORG_WINDOW = 256


def withdraw_orphaned_logs(connector: EvmConnector, latest: int) -> list[str]:
    """Compare the blocks of recent logs and receipts with the chain; withdraw what left it.

    Returns the transaction hashes withdrawn now.
    """
    from payouts.providers.evm.connector import _hex

    db, w3 = connector.db, connector.w3
    rows = db.execute(
        "SELECT DISTINCT block_number, block_hash FROM ("
        " SELECT block_number, block_hash FROM payouts.evm_transfer_logs WHERE provider = %(p)s"
        "  AND withdrawn_at IS NULL AND block_number >= %(low)s"
        " UNION SELECT block_number, block_hash FROM payouts.evm_transactions WHERE provider = %(p)s"
        "  AND block_number IS NOT NULL AND block_number >= %(low)s) b",
        {"p": connector.conn_id, "low": max(0, latest - REORG_WINDOW)}).fetchall()
    gone = []
    for number, block_hash in rows:
        block = w3.eth.get_block(int(number)) if int(number) <= latest else None
        if block is None or _hex(block["hash"]) != block_hash:
            gone.append(block_hash)
    if not gone:
        return []
    with db.transaction():
        withdrawn = [h for h, in db.execute(
            "UPDATE payouts.evm_transfer_logs SET withdrawn_at = now() WHERE provider = %s AND block_hash = ANY(%s)"
            " AND withdrawn_at IS NULL RETURNING tx_hash", (connector.conn_id, gone)).fetchall()]
        unmined = [h for h, in db.execute(
            "SELECT tx_hash FROM payouts.evm_transactions WHERE provider = %s AND block_hash = ANY(%s)",
            (connector.conn_id, gone)).fetchall()]
        for tx_hash in unmined:
            store.clear_receipt(db, tx_hash)
        hashes = sorted(set(withdrawn) | set(unmined))
        move_back(db, hashes)
    # The same signed bytes go out again.
    again = [t for t in store.unmined(db, connector.conn_id) if t.tx_hash in set(hashes)]
    if again:
        connector.broadcast(again)
    return hashes


def move_back(db, hashes: list[str]) -> int:
    """Items whose payment left the chain: accepted/settled -> submitted, reversing postings, polled again."""
    from payouts import chain_reversal

    return chain_reversal.reverse_items(db, hashes)
