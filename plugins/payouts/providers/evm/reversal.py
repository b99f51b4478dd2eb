"""Items whose payment a chain reorganisation took away: back to `submitted`, ledger reversed.

The item's send (and settlement) is reversed under '<kind>:<item_id>:reorg<n>',
the nth time it happens to the item; when the same signed transaction is mined
again the send is posted again under 'send:<item_id>:reorg<n>'. The poll owns
the item from then on, as after any pending answer.
"""

from __future__ import annotations

import psycopg

from payouts.core import items, ledger, reasons

def reorgs_of(conn: psycopg.Connection, item_id: str) -> int:
    """How many times a reorganisation reversed the item (primary-key lookups: usually one, finding none)."""
    n = 0
    while conn.execute("SELECT 1 FROM ledger.transactions WHERE txn_id = ANY(%s)",
                       ([f"unsend:{item_id}:reorg{n + 1}", f"unsettle:{item_id}:reorg{n + 1}"],)).fetchone():
        n += 1
    return n


def reverse_items(conn: psycopg.Connection, hashes: list[str]) -> dict[str, int]:
    """Move the items paid by `hashes` back to submitted, with reversing postings. Idempotent per reorg."""
    rows = conn.execute(
        "SELECT DISTINCT i.item_id, i.status FROM payouts.evm_transactions t"
        " JOIN payouts.payout_items i ON i.item_id = t.item_id"
        " WHERE t.tx_hash = ANY(%s) AND i.status IN ('accepted', 'settled')", (hashes,)).fetchall()
    moved = {"accepted": 0, "settled": 0}
    for item_id, status in rows:
        suffix = f":reorg{reorgs_of(conn, item_id) + 1}"
        with conn.transaction():
            n = items.move_items(
                conn, "SELECT %(item)s::text", "submitted", {"item": item_id},
                detail=f"{status} payment's block left the chain",
                reasons=[reasons.make("CHAIN_REORG")])
            if n:
                # The poll asks about it again (it owns pending attempts of submitted items).
                conn.execute("UPDATE payouts.attempts a SET status = 'pending', answered_at = NULL"
                             " FROM payouts.payout_items i WHERE i.item_id = %s AND a.item_id = i.item_id"
                             " AND a.rail = i.rail", (item_id,))
                ledger.post_transfers(conn, "unsend" if status == "accepted" else "unsettle",
                                      "SELECT %(item)s::text", {"item": item_id}, txn_suffix=suffix)
                moved[status] += 1
    return moved


def post_send_again(conn: psycopg.Connection, item_id: str) -> int:
    """The send of an item mined again after a reorganisation (once per reversal)."""
    n = reorgs_of(conn, item_id)
    if not n:
        return 0
    suffix = f":reorg{n}"
    with conn.transaction():
        posted = ledger.post_transfers(conn, "send", "SELECT %(item)s::text", {"item": item_id}, txn_suffix=suffix)
        ledger.post_transfers(conn, "fx", "SELECT %(item)s::text", {"item": item_id}, txn_suffix=suffix)
    return posted
