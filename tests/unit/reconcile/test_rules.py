"""Each matching rule on tiny frames, and the order in which the rules consume lines and items."""

from __future__ import annotations

import datetime as dt

import polars as pl

from payouts.reconcile.match import match_lines
from payouts.reconcile.rules import RULES, rule

LINE = {"line_id": pl.Int64, "end_to_end_id": pl.Utf8, "amount_minor": pl.Int64, "currency": pl.Utf8,
        "return_reason": pl.Utf8, "status": pl.Utf8, "charges_minor": pl.Int64, "counterparty_name": pl.Utf8,
        "booking_date": pl.Date, "entry_ref": pl.Utf8}
ITEM = {"item_id": pl.Utf8, "amount_minor": pl.Int64, "currency": pl.Utf8, "already_matched": pl.Boolean,
        "status": pl.Utf8, "run_id": pl.Utf8, "rail": pl.Utf8, "batch_no": pl.Int64, "recipient_name": pl.Utf8,
        "accepted_on": pl.Date}
DAY = dt.date(2026, 3, 2)


def line(line_id, e2e, amount, ccy="EUR", *, status="booked", charges=None, name=None, ref=None, day=DAY):
    return {"line_id": line_id, "end_to_end_id": e2e, "amount_minor": amount, "currency": ccy,
            "return_reason": None, "status": status, "charges_minor": charges, "counterparty_name": name,
            "booking_date": day, "entry_ref": ref or f"REF{line_id}"}


def item(item_id, amount, ccy="EUR", *, batch=None, name=None, status="accepted", matched=False):
    run, rail, no = batch or (None, None, None)
    return {"item_id": item_id, "amount_minor": amount, "currency": ccy, "already_matched": matched,
            "status": status, "run_id": run, "rail": rail, "batch_no": no, "recipient_name": name,
            "accepted_on": DAY - dt.timedelta(days=1)}


def frames(lines, items):
    return pl.DataFrame(lines, schema=LINE), pl.DataFrame(items, schema=ITEM)


def matched(result):
    return sorted(result.matches.select("line_id", "item_id", "rule").rows())


def break_types(result):
    return sorted((r["break_type"], r["line_id"]) for r in result.breaks.iter_rows(named=True))


def test_rules_are_data_in_order_with_their_parameters():
    assert [r.order for r in RULES] == sorted(r.order for r in RULES)
    assert [r.name for r in RULES if r.direction == "debit"] == [
        "exact_end_to_end", "batch_sum", "with_fee", "fx_tolerance", "suggestion"]
    assert rule("fx_tolerance").param("tolerance_bp") == 150
    assert rule("with_fee").param("max_fee_minor")["EUR"] > 0


def test_batch_sum_matches_every_item_of_the_one_batch_with_that_sum():
    b1, b2 = ("R1", "sepa_credit", 1), ("R1", "sepa_credit", 2)
    lines, items = frames([line(1, None, -600)], [
        item("A", 100, batch=b1), item("B", 200, batch=b1), item("C", 300, batch=b1),
        item("D", 250, batch=b2), item("E", 250, batch=b2), item("F", 999, batch=b2)])
    result = match_lines(lines, items)
    assert matched(result) == [(1, "A", "batch_sum"), (1, "B", "batch_sum"), (1, "C", "batch_sum")]
    assert result.breaks.height == 0


def test_ambiguous_batch_sums_match_nothing():
    b1, b2 = ("R1", "sepa_credit", 1), ("R1", "sepa_credit", 2)
    lines, items = frames([line(1, None, -300)], [
        item("A", 100, batch=b1), item("B", 200, batch=b1), item("C", 150, batch=b2), item("D", 150, batch=b2)])
    result = match_lines(lines, items)
    assert result.matches.height == 0
    assert break_types(result) == [("unexpected_at_provider", 1)]
    # Two lines for the one batch: neither may claim it.
    lines, items = frames([line(1, None, -300), line(2, None, -300)],
                          [item("A", 100, batch=b1), item("B", 200, batch=b1)])
    assert match_lines(lines, items).matches.height == 0


def test_a_batch_reference_on_the_line_decides_between_equal_sums():
    b1, b2 = ("R1", "sepa_credit", 1), ("R1", "sepa_credit", 2)
    lines, items = frames([line(1, None, -300, ref="BOOKING R1-sepa_credit-2")], [
        item("A", 100, batch=b1), item("B", 200, batch=b1), item("C", 150, batch=b2), item("D", 150, batch=b2)])
    assert matched(match_lines(lines, items)) == [(1, "C", "batch_sum"), (1, "D", "batch_sum")]


def test_nb_of_txs_must_agree_with_the_batch():
    b1 = ("R1", "sepa_credit", 1)
    lines, items = frames([line(1, None, -300)], [item("A", 100, batch=b1), item("B", 200, batch=b1)])
    assert match_lines(lines.with_columns(nb_of_txs=pl.lit(3, pl.Int64)), items).matches.height == 0
    assert match_lines(lines.with_columns(nb_of_txs=pl.lit(2, pl.Int64)), items).matches.height == 2


def test_a_line_or_item_consumed_by_the_exact_rule_is_not_reused_by_the_batch_rule():
    b1 = ("R1", "sepa_credit", 1)
    # Line 1 pays A exactly; line 2 (no reference) is worth A + B: the batch without A sums to 200 only.
    lines, items = frames([line(1, "A", -100), line(2, None, -300)],
                          [item("A", 100, batch=b1), item("B", 200, batch=b1), item("C", 200, batch=b1)])
    result = match_lines(lines, items)
    assert (1, "A", "exact_end_to_end") in matched(result)
    assert all(r[0] != 2 or r[1] != "A" for r in matched(result))
    # Once A is consumed, B + C = 400, so 300 matches no batch.
    assert [r for r in matched(result) if r[0] == 2] == []
    assert ("unexpected_at_provider", 2) in break_types(result)
    # Items settled by an earlier pass are not part of a batch's open sum.
    lines, items = frames([line(3, None, -400)], [item("A", 100, batch=b1, matched=True, status="settled"),
                                                  item("B", 200, batch=b1), item("C", 200, batch=b1)])
    assert matched(match_lines(lines, items)) == [(3, "B", "batch_sum"), (3, "C", "batch_sum")]


def test_with_fee_uses_the_reported_charges_or_the_max_fee():
    lines, items = frames([
        line(1, "A", -1_050, charges=50),       # reported charge, adds up
        line(2, "B", -1_050, charges=40),       # reported charge does not add up
        line(3, "C", -1_200),                   # no charge reported, within the EUR max fee
        line(4, "D", -9_000),                   # far beyond any fee
    ], [item("A", 1_000), item("B", 1_000), item("C", 1_000), item("D", 1_000)])
    result = match_lines(lines, items)
    assert matched(result) == [(1, "A", "with_fee"), (3, "C", "with_fee")]
    assert sorted(result.fees.select("item_id", "fee_minor").rows()) == [("A", 50), ("C", 200)]
    assert break_types(result) == [("amount_mismatch", 2), ("amount_mismatch", 4)]


def test_with_fee_on_an_item_paid_before_is_a_duplicate():
    lines, items = frames([line(1, "A", -1_000), line(2, "A", -1_050, charges=50)], [item("A", 1_000)])
    result = match_lines(lines, items)
    assert matched(result) == [(1, "A", "exact_end_to_end")]
    assert break_types(result) == [("duplicate_payment", 2)]
    assert result.fees.height == 0


def test_fx_within_tolerance_of_the_quote_in_either_direction():
    quotes = pl.DataFrame({"item_id": ["A", "B", "C", "D"], "from_currency": ["GBP", "GBP", "EUR", "USD"],
                           "to_currency": ["EUR", "EUR", "GBP", "EUR"], "rate": ["1.17", "1.17", "0.85", "0.9"],
                           "fee_minor": [0, 0, 0, 0]})
    lines, items = frames([
        line(1, "A", -11_750),            # GBP 100.00 at 1.17 = EUR 117.00, +0.4 %
        line(2, "B", -12_000),            # +2.6 %: beyond 1.5 %
        line(3, "C", -11_700),            # quoted EUR->GBP 0.85: GBP 100 = EUR 117.65
        line(4, "E", -10_000),            # no quote
        line(5, "JP", -6_500),            # JPY 10,000 at 0.0065 (exponent 0 -> 2) = EUR 65.00
    ], [item("A", 10_000, "GBP"), item("B", 10_000, "GBP"), item("C", 10_000, "GBP"), item("E", 10_000, "GBP"),
        item("JP", 10_000, "JPY")])
    quotes = pl.concat([quotes, pl.DataFrame({"item_id": ["JP"], "from_currency": ["JPY"], "to_currency": ["EUR"],
                                              "rate": ["0.0065"], "fee_minor": [0]})])
    result = match_lines(lines, items, quotes)
    assert matched(result) == [(1, "A", "fx_tolerance"), (3, "C", "fx_tolerance"), (5, "JP", "fx_tolerance")]
    assert break_types(result) == [("currency_mismatch", 2), ("currency_mismatch", 4)]


def test_pending_lines_never_match_or_break():
    lines, items = frames([line(1, "A", -100, status="pending"), line(2, None, -300, status="pending")],
                          [item("A", 100), item("B", 300, batch=("R1", "x", 1)), item("C", 0 + 1, batch=("R1", "x", 1))])
    result = match_lines(lines, items)
    assert result.matches.height == 0 and result.breaks.height == 0 and result.suggestions.height == 0


def test_suggestions_block_by_currency_amount_date_and_name():
    lines, items = frames([
        line(1, None, -10_050, name="SCHMIDT, Anna"),     # close amount, same person
        line(2, None, -10_000, name="Someone Else"),      # right amount, wrong name
        line(3, None, -20_000, name="Anna Schmidt"),      # name right, amount far
        line(4, None, -10_000, "GBP", name="Anna Schmidt"),   # other currency
        line(5, None, -10_000, name="Anna Schmidt", day=DAY + dt.timedelta(days=30)),  # outside the window
    ], [item("A", 10_000, name="Anna Schmidt"), item("B", 10_000, name="Bob Jones")])
    result = match_lines(lines, items)
    rows = result.suggestions.rows(named=True)
    assert [(r["line_id"], r["item_id"], r["rule"]) for r in rows] == [(1, "A", "suggestion")]
    assert 80 <= rows[0]["confidence"] <= 100
    # A suggestion is not a match: the line stays an unexpected break until a person confirms it.
    assert result.matches.height == 0
    assert ("unexpected_at_provider", 1) in break_types(result)


def test_suggestions_skip_items_consumed_by_earlier_rules():
    lines, items = frames([line(1, "A", -10_000), line(2, None, -10_000, name="Anna Schmidt")],
                          [item("A", 10_000, name="Anna Schmidt")])
    result = match_lines(lines, items)
    assert matched(result) == [(1, "A", "exact_end_to_end")]
    assert result.suggestions.height == 0
