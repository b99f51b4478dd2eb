"""Operator actions on a payment's transaction that is not being mined.

replace: the same transfer at the same nonce, both fee caps raised by the
connection's fee_bump_percent (at least 10%); abandon: a zero-value transfer to
the hot wallet itself at that nonce, so the nonce is filled, never left as a gap;
when it is mined the payment is rejected and its money owed again. Either way
the new hash is recorded next to the old ones, and whichever is mined answers.
"""

from __future__ import annotations

from payouts.providers import registry
from payouts.providers.evm import store


class OperatorError(ValueError):
    """The action does not apply to this item (no transaction, already mined)."""


def act(conn_id: str, item_id: str, action: str) -> dict:
    if action not in ("replace", "abandon"):
        raise OperatorError(f"unknown action {action!r}: replace or abandon")
    connector = registry.connector(conn_id)
    try:
        connector.preflight()
        row = connector.db.execute(
            "SELECT idempotency_key FROM payouts.evm_transactions WHERE item_id = %s AND provider = %s LIMIT 1",
            (item_id, conn_id)).fetchone()
        if row is None:
            raise OperatorError(f"item {item_id} has no transaction on {conn_id}")
        txs = store.transactions_of(connector.db, conn_id, [row[0]])[row[0]]
        for tx in txs:
            if connector._receipt(tx.tx_hash) is not None:
                raise OperatorError(f"item {item_id}: transaction {tx.tx_hash} is already mined; nothing to {action}")
        if txs[-1].purpose == "filler":
            raise OperatorError(f"item {item_id}: its nonce {txs[-1].nonce} is already being filled")
        new = connector.replace(txs[-1], filler=action == "abandon")
        return {"item_id": item_id, "action": action, "nonce": new.nonce, "replaced": txs[-1].tx_hash,
                "tx_hash": new.tx_hash, "max_fee_per_gas": new.max_fee_per_gas,
                "max_priority_fee_per_gas": new.max_priority_fee_per_gas}
    finally:
        connector.close()
