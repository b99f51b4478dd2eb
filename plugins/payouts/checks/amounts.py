"""Amount checks on the amount *text* of a payout row: never parsed through a float.

Accepted forms: optional sign, digits, optional '.' and decimals ("12", "12.50",
"+12.5", ".5", "12."). A decimal comma is accepted when unambiguous: exactly
one ',' and no '.', and not exactly three digits after the comma ("12,50",
"0,000001" are decimals; "1,000" could mean one thousand or one, so it is
rejected as AMOUNT_INVALID). Thousands separators, exponents, currency signs
and spaces inside the number are rejected. Zeros are stripped before counting
digits, so "12.50" EUR is fine and "12.345" EUR is AMOUNT_DECIMALS, never
rounded. Amounts whose minor units would reach 10**18 are AMOUNT_TOO_LARGE.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from payouts.core.reasons import reason_expr
from payouts.core.money import EXPONENTS, to_minor
from payouts.core.rails import RAILS

MAX_MINOR_DIGITS = 18   # minor units stay below 10**18, inside a PostgreSQL bigint

# Per-rail, per-currency caps (scheme maxima as configuration defaults, in payouts.core.rails).
DEFAULT_RAIL_CAPS: dict[str, dict[str, str]] = {r.name: dict(r.caps) for r in RAILS.values() if r.caps}

_AMOUNT_RE = r"^([+-]?)([0-9]*)(?:\.([0-9]*))?$"
_DECIMAL_COMMA_RE = r"^[+-]?[0-9]*,([0-9]{1,2}|[0-9]{4,})$"


def normalise_amount_expr(col: pl.Expr) -> pl.Expr:
    """Amount text with an unambiguous decimal comma turned into a dot; other text unchanged."""
    text = col.str.strip_chars()
    return pl.when(text.str.contains(_DECIMAL_COMMA_RE)).then(text.str.replace(",", ".", literal=True)).otherwise(text)


def _caps_frame(caps: Mapping[str, Mapping[str, str]]) -> pl.DataFrame:
    rows = [(rail, cur, to_minor(str(value), cur), str(value)) for rail, per in caps.items() for cur, value in per.items()]
    return pl.DataFrame(rows, schema={"rail": pl.Utf8, "currency": pl.Utf8, "_cap_minor": pl.Int64, "_cap_text": pl.Utf8},
                        orient="row")


def _limits_frame(limits: Mapping[str, Mapping[str, str]]) -> pl.DataFrame:
    rows = [(rid, cur, to_minor(str(value), cur), str(value)) for rid, per in limits.items() for cur, value in per.items()]
    return pl.DataFrame(rows, schema={"recipient_id": pl.Utf8, "currency": pl.Utf8, "_limit_minor": pl.Int64,
                                      "_limit_text": pl.Utf8}, orient="row")


def check_amounts(df: pl.DataFrame, *, rail_caps: Mapping[str, Mapping[str, str]] | None = None,
                  recipient_limits: Mapping[str, Mapping[str, str]] | None = None) -> pl.DataFrame:
    """Add amount_minor (Int64, null when not valid) and `_rsn_*` amount reasons.

    Needs columns amount (text), currency (upper-cased), recipient_id, rail (may be null).
    rail_caps: {rail: {currency: amount text}}, a single item above it is held.
    recipient_limits: {recipient_id: {currency: amount text}}, the recipient's total
    in this file above it holds all their rows in that currency.
    """
    caps = DEFAULT_RAIL_CAPS if rail_caps is None else rail_caps
    text = normalise_amount_expr(pl.col("amount"))
    parts = text.str.extract_groups(_AMOUNT_RE)
    df = df.with_columns(
        _a_text=text,
        _a_sign=parts.struct.field("1"),
        _a_int=parts.struct.field("2").str.strip_chars_start("0"),
        _a_frac=parts.struct.field("3").fill_null("").str.strip_chars_end("0"),
        _a_exp=pl.col("currency").replace_strict(EXPONENTS, default=None, return_dtype=pl.Int32),
    )
    has_digit = pl.col("_a_text").str.contains(r"[0-9]")
    parsed = pl.col("_a_sign").is_not_null() & has_digit
    int_digits = pl.col("_a_int").str.len_chars()
    decimals = pl.col("_a_frac").str.len_chars()
    zero = (int_digits == 0) & (decimals == 0)
    ambiguous = pl.col("_a_text").str.contains(r"^[+-]?[0-9]*,[0-9]{3}$")
    not_positive = parsed & ((pl.col("_a_sign") == "-") | zero)
    too_large = parsed & ~not_positive & ((int_digits + pl.col("_a_exp").fill_null(2)) > MAX_MINOR_DIGITS)
    bad_decimals = parsed & ~not_positive & ~too_large & pl.col("_a_exp").is_not_null() & (decimals > pl.col("_a_exp"))
    valid = parsed & ~not_positive & ~too_large & ~bad_decimals & pl.col("_a_exp").is_not_null()
    minor_text = pl.concat_str(
        pl.col("_a_int"),
        pl.concat_str(pl.col("_a_frac"), pl.lit("0" * MAX_MINOR_DIGITS)).str.slice(0, pl.col("_a_exp")),
    )
    df = df.with_columns(
        amount_minor=pl.when(valid).then(minor_text.str.strip_chars_start("0").replace("", "0")
                                         .cast(pl.Int64, strict=False)),
        _rsn_amount=pl.coalesce(
            reason_expr("AMOUNT_INVALID", pl.col("amount").is_not_null() & ~parsed, amount=pl.col("amount"),
                        detail=pl.when(ambiguous).then(pl.lit("ambiguous: the comma could be a decimal or a "
                                                              "thousands separator"))
                        .otherwise(pl.lit("expected digits with an optional '.' or ',' decimal separator"))),
            reason_expr("AMOUNT_NOT_POSITIVE", not_positive, amount=pl.col("amount")),
            reason_expr("AMOUNT_TOO_LARGE", too_large, amount=pl.col("amount").str.slice(0, 60), detail=int_digits),
            reason_expr("AMOUNT_DECIMALS", bad_decimals, amount=pl.col("amount"), currency=pl.col("currency"),
                        detail=pl.format("at most {}", pl.col("_a_exp"))),
        ),
        _rsn_currency_unknown=reason_expr("CURRENCY_UNKNOWN",
                                          pl.col("currency").is_not_null() & pl.col("_a_exp").is_null(),
                                          currency=pl.col("currency")),
    )
    df = df.drop("_a_text", "_a_sign", "_a_int", "_a_frac", "_a_exp")

    over: list[pl.Expr] = []
    if caps:
        df = df.join(_caps_frame(caps), on=["rail", "currency"], how="left", maintain_order="left")
        over.append(reason_expr("AMOUNT_OVER_LIMIT", pl.col("amount_minor") > pl.col("_cap_minor"),
                                amount=pl.col("amount"), currency=pl.col("currency"),
                                detail=pl.format("{} cap of {} {}", pl.col("rail"), pl.col("_cap_text"),
                                                 pl.col("currency"))))
    else:
        df = df.with_columns(_cap_minor=pl.lit(None, pl.Int64), _cap_text=pl.lit(None, pl.Utf8))
    if recipient_limits:
        df = df.join(_limits_frame(recipient_limits), on=["recipient_id", "currency"], how="left",
                     maintain_order="left")
        total = pl.col("amount_minor").sum().over("recipient_id", "currency")
        over.append(reason_expr("AMOUNT_OVER_LIMIT", total > pl.col("_limit_minor"),
                                amount=pl.col("amount"), currency=pl.col("currency"),
                                detail=pl.format("limit of {} {} for recipient {} (this file's total is over it)",
                                                 pl.col("_limit_text"), pl.col("currency"), pl.col("recipient_id"))))
    else:
        df = df.with_columns(_limit_minor=pl.lit(None, pl.Int64), _limit_text=pl.lit(None, pl.Utf8))
    df = df.with_columns(_rsn_over_limit=pl.coalesce(*over) if over else pl.lit(None))
    return df.drop("_cap_minor", "_cap_text", "_limit_minor", "_limit_text")
