"""The combined, vectorised row check of payout rows: ready | held | rejected, with reasons.

`check_rows` takes a polars frame of text columns (a payee file, or payout
items joined to recipients) and adds, per row:

- decision: 'rejected' if any reason rejects, else 'held' if any holds, else 'ready';
- reasons: a list of structs {code, iso_code, text} (the shape of
  `payouts.core.reasons.make()`; `pl.Series.to_list()` gives the dicts, and
  `reasons_json` does the JSON for the warehouse's jsonb);
- dest_kind ('iban' | 'local' | 'wallet', null when none or several are given),
  destination (normalised: the IBAN; 'CC:routing:account'; '<family>:<address>',
  lower-cased for EVM and bech32), iban_norm, bic_norm, network_norm,
  account_country, sepa_reachable ('yes' | 'no' | 'unknown'), rail, amount_minor.

Checks add `_rsn_*` columns (a reason struct or null); `extra_checks` may add
more of them (e.g. warehouse-backed KYC), and they are folded in the same way.
"""

from __future__ import annotations

import functools

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import polars as pl

from payouts.checks.accounts import check_accounts, normalise_iban_expr
from payouts.checks.amounts import check_amounts
from payouts.core.reasons import CHECK_CODES, REJECT_CODES, reason_expr
from payouts.checks.wallets import NETWORK_ALIASES, check_wallets

INPUT_COLUMNS = ("payout_id", "recipient_id", "name", "country", "amount", "currency", "iban", "bic",
                 "account_number", "routing_code", "wallet_address", "network")
REQUIRED_COLUMNS = ("payout_id", "recipient_id", "name", "amount", "currency")
# Cells where a leading '=' is a spreadsheet formula someone pasted (never evaluated, but held).
FORMULA_FIELDS = ("payout_id", "recipient_id", "name", "reference")

REASON_DTYPE = pl.Struct({"code": pl.Utf8, "iso_code": pl.Utf8, "text": pl.Utf8})


@dataclass(frozen=True)
class CheckPolicy:
    """Switches and limits of the row checks (configuration, not code)."""

    evm_lowercase: str = "hold"                                   # 'hold' | 'accept'
    rail_caps: Mapping[str, Mapping[str, str]] | None = None      # None: amounts.DEFAULT_RAIL_CAPS
    recipient_limits: Mapping[str, Mapping[str, str]] | None = None
    # Processes for the per-value library calls on big frames (>= 50,000 distinct values).
    # Opt-in: spawned workers re-import the caller's __main__, which must be guarded.
    workers: int = 1


def normalise_input(df: pl.DataFrame) -> pl.DataFrame:
    """Missing input columns as nulls, all text, trimmed, empty -> null; normalised keys; dest_kind."""
    missing = [c for c in INPUT_COLUMNS if c not in df.columns]
    df = df.with_columns([pl.lit(None, dtype=pl.Utf8).alias(c) for c in missing])
    text_cols = [c for c in INPUT_COLUMNS + ("reference",) if c in df.columns]
    df = df.with_columns([
        pl.col(c).cast(pl.Utf8).str.strip_chars().replace("", None).alias(c) for c in text_cols
    ])
    has_iban = pl.col("iban").is_not_null()
    has_local = pl.col("account_number").is_not_null() | pl.col("routing_code").is_not_null()
    has_wallet = pl.col("wallet_address").is_not_null() | pl.col("network").is_not_null()
    given = has_iban.cast(pl.Int8) + has_local.cast(pl.Int8) + has_wallet.cast(pl.Int8)
    network = pl.col("network").str.to_lowercase()
    return df.with_columns(
        country=pl.col("country").str.to_uppercase(),
        currency=pl.col("currency").str.to_uppercase(),
        iban_norm=normalise_iban_expr(pl.col("iban")),
        bic_norm=pl.col("bic").str.to_uppercase().str.replace_all(r"\s", ""),
        network_norm=network.replace(NETWORK_ALIASES),
        dest_kind=pl.when(given != 1).then(None)
        .when(has_iban).then(pl.lit("iban"))
        .when(has_local & pl.col("account_number").is_not_null() & pl.col("routing_code").is_not_null())
        .then(pl.lit("local"))
        .when(has_wallet & pl.col("wallet_address").is_not_null() & pl.col("network").is_not_null())
        .then(pl.lit("wallet")),
        _dest_given=given,
    )


def _route(df: pl.DataFrame) -> pl.DataFrame:
    """The rail of each row: a run's items carry the one their snapshot decided (`_rail`);
    rows of a payout file are routed here, by the same expression."""
    from payouts.core.routing import route_frame

    if "_rail" in df.columns:
        rail = pl.col("_rail")
    else:
        keys = df.select("dest_kind", "currency", country=pl.coalesce("account_country", "country"))
        rail = route_frame(keys).get_column("rail")
    return df.with_columns(rail=pl.when(pl.col("dest_kind").is_not_null()).then(rail)).drop("_rail", strict=False)


@functools.cache
def iso_countries() -> frozenset[str]:
    """ISO 3166-1 alpha-2 codes, and XK (Kosovo: user-assigned, but it has IBANs and banks use it)."""
    import pycountry

    return frozenset({c.alpha_2 for c in pycountry.countries} | {"XK"})


def _field_reasons(df: pl.DataFrame) -> pl.DataFrame:
    missing = {
        f"_rsn_missing_{c}": reason_expr("MISSING_FIELD", pl.col(c).is_null(), field=c) for c in REQUIRED_COLUMNS
    }
    missing["_rsn_missing_country"] = reason_expr(
        "MISSING_FIELD", (pl.col("dest_kind") == "local") & pl.col("country").is_null(), field="country")
    missing["_rsn_country"] = reason_expr(
        "COUNTRY_INVALID", pl.col("country").is_not_null() & ~pl.col("country").is_in(sorted(iso_countries())),
        country=pl.col("country").str.slice(0, 40))
    detail = (
        pl.when(pl.col("_dest_given") == 0).then(pl.lit("none is given"))
        .when(pl.col("_dest_given") > 1).then(pl.lit("several are given"))
        .when(pl.col("account_number").is_not_null() | pl.col("routing_code").is_not_null())
        .then(pl.lit("a local account needs both account_number and routing_code"))
        .otherwise(pl.lit("a wallet needs both wallet_address and network"))
    )
    formulas = {
        f"_rsn_formula_{c}": reason_expr("FORMULA_IN_CELL", pl.col(c).str.starts_with("="), field=c,
                                         value=pl.col(c).str.slice(0, 40))
        for c in FORMULA_FIELDS if c in df.columns
    }
    return df.with_columns(
        _rsn_destination=reason_expr("MISSING_DESTINATION", pl.col("dest_kind").is_null(), detail=detail),
        **missing, **formulas,
    )


def _duplicate_reasons(df: pl.DataFrame) -> pl.DataFrame:
    """Repeated payout ids (first stands) and destinations shared by several recipients (all held)."""
    later = pl.col("payout_id").is_not_null() & (pl.col("payout_id").cum_count().over("payout_id") > 1)
    sharers = pl.col("recipient_id").n_unique().over("destination")
    shared = pl.col("destination").is_not_null() & (sharers > 1)
    return df.with_columns(
        _rsn_duplicate=reason_expr("DUPLICATE_PAYOUT_ID", later, payout_id=pl.col("payout_id")),
        _rsn_shared=reason_expr("SHARED_DESTINATION", shared, destination=pl.col("destination"), detail=sharers),
    )


def collect_reasons(df: pl.DataFrame) -> pl.DataFrame:
    """Fold the `_rsn_*` columns into `reasons` (in column order) and `decision`; drop them.

    Long format rather than `concat_list` over struct columns, which is slow in polars:
    only the non-null reasons are stacked, then gathered back per row.
    """
    columns = [c for c in df.columns if c.startswith("_rsn_")]
    usable = [c for c in columns if df.schema[c] != pl.Null]
    if not usable:
        return df.drop(columns).with_columns(reasons=pl.lit([], dtype=pl.List(REASON_DTYPE)),
                                             decision=pl.lit("ready"))
    df = df.with_row_index("_row_ix")
    long = pl.concat([
        df.lazy().select("_row_ix", _reason=pl.col(c).cast(REASON_DTYPE), _k=pl.lit(k, dtype=pl.Int32))
        .filter(pl.col("_reason").is_not_null())
        for k, c in enumerate(usable)
    ]).sort("_row_ix", "_k").group_by("_row_ix", maintain_order=True).agg(
        reasons=pl.col("_reason"),
        _rejected=pl.col("_reason").struct.field("code").is_in(sorted(REJECT_CODES)).any(),
    ).collect()
    df = df.drop(columns).join(long, on="_row_ix", how="left", maintain_order="left")
    return df.with_columns(
        reasons=pl.col("reasons").fill_null(pl.lit([], dtype=pl.List(REASON_DTYPE))),
        decision=pl.when(pl.col("_rejected").fill_null(False)).then(pl.lit("rejected"))
        .when(pl.col("_rejected").is_not_null()).then(pl.lit("held"))
        .otherwise(pl.lit("ready")),
    ).drop("_row_ix", "_rejected")


def check_rows(df: pl.DataFrame, policy: CheckPolicy | None = None,
               extra_checks: Callable[[pl.DataFrame], pl.DataFrame] | None = None) -> pl.DataFrame:
    """Check payout rows; see the module docstring for what comes back.

    `extra_checks(frame)` runs after the built-in checks on the normalised frame and may add
    `_rsn_*` columns of reason structs (build them with `reasons.reason_expr`).
    """
    policy = policy or CheckPolicy()
    df = normalise_input(df)
    df = check_accounts(df, workers=policy.workers)
    df = check_wallets(df, evm_lowercase=policy.evm_lowercase, workers=policy.workers)
    df = df.with_columns(destination=pl.coalesce("bank_destination", "wallet_destination")).drop(
        "bank_destination", "wallet_destination")
    df = _route(df)
    df = check_amounts(df, rail_caps=policy.rail_caps, recipient_limits=policy.recipient_limits)
    df = _field_reasons(df)
    df = _duplicate_reasons(df)
    if extra_checks is not None:
        df = extra_checks(df)
    return collect_reasons(df).drop("_dest_given")


def reasons_json(reasons: list[dict] | None) -> str:
    """One row's reasons as the JSON the warehouse stores (payout_items.reasons)."""
    return json.dumps(reasons or [], ensure_ascii=False)


def catalogue_codes() -> list[str]:
    return sorted(CHECK_CODES)
