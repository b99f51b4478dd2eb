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

    Returns the transaction hashes withdrawn now; `connector.reorged_from` is the
    lowest block that left the chain (None when none did): the statement cursor
    goes back there, so the transactions mined again below it are read.
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
    gone, lowest = [], None
    for number, block_hash in rows:
        block = w3.eth.get_block(int(number)) if int(number) <= latest else None
        if block is None or _hex(block["hash"]) != block_hash:
            gone.append(block_hash)
            lowest = int(number) if lowest is None else min(lowest, int(number))
    # Where the chains forked is at or below both the lowest block that left and today's head;
    # the statements are read again from a window below it (logs already kept are not repeated).
    connector.reorged_from = None if lowest is None else max(0, min(lowest, latest) - REORG_WINDOW)
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
        withdraw_statement_lines(db, connector.conn_id, withdrawn)
        reverse_fees(db, gone)
        hashes = sorted(set(withdrawn) | set(unmined))
        move_back(db, hashes)
    # The same signed bytes go out again.
    again = [t for t in store.unmined(db, connector.conn_id) if t.tx_hash in set(hashes)]
    if again:
        connector.broadcast(again)
    return hashes


def withdraw_statement_lines(db, provider: str, tx_hashes: list[str]) -> list[int]:
    """The statement lines of transactions none of whose logs is canonical any more: withdrawn, unmatched.

    A withdrawn line is no longer booked, so no pass matches it again, and its match
    goes: the item is open again and the line of the same transaction in its new
    block is its one match (the ledger's settlement was reversed by move_back).
    """
    gone = db.execute(
        "SELECT array_agg(DISTINCT w.tx_hash), array_agg(DISTINCT w.item_id) FROM payouts.evm_transfer_logs w"
        " WHERE w.provider = %(p)s AND w.tx_hash = ANY(%(h)s) AND w.item_id IS NOT NULL"
        " AND NOT EXISTS (SELECT 1 FROM payouts.evm_transfer_logs g"
        "  WHERE g.provider = %(p)s AND g.tx_hash = w.tx_hash AND g.withdrawn_at IS NULL)",
        {"p": provider, "h": tx_hashes}).fetchone()
    if not gone[0]:
        return []
    # Through the lines' reference index (the item), then the transaction hash.
    lines = [n for n, in db.execute(
        "UPDATE recon.statement_lines SET status = 'withdrawn' WHERE end_to_end_id = ANY(%s)"
        " AND entry_ref = ANY(%s) AND provider = %s AND status = 'booked' RETURNING line_id",
        (gone[1], gone[0], provider)).fetchall()]
    db.execute("DELETE FROM recon.matches WHERE line_id = ANY(%s)", (lines,))
    return lines


def move_back(db, hashes: list[str]) -> dict[str, int]:
    """Items whose payment left the chain: accepted/settled -> submitted, reversing postings, polled again."""
    from payouts.providers.evm import reversal

    return reversal.reverse_items(db, hashes)


def reverse_fees(db, block_hashes: list[str]) -> None:
    """The gas of a transaction in a block that left the chain was not paid there: reversed."""
    from payouts.core import ledger

    ledger.reverse_network_fees(db, block_hashes)
