"""The normalised statement line, the per-statement summary and the parse result.

Every parser (camt, MT940, crypto export) produces the same polars frame
(LINE_SCHEMA), so reconciliation never needs to know which format a line came
from. Amounts stay exact: the bank's decimal string, plus signed minor units
when the currency's exponent can hold it.

One rule for every format: a file that cannot be read as a whole (not the
format, unsafe, truncated) is refused; inside a readable file each statement
stands on its own, so a broken one is quarantined with its reason (file,
statement, line) and the complete ones are read. A file without one complete
statement is refused with the first statement's reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import polars as pl

from payouts.core.money import EXPONENTS

LINE_SCHEMA = pl.Schema(
    {
        "account": pl.Utf8,
        "statement_id": pl.Utf8,
        "entry_ref": pl.Utf8,
        # The account servicer's reference of the booking (camt AcctSvcrRef, else
        # NtryRef; MT940 :61: bank reference); null when the bank gave none. The
        # same booking reported by two statements (a camt.054 and the camt.053
        # of the day) carries the same one, which is how it is counted once.
        "booking_ref": pl.Utf8,
        "position": pl.Int32,
        "booking_date": pl.Date,
        "value_date": pl.Date,
        "amount": pl.Utf8,
        "amount_minor": pl.Int64,
        "currency": pl.Utf8,
        "status": pl.Utf8,
        "end_to_end_id": pl.Utf8,
        "counterparty_name": pl.Utf8,
        "counterparty_account": pl.Utf8,
        "remittance_info": pl.Utf8,
        "return_reason": pl.Utf8,
        "reversal": pl.Boolean,
        "is_batch": pl.Boolean,
        "message_type": pl.Utf8,
        "message_version": pl.Utf8,
        "charges": pl.Utf8,
    }
)

LINE_COLUMNS: tuple[str, ...] = tuple(LINE_SCHEMA.names())

# A signed decimal as written by a bank: digits, optional fraction, no exponent.
_DECIMAL_RE = r"^-?[0-9]+(\.[0-9]*)?$"


class StatementError(ValueError):
    """A statement file that cannot be read safely or correctly."""

    def __init__(self, message: str, file: str | Path | None = None, position: object = None):
        self.message = message
        self.file = str(file) if file is not None else None
        self.position = position
        where = ""
        if self.file:
            where += f" [{self.file}"
            where += f" at {position}]" if position is not None else "]"
        elif position is not None:
            where += f" [at {position}]"
        super().__init__(message + where)


@dataclass(frozen=True)
class StatementSummary:
    """One statement (camt Stmt / Rpt / Ntfctn, or one wallet of a crypto export)."""

    statement_id: str
    account: str
    currency: str | None
    sequence: str | None
    opening_balance: str | None  # signed decimal string (OPBD, else PRCD)
    closing_balance: str | None  # signed decimal string (CLBD)
    booked_sum: str  # signed decimal string: sum of the booked entries
    balanced: bool | None  # opening + booked == closing; None without both balances
    entry_count: int
    line_count: int
    message_type: str
    message_version: str | None


@dataclass(frozen=True)
class QuarantinedStatement:
    """A statement of a readable file that cannot be read correctly: kept out, with why and where."""

    statement_id: str | None  # None when the statement does not say it
    account: str | None
    message: str
    file: str | None
    position: str | None  # 'line 12' (MT940) or 'Stmt S1, entry 3, file line 57' (camt)

    @property
    def reason(self) -> str:
        return str(self.error())

    def error(self) -> StatementError:
        return StatementError(self.message, self.file, self.position)


@dataclass
class ParsedStatement:
    lines: pl.DataFrame
    statements: list[StatementSummary]
    warnings: list[str] = field(default_factory=list)
    source: str | None = None
    quarantined: list[QuarantinedStatement] = field(default_factory=list)


def quarantine(error: StatementError, statement_id: str | None, account: str | None) -> QuarantinedStatement:
    return QuarantinedStatement(statement_id, account, error.message, error.file, error.position)


def refuse_without_a_complete_statement(parsed: ParsedStatement) -> ParsedStatement:
    """The parse result, unless every statement in it was quarantined: then the file is refused."""
    if parsed.quarantined and not parsed.statements:
        first = parsed.quarantined[0]
        more = len(parsed.quarantined) - 1
        message = first.message + (f" (and {more} more statement{'s' * (more > 1)} cannot be read)"
                                   if more else "")
        raise StatementError(message, first.file, first.position)
    return parsed


def signed_decimal(text: str, debit: bool) -> str:
    """The bank's amount text with a sign; '-0' is kept as '0'."""
    text = text.strip()
    if debit and text.lstrip("0.") != "":
        return "-" + text
    return text


def decimal_text(value: Decimal) -> str:
    return format(value, "f")


def with_amount_minor(frame: pl.DataFrame) -> pl.DataFrame:
    """Fill amount_minor from amount and currency, vectorised and exact.

    Null when the currency is unknown to payouts.core.money or when the amount has
    more decimals than the currency's exponent allows (even trailing zeros: the
    bank wrote a precision the currency does not have, a person should look).
    """
    amount = pl.col("amount")
    exp = pl.col("currency").replace_strict(EXPONENTS, default=None, return_dtype=pl.Int64)
    negative = amount.str.starts_with("-")
    body = amount.str.strip_prefix("-")
    int_part = body.str.split_exact(".", 1).struct.field("field_0")
    frac_part = body.str.split_exact(".", 1).struct.field("field_1").fill_null("")
    frac_len = frac_part.str.len_chars().cast(pl.Int64)
    frac_value = pl.when(frac_len == 0).then(pl.lit(0, pl.Int64)).otherwise(
        frac_part.cast(pl.Int64, strict=False)
    )
    scale = pl.lit(10, pl.Int64).pow(exp)
    pad = pl.lit(10, pl.Int64).pow(pl.max_horizontal(exp - frac_len, pl.lit(0, pl.Int64)))
    magnitude = int_part.cast(pl.Int64, strict=False) * scale + frac_value * pad
    too_long = int_part.str.len_chars().cast(pl.Int64) + exp > 18  # Int64 overflow
    minor = (
        pl.when(
            exp.is_null()
            | (frac_len > exp)
            | too_long
            | ~amount.str.contains(_DECIMAL_RE)
        )
        .then(pl.lit(None, pl.Int64))
        .when(negative)
        .then(-magnitude)
        .otherwise(magnitude)
    )
    return frame.with_columns(amount_minor=minor.cast(pl.Int64))


def invalid_amount_rows(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.filter(~pl.col("amount").str.contains(_DECIMAL_RE) | pl.col("amount").is_null())
