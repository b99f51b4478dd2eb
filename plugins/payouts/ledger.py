"""Double-entry postings: build, post, prove balanced.

Each business event on an item is one ledger transaction named
'<kind>:<item_id>' with two legs (debit +amount, credit -amount) in the item's
currency. The transaction id is the primary key, so an event posted twice
(a retried task, a re-run) adds nothing.
"""

from __future__ import annotations

import psycopg

from payouts.warehouse.bulk import planner_restored, selected_ids

# kind -> legs (account, sign, side, fx_only). A debit is +, a credit -. `side`
# says which amount a leg carries: 'owed' (the item's amount in the currency the
# platform owes) or 'paid' (what the provider paid out, in the payee's currency;
# the same as owed unless the item was converted). Legs marked fx_only are
# posted only for converted items: each currency side balances on its own
# through the fx_position account. Liabilities are credit-normal.
Leg = tuple[str, int, str, bool]
TRANSFERS: dict[str, list[Leg]] = {
    # snapshot: freeze what a run will pay
    "reserve": [("payable", 1, "owed", False), ("reserved", -1, "owed", False)],
    # final rejection or cancellation: owed again
    "release": [("reserved", 1, "owed", False), ("payable", -1, "owed", False)],
    # accepted by the provider
    "send": [("reserved", 1, "owed", False), ("clearing", -1, "owed", False)],
    # a converted payment: the owed currency leaves clearing, the paid currency enters it
    "fx": [("clearing", 1, "owed", True), ("fx_position", -1, "owed", True),
           ("fx_position", 1, "paid", True), ("clearing", -1, "paid", True)],
    # seen debited on a provider statement
    "settle": [("clearing", 1, "paid", False), ("cash", -1, "paid", False)],
    # came back after settlement: owed again (converted back at the quoted amounts)
    "return": [("cash", 1, "paid", False), ("fx_position", -1, "paid", True),
               ("fx_position", 1, "owed", True), ("payable", -1, "owed", False)],
    # came back before its debit was seen
    "return_unsettled": [("clearing", 1, "paid", False), ("fx_position", -1, "paid", True),
                         ("fx_position", 1, "owed", True), ("payable", -1, "owed", False)],
    # the chain reorganised its payment away after it was accepted: reserved again, sent again later
    "unsend": [("clearing", 1, "paid", False), ("fx_position", -1, "paid", True),
               ("fx_position", 1, "owed", True), ("reserved", -1, "owed", False)],
    # ... after it was settled
    "unsettle": [("cash", 1, "paid", False), ("fx_position", -1, "paid", True),
                 ("fx_position", 1, "owed", True), ("reserved", -1, "owed", False)],
}


def post_transfers(conn: psycopg.Connection, kind: str, selection: str, params: dict | None = None,
                   txn_suffix: str = "") -> int:
    """Post `kind` for every item id that `selection` (a SELECT of item ids) returns.

    `selection` is SQL written in this package, never user text; its values
    come in through `params`. Returns the number of transactions posted now.
    `txn_suffix` names an event that happens again to the same item (the nth
    reversal after a chain reorganisation): '<kind>:<item_id><suffix>'.
    """
    legs = TRANSFERS[kind]
    values = ", ".join(
        f"(%(__a{i})s, {sign}, %(__s{i})s, {str(fx_only).lower()})" for i, (_, sign, _, fx_only) in enumerate(legs)
    )
    leg_params = {}
    for i, (account, _, side, _) in enumerate(legs):
        leg_params[f"__a{i}"] = account
        leg_params[f"__s{i}"] = side
    fx_kind = all(fx_only for *_, fx_only in legs)
    bound = dict(params or {}, __kind=kind, __suffix=txn_suffix, **leg_params)
    with conn.transaction(), planner_restored(conn):
        # The selection first, with its real size: the items are read through the
        # primary key for a batch and hash-joined for a run (bulk.selected_ids). The CTEs
        # carry no statistics: right after a bulk insert the planner can believe one
        # row and loop over a hundred thousand, so transactions and legs hash-join.
        ids = selected_ids(conn, "_posting", selection, params)
        if ids is None:
            posted = 0
        else:
            conn.execute("SET LOCAL enable_nestloop = off")
            posted = int(conn.execute(_transfer_query(ids, values, fx_kind), bound).fetchone()[0])
    return posted


def _transfer_query(ids: str, values: str, fx_kind: bool) -> str:
    return f"""
        WITH picked AS (
            SELECT i.item_id, i.recipient_id, i.currency, i.amount_minor,
                   COALESCE(i.paid_currency, i.currency) AS paid_currency,
                   COALESCE(i.paid_amount_minor, i.amount_minor) AS paid_amount_minor,
                   i.paid_currency IS NOT NULL AS converted
            FROM payouts.payout_items i
            WHERE i.item_id {ids} {"AND i.paid_currency IS NOT NULL" if fx_kind else ""}
        ), txn AS (
            INSERT INTO ledger.transactions (txn_id, kind)
            SELECT %(__kind)s || ':' || item_id || %(__suffix)s, %(__kind)s FROM picked
            ON CONFLICT (txn_id) DO NOTHING
            RETURNING txn_id
        ), legs AS (
            INSERT INTO ledger.postings (txn_id, account, recipient_id, currency, amount_minor)
            SELECT t.txn_id, leg.account, p.recipient_id,
                   CASE leg.side WHEN 'paid' THEN p.paid_currency ELSE p.currency END,
                   leg.sign * CASE leg.side WHEN 'paid' THEN p.paid_amount_minor ELSE p.amount_minor END
            FROM txn t
            JOIN picked p ON t.txn_id = %(__kind)s || ':' || p.item_id || %(__suffix)s
            CROSS JOIN (VALUES {values}) AS leg(account, sign, side, fx_only)
            WHERE p.converted OR NOT leg.fx_only
        )
        SELECT count(*) FROM txn  -- legs runs to completion all the same (a data-modifying WITH)
        """


def post_network_fee(conn: psycopg.Connection, event: str, currency: str, fee_minor: int) -> int:
    """Gas paid for one chain transaction, in the chain's native coin: 'network_fee:<event>' (the
    transaction hash and its block's), from our cash at the provider to fees. Posted once per
    event; returns 1 when posted now."""
    if fee_minor <= 0:
        return 0
    with conn.transaction():
        if conn.execute("INSERT INTO ledger.transactions (txn_id, kind) VALUES (%s, 'network_fee')"
                        " ON CONFLICT (txn_id) DO NOTHING RETURNING 1", (f"network_fee:{event}",)).fetchone():
            conn.execute("INSERT INTO ledger.postings (txn_id, account, currency, amount_minor) VALUES"
                         " (%(t)s, 'fees', %(c)s, %(a)s), (%(t)s, 'cash', %(c)s, -%(a)s)",
                         {"t": f"network_fee:{event}", "c": currency, "a": fee_minor})
            return 1
    return 0


def unbalanced(conn: psycopg.Connection) -> list[tuple[str, str, int]]:
    """Transactions whose postings do not sum to zero per currency (must be none)."""
    return conn.execute("SELECT txn_id, currency, imbalance_minor FROM ledger.unbalanced_transactions").fetchall()


def orphans(conn: psycopg.Connection) -> list[tuple[int, str]]:
    """Postings without their transaction (must be none): (posting_id, txn_id)."""
    return conn.execute("SELECT posting_id, txn_id FROM ledger.orphan_postings ORDER BY posting_id").fetchall()


def balance(conn: psycopg.Connection, account: str, currency: str | None = None) -> dict[str, int]:
    """An account's balance per currency, as its owner reads it (liabilities positive)."""
    rows = conn.execute(
        "SELECT currency, sum(balance_minor) FROM ledger.balances WHERE account = %s"
        " AND (%s::text IS NULL OR currency = %s) GROUP BY currency",
        (account, currency, currency),
    ).fetchall()
    return {cur: int(total) for cur, total in rows}
