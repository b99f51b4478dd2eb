"""The provider's crypto transaction export (CSV) -> statement lines.

Every column is read as text (an amount never passes through a float) and
converted vectorised. One wallet (network:asset) is one account; the file
stem is the statement id and the transaction hash the entry reference.
"""

from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path

import polars as pl

from payouts.statements import safe_xml
from payouts.statements.model import (
    LINE_SCHEMA,
    ParsedStatement,
    StatementError,
    StatementSummary,
    decimal_text,
    invalid_amount_rows,
    with_amount_minor,
)

CRYPTO_HEADER = (
    "tx_hash", "network", "asset", "direction", "amount", "fee", "end_to_end_id",
    "to_address", "block_time", "confirmations", "status", "return_reason",
)
MESSAGE_TYPE = "crypto-csv"


def parse_crypto_export(source: safe_xml.Source, statement_id: str | None = None) -> ParsedStatement:
    """Parse a crypto export (path or bytes); statement_id defaults to the file stem."""
    name = safe_xml.source_name(source)
    stream, _size = safe_xml.open_source(source)
    try:
        data = stream.read()
    finally:
        stream.close()
    if statement_id is None:
        statement_id = "crypto-export" if isinstance(source, (bytes, bytearray)) else Path(source).stem
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    first_line = data.split(b"\n", 1)[0].strip(b"\r\n ").decode("utf-8", "replace")
    header = tuple(h.strip() for h in first_line.split(","))
    if header != CRYPTO_HEADER:
        raise StatementError(
            f"not a crypto export: header {first_line[:200]!r}, expected {','.join(CRYPTO_HEADER)}",
            name,
            "line 1",
        )
    try:
        raw = pl.read_csv(
            io.BytesIO(data),
            infer_schema=False,  # every column Utf8: amounts stay exact text
        )
    except (pl.exceptions.PolarsError, UnicodeDecodeError) as exc:
        raise StatementError(f"unreadable CSV: {exc}", name) from None
    raw = raw.with_columns(pl.col(c).str.strip_chars() for c in CRYPTO_HEADER).with_columns(
        pl.when(pl.col(c) == "").then(None).otherwise(pl.col(c)).alias(c) for c in CRYPTO_HEADER
    )
    problems = raw.with_row_index("row").filter(
        pl.col("tx_hash").is_null()
        | pl.col("network").is_null()
        | pl.col("asset").is_null()
        | ~pl.col("direction").is_in(["in", "out"])
        | ~pl.col("amount").str.contains(r"^[0-9]+(\.[0-9]*)?$")
        | pl.col("amount").is_null()
    )
    if problems.height:
        row = problems.row(0, named=True)
        raise StatementError(
            "crypto export row without tx_hash/network/asset, with a direction other than "
            f"in/out or an unsigned-decimal amount: {row}",
            name,
            f"line {row['row'] + 2}",
        )
    block_time = pl.col("block_time")
    booking_date = (
        pl.when(block_time.str.contains(r"^[0-9]+$"))
        .then(pl.from_epoch(block_time.cast(pl.Int64, strict=False), time_unit="s").dt.date())
        .otherwise(block_time.str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False))
    )
    debit = pl.col("direction") == "out"
    is_zero = pl.col("amount").str.replace_all(r"[0.]", "") == ""
    lines = raw.with_row_index("position").select(
        account=pl.concat_str(pl.col("network"), pl.lit(":"), pl.col("asset")),
        statement_id=pl.lit(statement_id, pl.Utf8),
        entry_ref=pl.col("tx_hash"),
        # Each export is its own statement of a wallet; bookings are not compared across exports.
        booking_ref=pl.lit(None, pl.Utf8),
        position=pl.col("position").cast(pl.Int32),
        booking_date=booking_date,
        value_date=booking_date,
        amount=pl.when(debit & ~is_zero)
        .then(pl.concat_str(pl.lit("-"), pl.col("amount")))
        .otherwise(pl.col("amount")),
        amount_minor=pl.lit(None, pl.Int64),
        currency=pl.col("asset"),
        status=pl.when(pl.col("status").str.to_lowercase() == "confirmed")
        .then(pl.lit("booked"))
        .otherwise(pl.lit("pending")),
        end_to_end_id=pl.when(pl.col("end_to_end_id") == "NOTPROVIDED")
        .then(None)
        .otherwise(pl.col("end_to_end_id")),
        counterparty_name=pl.lit(None, pl.Utf8),
        # Our own wallet receives an "in": only an "out" names the counterparty.
        counterparty_account=pl.when(debit).then(pl.col("to_address")).otherwise(None),
        remittance_info=pl.lit(None, pl.Utf8),
        return_reason=pl.col("return_reason"),
        reversal=pl.col("return_reason").is_not_null(),
        is_batch=pl.lit(False),
        message_type=pl.lit(MESSAGE_TYPE),
        message_version=pl.lit(None, pl.Utf8),
        charges=pl.col("fee"),
    )
    bad_dates = lines.with_columns(raw_time=raw["block_time"]).filter(
        pl.col("booking_date").is_null()
    )
    if bad_dates.height:
        row = bad_dates.row(0, named=True)
        raise StatementError(
            f"impossible block_time {row['raw_time']!r}", name, f"line {row['position'] + 2}"
        )
    if invalid_amount_rows(lines).height:  # pragma: no cover - guarded above
        raise StatementError("invalid amount", name)
    lines = with_amount_minor(lines).select(LINE_SCHEMA.names()).cast(dict(LINE_SCHEMA))
    return ParsedStatement(lines=lines, statements=_summaries(lines, statement_id), source=name)


def _summaries(lines: pl.DataFrame, statement_id: str) -> list[StatementSummary]:
    summaries = []
    for (account,), wallet in lines.group_by(["account"], maintain_order=True):
        booked = wallet.filter(pl.col("status") == "booked")["amount"].to_list()
        summaries.append(
            StatementSummary(
                statement_id=statement_id,
                account=account,
                currency=wallet["currency"][0],
                sequence=None,
                opening_balance=None,
                closing_balance=None,
                booked_sum=decimal_text(sum((Decimal(a) for a in booked), Decimal(0))),
                balanced=None,
                entry_count=wallet.height,
                line_count=wallet.height,
                message_type=MESSAGE_TYPE,
                message_version=None,
            )
        )
    return summaries
