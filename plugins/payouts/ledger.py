"""Double-entry postings: build, post, prove balanced.

Each business event on an item is one ledger transaction named
'<kind>:<item_id>' with two legs (debit +amount, credit -amount) in the item's
currency. The transaction id is the primary key, so an event posted twice
(a retried task, a re-run) adds nothing.
"""

from __future__ import annotations

import psycopg

# kind -> (debit account, credit account). Liabilities are credit-normal:
# debiting 'payable' lowers what is owed, crediting 'reserved' freezes it.
TRANSFERS: dict[str, tuple[str, str]] = {
    "reserve": ("payable", "reserved"),    # snapshot: freeze what a run will pay
    "release": ("reserved", "payable"),    # final rejection or cancellation: owed again
    "send": ("reserved", "clearing"),      # accepted by the provider
    "unsend": ("clearing", "payable"),     # rejected after acceptance (late answer)
    "settle": ("clearing", "cash"),        # seen debited on a provider statement
    "return": ("cash", "payable"),         # came back after settlement: owed again
    "return_unsettled": ("clearing", "payable"),  # came back before its debit was seen
}


def post_transfers(conn: psycopg.Connection, kind: str, selection: str, params: dict | None = None) -> int:
    """Post `kind` for every item id that `selection` (a SELECT of item ids) returns.

    `selection` is SQL written in this package, never user text; its values
    come in through `params`. Returns the number of transactions posted now.
    """
    debit, credit = TRANSFERS[kind]
    query = f"""
        WITH picked AS (
            SELECT i.item_id, i.recipient_id, i.currency, i.amount_minor
            FROM payouts.payout_items i
            WHERE i.item_id IN ({selection})
        ), txn AS (
            INSERT INTO ledger.transactions (txn_id, kind)
            SELECT %(__kind)s || ':' || item_id, %(__kind)s FROM picked
            ON CONFLICT (txn_id) DO NOTHING
            RETURNING txn_id
        ), legs AS (
            INSERT INTO ledger.postings (txn_id, account, recipient_id, currency, amount_minor)
            SELECT t.txn_id, leg.account, p.recipient_id, p.currency, leg.sign * p.amount_minor
            FROM txn t
            JOIN picked p ON t.txn_id = %(__kind)s || ':' || p.item_id
            CROSS JOIN (VALUES (%(__debit)s, 1), (%(__credit)s, -1)) AS leg(account, sign)
            RETURNING 1
        )
        SELECT count(*) / 2 FROM legs
    """
    bound = dict(params or {}, __kind=kind, __debit=debit, __credit=credit)
    return int(conn.execute(query, bound).fetchone()[0])


def unbalanced(conn: psycopg.Connection) -> list[tuple[str, str, int]]:
    """Transactions whose postings do not sum to zero per currency (must be none)."""
    return conn.execute("SELECT txn_id, currency, imbalance_minor FROM ledger.unbalanced_transactions").fetchall()


def balance(conn: psycopg.Connection, account: str, currency: str | None = None) -> dict[str, int]:
    """An account's balance per currency, as its owner reads it (liabilities positive)."""
    rows = conn.execute(
        "SELECT currency, sum(balance_minor) FROM ledger.balances WHERE account = %s"
        " AND (%s::text IS NULL OR currency = %s) GROUP BY currency",
        (account, currency, currency),
    ).fetchall()
    return {cur: int(total) for cur, total in rows}
