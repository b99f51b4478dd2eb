"""Matching in polars: statement lines x payout items -> matches, returns, fees, suggestions and breaks.

Pure functions over frames, no warehouse: the unit tests feed tiny frames in.
The rules of payouts.reconcile.rules apply in their order; each one sees only
the lines and items that no earlier rule consumed.

lines:  line_id, end_to_end_id, amount_minor (signed, debit < 0), currency, return_reason
        optional: status ('booked' | 'pending'; pending lines are ignored), charges_minor,
        counterparty_name, booking_date, value_date, entry_ref, remittance_info, nb_of_txs
items:  item_id, amount_minor (> 0), currency, already_matched (bool: settled by an earlier pass)
        optional: status (rules 2-5 take only 'accepted' items), run_id, rail, batch_no,
        batch_ref, recipient_name, accepted_on (date)
quotes: item_id, from_currency, to_currency, rate (decimal text or number), fee_minor (in the
        debited currency; optional)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from payouts.reconcile.rules import RULES_BY_NAME, Rule

if TYPE_CHECKING:
    import polars as pl

_LINE_OPTIONAL = {
    "status": "Utf8", "charges_minor": "Int64", "counterparty_name": "Utf8", "booking_date": "Date",
    "value_date": "Date", "entry_ref": "Utf8", "remittance_info": "Utf8", "nb_of_txs": "Int64",
}
_ITEM_OPTIONAL = {
    "already_matched": "Boolean", "status": "Utf8", "run_id": "Utf8", "rail": "Utf8", "batch_no": "Int64",
    "batch_ref": "Utf8", "recipient_name": "Utf8", "accepted_on": "Date",
}


@dataclass
class MatchResult:
    matches: "pl.DataFrame"           # line_id, item_id, rule
    returns: "pl.DataFrame"           # line_id, item_id, rule, return_reason
    breaks: "pl.DataFrame"            # break_type, item_id (nullable), line_id, detail (json text)
    fees: "pl.DataFrame | None" = None         # line_id, item_id, currency, fee_minor (> 0)
    suggestions: "pl.DataFrame | None" = None  # line_id, item_id, confidence (0-100), rule, name_score


def _with_optional(frame: "pl.DataFrame", optional: dict[str, str]) -> "pl.DataFrame":
    import polars as pl

    missing = {name: dtype for name, dtype in optional.items() if name not in frame.columns}
    return frame.with_columns(pl.lit(None, dtype=getattr(pl, dtype)).alias(n) for n, dtype in missing.items())


def match_lines(lines: "pl.DataFrame", items: "pl.DataFrame", quotes: "pl.DataFrame | None" = None,
                rules: dict[str, Rule] | None = None) -> MatchResult:
    import polars as pl

    from payouts.core.money import EXPONENTS

    rules = dict(RULES_BY_NAME, **(rules or {}))
    lines = _with_optional(lines, _LINE_OPTIONAL)
    # Pending lines never match, settle or break anything: they wait until booked.
    lines = lines.filter(pl.col("status").is_null() | (pl.col("status") == "booked"))
    items = _with_optional(items, _ITEM_OPTIONAL).with_columns(pl.col("already_matched").fill_null(False))
    if quotes is None:
        quotes = pl.DataFrame(schema={"item_id": pl.Utf8, "from_currency": pl.Utf8, "to_currency": pl.Utf8,
                                      "rate": pl.Utf8, "fee_minor": pl.Int64})

    joined = lines.join(
        items.select("item_id", "already_matched", item_amount="amount_minor", item_currency="currency"),
        left_on="end_to_end_id", right_on="item_id", how="left", coalesce=False,
    ).with_columns(pl.col("already_matched").fill_null(False))
    debit = pl.col("amount_minor") < 0
    known = pl.col("item_id").is_not_null()
    same_ccy = pl.col("currency") == pl.col("item_currency")
    same_amount = pl.col("amount_minor").abs() == pl.col("item_amount")
    # Money back on a paid item: a return (the reason may be missing on some statements).
    is_return = ~debit

    # -- rule 1: exact EndToEndId, amount and currency ----------------------------------------
    exact = joined.filter(debit & known & same_ccy & same_amount).sort("line_id")
    # The first debit of an item not settled before is its match; any other is a duplicate.
    exact = exact.with_columns(
        first=(pl.col("line_id") == pl.col("line_id").min().over("item_id")) & ~pl.col("already_matched")
    )
    exact_matches = exact.filter("first").select("line_id", "item_id", rule=pl.lit("exact_end_to_end"))
    duplicates = exact.filter(~pl.col("first"))

    returns = joined.filter(is_return & known & same_ccy & same_amount).select(
        "line_id", "item_id", "return_reason", rule=pl.lit("return_end_to_end")
    )
    handled = pl.concat([exact.select("line_id"), returns.select("line_id")])
    rest = joined.join(handled, on="line_id", how="anti")
    referenced = rest.filter(known)
    unreferenced = rest.filter(~known)
    consumed = exact_matches.select("item_id")

    # Items the later rules may take: accepted, not matched before, not consumed by an earlier rule.
    open_items = items.filter(
        (pl.col("status").is_null() | (pl.col("status") == "accepted")) & ~pl.col("already_matched")
    )

    # -- rule 2: one debit for a whole submission batch ----------------------------------------
    batch_matches = _batch_sum(unreferenced.filter(debit),
                               open_items.join(consumed, on="item_id", how="anti"), rules["batch_sum"])
    consumed = pl.concat([consumed, batch_matches.select("item_id")])
    unreferenced = unreferenced.join(batch_matches.select("line_id").unique(), on="line_id", how="anti")

    # -- rule 3: the item's amount plus a charge ------------------------------------------------
    fee_rule = rules["with_fee"]
    diff = pl.col("amount_minor").abs() - pl.col("item_amount")
    max_fee = pl.col("currency").replace_strict(dict(fee_rule.param("max_fee_minor")), default=None,
                                                return_dtype=pl.Int64)
    fee_ok = debit & same_ccy & (diff > 0) & pl.when(pl.col("charges_minor").is_not_null()).then(
        diff == pl.col("charges_minor")).otherwise(diff <= max_fee).fill_null(False)
    fee_lines = referenced.filter(fee_ok).with_columns(fee_minor=diff)
    fee_matches, fee_duplicates = _first_per_item(fee_lines, consumed, "with_fee")
    fees = fee_matches.join(fee_lines.select("line_id", "currency", "fee_minor"), on="line_id").select(
        "line_id", "item_id", "currency", "fee_minor")
    consumed = pl.concat([consumed, fee_matches.select("item_id")])

    # -- rule 4: another currency, at the quoted rate, within the tolerance ---------------------
    fx_lines = _fx_within_tolerance(referenced.filter(debit & ~same_ccy), quotes, rules["fx_tolerance"], EXPONENTS)
    fx_matches, fx_duplicates = _first_per_item(fx_lines, consumed, "fx_tolerance")
    consumed = pl.concat([consumed, fx_matches.select("item_id")])

    settled_by_rule = pl.concat([fee_lines.select("line_id"), fx_lines.select("line_id")])
    mismatched = referenced.join(settled_by_rule, on="line_id", how="anti")

    # -- rule 5: suggestions for debits nobody claimed ------------------------------------------
    suggestions = _suggest(unreferenced.filter(debit), open_items.join(consumed, on="item_id", how="anti"),
                           rules["suggestion"])

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

    dup_lines = pl.concat([fee_duplicates.select("line_id"), fx_duplicates.select("line_id")])
    breaks = pl.concat([
        brk(duplicates, "duplicate_payment"),
        brk(referenced.join(dup_lines, on="line_id", how="semi"), "duplicate_payment"),
        brk(mismatched.filter(~same_ccy), "currency_mismatch"),
        brk(mismatched.filter(same_ccy & ~same_amount), "amount_mismatch"),
        brk(unreferenced, "unexpected_at_provider", item=False),
        brk(returns.join(joined, on="line_id").select(
            "line_id", "item_id", "amount_minor", "currency", "item_amount", "item_currency"), "returned"),
    ])
    matches = pl.concat([exact_matches, batch_matches, fee_matches, fx_matches])
    return MatchResult(matches=matches, returns=returns, breaks=breaks, fees=fees, suggestions=suggestions)


def _first_per_item(candidates: "pl.DataFrame", consumed: "pl.DataFrame", rule: str):
    """The first candidate line of each still-open item matches; any other line debited it twice."""
    import polars as pl

    taken = pl.col("item_id").is_in(consumed["item_id"].implode())
    candidates = candidates.sort("line_id")
    first = ((pl.col("line_id") == pl.col("line_id").min().over("item_id"))
             & ~pl.col("already_matched") & ~taken)
    candidates = candidates.with_columns(first=first)
    matches = candidates.filter("first").select("line_id", "item_id", rule=pl.lit(rule))
    return matches, candidates.filter(~pl.col("first")).select("line_id", "item_id")


def _batch_sum(lines: "pl.DataFrame", open_items: "pl.DataFrame", rule: Rule) -> "pl.DataFrame":
    """Lines whose amount is the sum of exactly one open batch, exploded to that batch's items."""
    import polars as pl

    keys = ["run_id", "rail", "batch_no", "currency"]
    batch_items = open_items.filter(pl.col("run_id").is_not_null() & pl.col("batch_no").is_not_null())
    empty = pl.DataFrame(schema={"line_id": pl.Int64, "item_id": pl.Utf8, "rule": pl.Utf8})
    if lines.height == 0 or batch_items.height == 0:
        return empty
    batches = batch_items.group_by(keys).agg(
        batch_sum=pl.col("amount_minor").sum(),
        batch_items=pl.len().cast(pl.Int64),
        batch_ref=pl.col("batch_ref").first(),
    ).with_columns(batch_ref=pl.coalesce(
        "batch_ref", pl.concat_str("run_id", "rail", pl.col("batch_no").cast(pl.Utf8), separator="-")))
    pairs = lines.with_columns(line_abs=pl.col("amount_minor").abs()).join(
        batches, left_on=["line_abs", "currency"], right_on=["batch_sum", "currency"], how="inner",
    )
    refers = (pl.col("entry_ref").fill_null("").str.contains(pl.col("batch_ref"), literal=True)
              | pl.col("remittance_info").fill_null("").str.contains(pl.col("batch_ref"), literal=True))
    pairs = pairs.with_columns(by_ref=refers).filter(
        # NbOfTxs, when the statement gives it, must agree with the batch's item count.
        (pl.col("nb_of_txs").is_null() | (pl.col("nb_of_txs") == pl.col("batch_items")))
        # A single open item is a batch only when the line names it; otherwise it is a suggestion's job.
        & ((pl.col("batch_items") >= 2) | pl.col("by_ref"))
    )
    # A reference that names a batch outweighs batches that only share the sum.
    pairs = pairs.filter(pl.col("by_ref") | ~pl.col("by_ref").any().over("line_id"))
    unique = pairs.filter((pl.len().over("line_id") == 1) & (pl.len().over(keys) == 1))
    if unique.height == 0:
        return empty
    return unique.select("line_id", *keys).join(batch_items.select("item_id", *keys), on=keys).select(
        "line_id", "item_id", rule=pl.lit("batch_sum")).sort("line_id", "item_id")


def _fx_within_tolerance(lines: "pl.DataFrame", quotes: "pl.DataFrame", rule: Rule,
                         exponents: dict[str, int]) -> "pl.DataFrame":
    """Referenced debits in another currency whose amount is within tolerance of the quoted conversion."""
    import polars as pl

    if lines.height == 0 or quotes.height == 0:
        return lines.clear()
    if "fee_minor" not in quotes.columns:
        quotes = quotes.with_columns(fee_minor=pl.lit(0, pl.Int64))
    quotes = quotes.select("item_id", "from_currency", "to_currency",
                           rate=pl.col("rate").cast(pl.Utf8).cast(pl.Float64),
                           quote_fee=pl.col("fee_minor").cast(pl.Int64).fill_null(0))
    exp = lambda c: pl.col(c).replace_strict(exponents, default=None, return_dtype=pl.Int64)  # noqa: E731
    scale = pl.lit(10.0).pow((exp("currency") - exp("item_currency")).cast(pl.Float64))
    forward = (pl.col("from_currency") == pl.col("item_currency")) & (pl.col("to_currency") == pl.col("currency"))
    backward = (pl.col("from_currency") == pl.col("currency")) & (pl.col("to_currency") == pl.col("item_currency"))
    # Floats only measure the distance to the quote (a tolerance test); every amount matched,
    # posted or stored stays the integer minor units of the line and the item.
    converted = pl.when(forward).then(pl.col("item_amount") * pl.col("rate")).when(backward).then(
        pl.col("item_amount") / pl.col("rate")) * scale
    expected = converted + pl.col("quote_fee")
    tolerance = rule.param("tolerance_bp") / 10_000
    return lines.join(quotes, on="item_id", how="inner").filter(
        ((pl.col("amount_minor").abs() - expected).abs() <= expected * tolerance).fill_null(False)
    ).drop("from_currency", "to_currency", "rate", "quote_fee")


def _suggest(lines: "pl.DataFrame", open_items: "pl.DataFrame", rule: Rule) -> "pl.DataFrame":
    """Candidate items for unclaimed debits: same currency, amount band, date window, similar name.

    Candidates are blocked by currency and a logarithmic amount bucket (a line only meets items in
    its own bucket and the two next to it), so the name comparison runs on a few pairs per line,
    not on lines x items; the names are compared in one batched rapidfuzz call.
    """
    import math

    import numpy as np
    import polars as pl
    from rapidfuzz import fuzz
    from rapidfuzz.process import cpdist

    from payouts.checks.names import normalise_expr

    out_schema = {"line_id": pl.Int64, "item_id": pl.Utf8, "confidence": pl.Int64, "rule": pl.Utf8,
                  "name_score": pl.Int64}
    tol = rule.param("amount_tolerance_bp") / 10_000
    window = rule.param("window_days")
    weights = rule.param("weights")
    lines = lines.filter(pl.col("counterparty_name").is_not_null())
    items = open_items.filter(pl.col("recipient_name").is_not_null())
    if lines.height == 0 or items.height == 0:
        return pl.DataFrame(schema=out_schema)
    step = math.log1p(tol)
    bucket = lambda amount: (amount.cast(pl.Float64).log() / step).floor().cast(pl.Int64)  # noqa: E731
    # Names are normalised once per line and item and then travel as row numbers, not strings.
    line_side = lines.select(
        "line_id", "currency", line_abs=pl.col("amount_minor").abs(),
        line_date=pl.coalesce("value_date", "booking_date"), line_name=normalise_expr("counterparty_name"),
    ).filter(pl.col("line_name") != "").with_row_index("line_idx")
    item_side = items.select(
        "item_id", "currency", "accepted_on", item_amount="amount_minor", item_name=normalise_expr("recipient_name"),
    ).filter(pl.col("item_name") != "").with_row_index("item_idx")
    left = line_side.select(
        "line_idx", "line_id", "currency", "line_abs", "line_date", line_len=pl.col("line_name").str.len_chars(),
    ).with_columns(bucket=pl.concat_list(bucket(pl.col("line_abs")) + d for d in (-1, 0, 1))).explode("bucket")
    right = item_side.select(
        "item_idx", "item_id", "currency", "accepted_on", "item_amount",
        item_len=pl.col("item_name").str.len_chars(), bucket=bucket(pl.col("item_amount")),
    )
    min_score = rule.param("min_name_score")
    pairs = left.join(right, on=["currency", "bucket"], how="inner").with_columns(
        amount_gap=(pl.col("line_abs") - pl.col("item_amount")).abs(),
        days=(pl.col("line_date") - pl.col("accepted_on")).dt.total_days().abs(),
    ).filter(
        (pl.col("amount_gap") <= pl.col("item_amount") * tol)
        # The window applies when both dates are known.
        & (pl.col("days").is_null() | (pl.col("days") <= window))
        # token_sort_ratio cannot exceed 100 * (1 - |a - b| / (a + b)) for lengths a and b.
        & ((pl.col("line_len") - pl.col("item_len")).abs() * 100
           <= (100 - min_score) * (pl.col("line_len") + pl.col("item_len")))
    )
    if pairs.height == 0:
        return pl.DataFrame(schema=out_schema)
    line_names = np.asarray(line_side["line_name"].to_list(), dtype=object)
    item_names = np.asarray(item_side["item_name"].to_list(), dtype=object)
    # One call for every pair, on both cores; the names are normalised already (processor=None).
    scores = cpdist(line_names[pairs["line_idx"].to_numpy()], item_names[pairs["item_idx"].to_numpy()],
                    scorer=fuzz.token_sort_ratio, processor=None, score_cutoff=min_score, workers=-1)
    pairs = pairs.with_columns(name_score=pl.Series(scores).round(0).cast(pl.Int64)).filter(
        pl.col("name_score") >= min_score)
    amount_score = 100 * (1 - pl.col("amount_gap") / (pl.col("item_amount") * tol).clip(lower_bound=1))
    date_score = (100 * (1 - pl.col("days") / max(window, 1))).fill_null(50)
    confidence = (weights["name"] * pl.col("name_score") + weights["amount"] * amount_score.clip(0, 100)
                  + weights["date"] * date_score.clip(0, 100)) / 100
    return pairs.with_columns(confidence=confidence.round(0).cast(pl.Int64).clip(0, 100)).sort(
        ["line_id", "confidence", "item_id"], descending=[False, True, False]
    ).group_by("line_id", maintain_order=True).head(rule.param("max_per_line")).select(
        "line_id", "item_id", "confidence", rule=pl.lit("suggestion"), name_score="name_score")
