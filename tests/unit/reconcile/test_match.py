import polars as pl

from payouts.reconcile.match import match_lines


def _lines(rows):
    return pl.DataFrame(rows, schema={"line_id": pl.Int64, "end_to_end_id": pl.Utf8, "amount_minor": pl.Int64,
                                      "currency": pl.Utf8, "return_reason": pl.Utf8}, orient="row")


def _items(rows):
    return pl.DataFrame(rows, schema={"item_id": pl.Utf8, "amount_minor": pl.Int64, "currency": pl.Utf8,
                                      "already_matched": pl.Boolean}, orient="row")


def test_exact_match_duplicates_returns_and_breaks():
    lines = _lines([
        (1, "A", -1000, "EUR", None),     # exact
        (2, "A", -1000, "EUR", None),     # the same item debited again
        (3, "B", -999, "EUR", None),      # amount differs
        (4, "C", -500, "GBP", None),      # currency differs
        (5, "ZZ", -700, "EUR", None),     # nobody we paid
        (6, "D", 300, "EUR", "AC04"),     # a return
        (7, "E", -100, "EUR", None),      # settled by an earlier pass already
    ])
    items = _items([("A", 1000, "EUR", False), ("B", 1000, "EUR", False), ("C", 500, "EUR", False),
                    ("D", 300, "EUR", True), ("E", 100, "EUR", True)])
    result = match_lines(lines, items)
    assert result.matches.select("line_id", "item_id", "rule").rows() == [(1, "A", "exact_end_to_end")]
    assert result.returns.select("line_id", "item_id", "return_reason").rows() == [(6, "D", "AC04")]
    breaks = {(r["break_type"], r["line_id"]) for r in result.breaks.iter_rows(named=True)}
    assert breaks == {("duplicate_payment", 2), ("duplicate_payment", 7), ("amount_mismatch", 3),
                      ("currency_mismatch", 4), ("unexpected_at_provider", 5), ("returned", 6)}
    # Every line is accounted for exactly once, as a match or a break (a return is both).
    handled = set(result.matches["line_id"]) | set(result.breaks["line_id"])
    assert handled == set(lines["line_id"])


def test_unexpected_break_has_no_item_and_detail_is_json():
    import json

    result = match_lines(_lines([(9, None, -1, "EUR", None)]), _items([]))
    row = result.breaks.row(0, named=True)
    assert row["break_type"] == "unexpected_at_provider" and row["item_id"] is None
    assert json.loads(row["detail"])["line_amount_minor"] == -1
