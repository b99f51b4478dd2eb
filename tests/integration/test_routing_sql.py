"""The rail expression (routing.rail_sql) is ROUTES read top to bottom, in PostgreSQL and in polars alike."""

from __future__ import annotations

import itertools

import polars as pl
import psycopg
import pytest

from payouts.core.routing import RAILS, ROUTES, SEPA_COUNTRIES, fallback_sql, planned_rail_sql, rail_sql, route_frame
from tests_support import fresh_database


@pytest.fixture()
def conn():
    url, drop = fresh_database("embedded")
    try:
        with psycopg.connect(url, autocommit=True) as connection:
            yield connection
    finally:
        drop()


def first_match(kind, currency, country):
    """ROUTES read as its docstring says: the first rule whose every named field equals the item's."""
    for route in ROUTES:
        sepa = None if country is None else country in SEPA_COUNTRIES
        if ((route.dest_kind is None or route.dest_kind == kind) and (route.currency is None or route.currency == currency)
                and (route.sepa is None or (sepa is not None and sepa == route.sepa))
                and (route.country is None or route.country == country)):
            return route.rail
    return None


def test_rail_sql_is_the_routing_table_in_postgresql_and_in_polars(conn):
    kinds = ["iban", "local", "wallet", None]
    currencies = ["EUR", "GBP", "USD", "USDC", "CHF", "INR", None]
    countries = ["DE", "FR", "GB", "US", "CH", "TR", "IN", "BR", None]
    assert {"DE", "FR", "GB", "CH"} <= SEPA_COUNTRIES and "TR" not in SEPA_COUNTRIES
    grid = pl.DataFrame(list(itertools.product(kinds, currencies, countries)),
                        schema={"dest_kind": pl.Utf8, "currency": pl.Utf8, "country": pl.Utf8}, orient="row")
    expected = [first_match(*row) for row in grid.iter_rows()]
    in_polars = route_frame(grid)["rail"].to_list()
    in_postgres = [row[0] for row in conn.execute(
        "SELECT " + rail_sql("k", "c", "n") + " FROM unnest(%s::text[], %s::text[], %s::text[])"
        " WITH ORDINALITY AS g(k, c, n, pos) ORDER BY pos",
        (grid["dest_kind"].to_list(), grid["currency"].to_list(), grid["country"].to_list())).fetchall()]
    assert len(in_postgres) == grid.height == 4 * 7 * 9
    assert [row for row in zip(grid.iter_rows(), expected, in_postgres) if row[1] != row[2]] == []
    assert [row for row in zip(grid.iter_rows(), expected, in_polars) if row[1] != row[2]] == []
    assert {"sepa_instant", "faster_payments", "ach", "crypto", "swift"} <= set(in_postgres)


def test_fallback_sql_is_each_rails_own_chain(conn):
    names = sorted(RAILS) + ["no_such_rail"]
    chains = dict(conn.execute("SELECT r, " + fallback_sql("r") + " FROM unnest(%s::text[]) AS g(r)", (names,)).fetchall())
    assert chains == {**{name: list(rail.fallback) for name, rail in RAILS.items()}, "no_such_rail": []}
    assert chains["sepa_instant"] == ["sepa_credit"] and chains["ach"] == ["swift"] and chains["swift"] == []


def test_an_item_shows_its_rail_once_it_is_planned(conn):
    shown = conn.execute(
        "SELECT " + planned_rail_sql("i") + ", " + planned_rail_sql("i", "'unrouted'") +
        " FROM (VALUES ('ach', 1), ('ach', NULL), (NULL, NULL)) AS i (rail, batch_no) ORDER BY i.batch_no").fetchall()
    assert shown == [("ach", "ach"), (None, "unrouted"), (None, "unrouted")]


def test_the_snapshot_numbers_items_rail_by_rail(conn):
    from payouts.payout_run import stages as payout_run

    # Alphabetically the payees alternate between rails; their items must not.
    gb, us = "GB29NWBK60161331926819", ("000123456789", "011000015")
    payees = [("A1", "DE", "EUR", "iban", "DE89370400440532013000", None), ("B1", "GB", "GBP", "iban", gb, None),
              ("C1", "FR", "EUR", "iban", "FR1420041010050500013M02606", None), ("D1", "US", "USD", "local", us, None),
              ("E1", "NL", "EUR", "iban", "NL91ABNA0417164300", None), ("F1", "GB", "GBP", "iban", gb, None),
              ("G1", "US", "USD", "local", us, "EUR"), ("H1", "TR", "EUR", "iban", "TR330006100519786457841326", None),
              ("I1", "US", "EUR", "iban", "DE44500105175407324931", None)]
    for rid, country, cur, kind, account, payout_currency in payees:
        iban, (number, routing) = (account, (None, None)) if kind == "iban" else (None, account)
        conn.execute("INSERT INTO payouts.recipients (recipient_id, name, country, currency, dest_kind, iban,"
                     " account_number, routing_code, payout_currency) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                     (rid, f"Payee {rid}", country, cur, kind, iban, number, routing, payout_currency))
        conn.execute("INSERT INTO ledger.transactions (txn_id, kind) VALUES (%s, 'earning')", (f"earn:{rid}",))
        conn.execute("INSERT INTO ledger.postings (txn_id, account, recipient_id, currency, amount_minor)"
                     " VALUES (%s, 'earnings', %s, %s, 100), (%s, 'payable', %s, %s, -100)",
                     (f"earn:{rid}", rid, cur, f"earn:{rid}", rid, cur))
    run_id = payout_run.open_run(conn, "test-order", "test")
    assert payout_run.snapshot(conn, run_id) == len(payees)
    order = [rid for rid, in conn.execute(
        "SELECT recipient_id FROM payouts.payout_items WHERE run_id = %s ORDER BY item_id", (run_id,)).fetchall()]
    expected = {"A1": "sepa_instant", "C1": "sepa_instant", "E1": "sepa_instant", "B1": "faster_payments",
                "F1": "faster_payments", "D1": "ach", "G1": "swift", "H1": "swift",  # G1 is paid in EUR
                "I1": "sepa_instant"}  # I1 lives in the US; its account is German
    rails = [expected[rid] for rid in order]
    assert sorted(rails) == rails  # one block per rail, in the order of the rails' names
    assert order == sorted(order, key=lambda rid: (expected[rid], rid))
    # The snapshot decided each item's rail, once.
    stored = dict(conn.execute("SELECT recipient_id, rail FROM payouts.payout_items WHERE run_id = %s",
                               (run_id,)).fetchall())
    assert stored == expected
