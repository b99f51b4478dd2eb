"""Matching in polars: statement lines x payout items -> matches, returns and breaks.

Pure functions over frames, no warehouse: the unit tests feed tiny frames in.

lines:  line_id, end_to_end_id, amount_minor (signed, debit < 0), currency, return_reason
items:  item_id, amount_minor (> 0), currency, already_matched (bool: settled by an earlier pass)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import polars as pl


@dataclass
class MatchResult:
    matches: "pl.DataFrame"   # line_id, item_id, rule
    returns: "pl.DataFrame"   # line_id, item_id, rule, return_reason
    breaks: "pl.DataFrame"    # break_type, item_id (nullable), line_id, detail (json text)


def match_lines(lines: "pl.DataFrame", items: "pl.DataFrame") -> MatchResult:
    import polars as pl

    joined = lines.join(
        items.rename({"amount_minor": "item_amount", "currency": "item_currency"}),
        left_on="end_to_end_id", right_on="item_id", how="left", coalesce=False,
    )
    debit = pl.col("amount_minor") < 0
    known = pl.col("item_id").is_not_null()
    same_ccy = pl.col("currency") == pl.col("item_currency")
    same_amount = pl.col("amount_minor").abs() == pl.col("item_amount")
    # Money back on a paid item: a return (the reason may be missing on some statements).
    is_return = ~debit

    exact = joined.filter(debit & known & same_ccy & same_amount).sort("line_id")
    # The first debit of an item not settled before is its match; any other is a duplicate.
    exact = exact.with_columns(
        first=(pl.col("line_id") == pl.col("line_id").min().over("item_id")) & ~pl.col("already_matched")
    )
    matches = exact.filter("first").select("line_id", "item_id", rule=pl.lit("exact_end_to_end"))
    duplicates = exact.filter(~pl.col("first"))

    returns = joined.filter(is_return & known & same_ccy & same_amount).select(
        "line_id", "item_id", "return_reason", rule=pl.lit("return_end_to_end")
    )
    handled = pl.concat([exact.select("line_id"), returns.select("line_id")])
    rest = joined.join(handled, on="line_id", how="anti")

    def brk(frame: pl.DataFrame, kind: str, item: bool = True) -> pl.DataFrame:
        return frame.select(
            break_type=pl.lit(kind),
            item_id=pl.col("item_id") if item else pl.lit(None, dtype=pl.Utf8),
            line_id="line_id",
            detail=pl.format(
                '{{"line_amount_minor": {}, "line_currency": "{}", "item_amount_minor": {}, "item_currency": "{}"}}',
                pl.col("amount_minor"), pl.col("currency"),
                pl.col("item_amount").fill_null(0), pl.col("item_currency").fill_null(""),
            ),
        )

    breaks = pl.concat([
        brk(duplicates, "duplicate_payment"),
        brk(rest.filter(known & ~same_ccy), "currency_mismatch"),
        brk(rest.filter(known & same_ccy & ~same_amount), "amount_mismatch"),
        brk(rest.filter(~known), "unexpected_at_provider", item=False),
        brk(returns.join(joined, on="line_id").select(
            "line_id", "item_id", "amount_minor", "currency", "item_amount", "item_currency"), "returned"),
    ])
    return MatchResult(matches=matches, returns=returns, breaks=breaks)
