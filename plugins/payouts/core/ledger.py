"""Double-entry postings: build, post, prove balanced. The one writer of the ledger.

Each business event on an item is one ledger transaction named
'<kind>:<item_id>' with two legs (debit +amount, credit -amount) in the item's
currency. The transaction id is the primary key, so an event posted twice
(a retried task, a re-run) adds nothing.

Everything that posts goes through `post_rows` (`post_transfers` for items,
`post_amounts` for amounts that are not an item's, such as a fee), and the
currencies come from `sync_currencies`: nothing else inserts into `ledger.`.
"""

from __future__ import annotations

import re

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
    fx_kind = all(fx_only for *_, fx_only in legs)
    with conn.transaction(), planner_restored(conn):
        # The selection first, with its real size: the items are read through the
        # primary key for a batch and hash-joined for a run (bulk.selected_ids). The CTEs
        # carry no statistics: right after a bulk insert the planner can believe one
        # row and loop over a hundred thousand, so transactions and legs hash-join.
        ids = selected_ids(conn, "_posting", selection, params)
        if ids is None:
            return 0
        conn.execute("SET LOCAL enable_nestloop = off")
        rows = f"""
            SELECT %(__kind)s || ':' || i.item_id || %(__suffix)s, i.recipient_id, i.currency, i.amount_minor,
                   i.paid_currency, i.paid_amount_minor
            FROM payouts.payout_items i
            WHERE i.item_id {ids} {"AND i.paid_currency IS NOT NULL" if fx_kind else ""}
            """
        return post_rows(conn, kind, rows, legs, dict(params or {}, __suffix=txn_suffix))


# kind -> (debit account, credit account) of the amounts that are not an item's own
# (the amount stays the item's id for the transaction's name).
AMOUNT_POSTINGS: dict[str, tuple[str, str]] = {
    # a statement debited more than the item: the provider's fee
    "fee": ("fees", "cash"),
}


def post_amounts(conn: psycopg.Connection, kind: str, selection: str, params: dict | None = None) -> int:
    """Post `kind` for every (item_id, currency, amount_minor) row that `selection` returns.

    One transaction '<kind>:<item_id>' per item, without a recipient; amounts of zero or
    less post nothing. `selection` is SQL written in this package; values come in through `params`.
    """
    debit, credit = AMOUNT_POSTINGS[kind]
    rows = f"""
        SELECT %(__kind)s || ':' || s.item_id, NULL::text, s.currency, s.amount_minor, NULL::text, NULL::bigint
        FROM ({selection}) AS s (item_id, currency, amount_minor)
        WHERE s.amount_minor > 0
        """
    return post_rows(conn, kind, rows, [(debit, 1, "owed", False), (credit, -1, "owed", False)], params)


def post_rows(conn: psycopg.Connection, kind: str, rows: str, legs: list[Leg], params: dict | None = None,
              *, fresh_into: str | None = None) -> int:
    """Post one transaction of `kind` per row that `rows` returns, with `legs`: the one ledger writer.

    `rows` is SQL written in this package returning (txn_id, recipient_id, currency,
    amount_minor, paid_currency, paid_amount_minor); the paid pair is NULL unless the
    payment was converted. A transaction id posted before adds nothing (ON CONFLICT). The
    ids posted now are also inserted into the temporary table `fresh_into` when named.
    Returns the number of transactions posted now.
    """
    values = ", ".join(
        f"(%(__a{i})s, {sign}, %(__s{i})s, {str(fx_only).lower()})" for i, (_, sign, _, fx_only) in enumerate(legs)
    )
    leg_params = {}
    for i, (account, _, side, _) in enumerate(legs):
        leg_params[f"__a{i}"] = account
        leg_params[f"__s{i}"] = side
    if fresh_into is not None and not re.fullmatch(r"[a-z_]+", fresh_into):
        raise ValueError(f"fresh_into must name a temp table of this package, not {fresh_into!r}")
    fresh = f", fresh AS (INSERT INTO {fresh_into} (txn_id) SELECT txn_id FROM txn)" if fresh_into else ""
    query = f"""
        WITH picked AS (
            SELECT r.txn_id, r.recipient_id, r.currency, r.amount_minor,
                   COALESCE(r.paid_currency::text, r.currency) AS paid_currency,
                   COALESCE(r.paid_amount_minor::bigint, r.amount_minor) AS paid_amount_minor,
                   r.paid_currency IS NOT NULL AS converted
            FROM ({rows}) AS r (txn_id, recipient_id, currency, amount_minor, paid_currency, paid_amount_minor)
        ), txn AS (
            INSERT INTO ledger.transactions (txn_id, kind)
            SELECT txn_id, %(__kind)s FROM picked
            ON CONFLICT (txn_id) DO NOTHING
            RETURNING txn_id
        ), legs AS (
            INSERT INTO ledger.postings (txn_id, account, recipient_id, currency, amount_minor)
            SELECT t.txn_id, leg.account, p.recipient_id,
                   CASE leg.side WHEN 'paid' THEN p.paid_currency ELSE p.currency END,
                   leg.sign * CASE leg.side WHEN 'paid' THEN p.paid_amount_minor ELSE p.amount_minor END
            FROM txn t
            JOIN picked p ON t.txn_id = p.txn_id
            CROSS JOIN (VALUES {values}) AS leg(account, sign, side, fx_only)
            WHERE p.converted OR NOT leg.fx_only
        ){fresh}
        SELECT count(*) FROM txn  -- legs runs to completion all the same (a data-modifying WITH)
        """
    bound = dict(params or {}, __kind=kind, **leg_params)
    return int(conn.execute(query, bound).fetchone()[0])


def sync_currencies(conn: psycopg.Connection) -> None:
    """The ledger's currencies from payouts.core.money: one source of truth for exponents."""
    from payouts.core import money

    rows = [
        (code, exp, "crypto" if money.is_crypto(code) else "fiat")
        for code, exp in sorted(money.EXPONENTS.items())
    ]
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO ledger.currencies (code, exponent, kind) VALUES (%s, %s, %s) "
            "ON CONFLICT (code) DO UPDATE SET exponent = EXCLUDED.exponent, kind = EXCLUDED.kind",
            rows,
        )


def post_network_fee(conn: psycopg.Connection, event: str, currency: str, fee_minor: int) -> int:
    """Gas paid for one chain transaction, in the chain's native coin: 'network_fee:<event>' (the
    transaction hash and its block's), from our cash at the provider to fees. Posted once per
    event; returns 1 when posted now."""
    if fee_minor <= 0:
        return 0
    return post_rows(conn, "network_fee", "SELECT %(__txn)s, NULL, %(__currency)s, %(__fee)s::bigint, NULL, NULL",
                     [("fees", 1, "owed", False), ("cash", -1, "owed", False)],
                     {"__txn": f"network_fee:{event}", "__currency": currency, "__fee": fee_minor})


def reverse_network_fees(conn: psycopg.Connection, block_hashes: list[str]) -> int:
    """The gas of transactions in blocks that left the chain was not paid there: each
    'network_fee:<tx>@<block>' reversed once, as '<that id>:reversed'."""
    return post_rows(
        conn, "network_fee_reversal",
        "SELECT t.txn_id || ':reversed', NULL, p.currency, p.amount_minor, NULL, NULL"
        " FROM ledger.transactions t JOIN ledger.postings p USING (txn_id)"
        " WHERE t.kind = 'network_fee' AND p.account = 'fees' AND split_part(t.txn_id, '@', 2) = ANY(%(__blocks)s)",
        [("cash", 1, "owed", False), ("fees", -1, "owed", False)], {"__blocks": list(block_hashes)})


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
