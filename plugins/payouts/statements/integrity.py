"""Statement integrity: balances that do not add up, gaps in statement numbering,
and a class for every line that is not a payout (funding, fee, interest) so
reconciliation does not report those as unexpected.

The classification rules are data (LINE_CLASS_RULES); the first rule a line
meets wins, and a line no rule takes is 'other'.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

import polars as pl

from payouts.statements.model import ParsedStatement, StatementSummary

LINE_CLASSES = ("payout", "return", "funding", "fee", "interest", "other")


@dataclass(frozen=True)
class Issue:
    kind: str  # 'unbalanced' | 'sequence_gap' | 'sequence_duplicate'
    account: str
    statement_id: str | None
    message: str
    source: str | None = None


@dataclass(frozen=True)
class LineClassRule:
    """One classification rule; every condition given must hold.

    direction: 'credit' | 'debit' | 'any'. text: a regex searched in the
    remittance and counterparty name. codes: bank transaction codes, used when
    the frame carries a `bank_tx_code` column. from_treasury: the counterparty
    account is one of our own treasury accounts.
    """

    line_class: str
    direction: str = "any"
    text: str | None = None
    codes: tuple[str, ...] = ()
    from_treasury: bool = False
    returned: bool = False


LINE_CLASS_RULES: tuple[LineClassRule, ...] = (
    LineClassRule("return", returned=True),
    LineClassRule("funding", direction="credit", from_treasury=True),
    LineClassRule("funding", direction="credit", text=r"(?i)FUNDING|PREFUND|TOP-?UP"),
    # camt SubFmlyCd / MT940 SWIFT codes (NCHG, NCOM) / German GVC 805, 808.
    LineClassRule("fee", codes=("CHRG", "COMM", "NCHG", "NCOM", "FCHG", "805", "808")),
    LineClassRule(
        "fee", text=r"(?i)\bFEES?\b|\bCHARGES?\b|GEBUEHR|GEBÜHR|ENTGELT"
    ),
    LineClassRule("interest", codes=("INTR", "NINT", "FINT", "814")),
    LineClassRule("interest", text=r"(?i)\bINTEREST\b|ZINS"),
    LineClassRule("payout", direction="debit"),
)


def check_integrity(parsed_statements: list[ParsedStatement]) -> list[Issue]:
    """Unbalanced statements and sequence gaps/repeats per account and message type."""
    issues: list[Issue] = []
    series: dict[tuple[str, str], list[tuple[tuple[int, int], StatementSummary, str | None]]] = (
        defaultdict(list)
    )
    for parsed in parsed_statements:
        for summary in parsed.statements:
            if summary.balanced is False:
                issues.append(
                    Issue(
                        "unbalanced",
                        summary.account,
                        summary.statement_id,
                        f"opening {summary.opening_balance} + booked {summary.booked_sum} "
                        f"!= closing {summary.closing_balance} {summary.currency or ''}".rstrip(),
                        parsed.source,
                    )
                )
            number = sequence_number(summary.sequence)
            if number is not None:
                series[(summary.account, _family(summary.message_type))].append(
                    (number, summary, parsed.source)
                )
    for (account, family), entries in sorted(series.items()):
        entries.sort(key=lambda e: e[0])
        seen: dict[tuple[int, int], StatementSummary] = {}
        pages: dict[int, list[int]] = defaultdict(list)
        for number, summary, source in entries:
            if number in seen:
                if seen[number].statement_id != summary.statement_id or (
                    seen[number].closing_balance != summary.closing_balance
                ):
                    issues.append(
                        Issue(
                            "sequence_duplicate",
                            account,
                            summary.statement_id,
                            f"{family} sequence {summary.sequence} also used by "
                            f"{seen[number].statement_id}",
                            source,
                        )
                    )
                continue
            seen[number] = summary
            pages[number[0]].append(number[1])
        numbers = sorted(pages)
        for previous, current in zip(numbers, numbers[1:]):
            if current - previous > 1:
                missing = (
                    str(previous + 1)
                    if current - previous == 2
                    else f"{previous + 1} to {current - 1}"
                )
                issues.append(
                    Issue(
                        "sequence_gap",
                        account,
                        None,
                        f"{family} statement number(s) {missing} missing between "
                        f"{previous} and {current}",
                    )
                )
        for number in numbers:
            page_list = sorted(pages[number])
            if page_list == [0]:
                continue
            expected = list(range(1, page_list[-1] + 1))
            if page_list != expected:
                lost = sorted(set(expected) - set(page_list))
                issues.append(
                    Issue(
                        "sequence_gap",
                        account,
                        None,
                        f"{family} statement {number}: page(s) {', '.join(map(str, lost))} missing",
                    )
                )
    return issues


def sequence_number(sequence: str | None) -> tuple[int, int] | None:
    """'5' -> (5, 0); MT940 '00004/00002' -> (4, 2). None when unnumbered ('0', '00000/00')."""
    if not sequence:
        return None
    match = re.fullmatch(r"\s*0*([0-9]+)(?:/0*([0-9]+))?\s*", sequence)
    if not match:
        return None
    number = int(match.group(1))
    if number == 0:  # banks that do not number their statements write zeros
        return None
    return number, int(match.group(2)) if match.group(2) else 0


def _family(message_type: str) -> str:
    # MT940 and MT942 are numbered separately; so are camt.052/053/054.
    return message_type


def classify_lines(
    lines: pl.DataFrame,
    treasury_accounts: list[str] | tuple[str, ...] = (),
    rules: tuple[LineClassRule, ...] = LINE_CLASS_RULES,
) -> pl.DataFrame:
    """The statement lines with a `line_class` column (see LINE_CLASSES)."""
    amount = pl.col("amount")
    debit = amount.str.starts_with("-")
    text = pl.concat_str(
        [pl.col("remittance_info").fill_null(""), pl.col("counterparty_name").fill_null("")],
        separator=" ",
    )
    has_codes = "bank_tx_code" in lines.columns
    expression = None
    for rule in rules:
        condition = pl.lit(True)
        if rule.direction == "debit":
            condition = condition & debit
        elif rule.direction == "credit":
            condition = condition & ~debit
        if rule.returned:
            condition = condition & (
                pl.col("return_reason").is_not_null() | pl.col("reversal").fill_null(False)
            )
        if rule.from_treasury:
            condition = condition & pl.col("counterparty_account").is_in(list(treasury_accounts))
        if rule.text is not None:
            condition = condition & text.str.contains(rule.text)
        if rule.codes:
            if not has_codes:
                continue
            condition = condition & pl.col("bank_tx_code").is_in(list(rule.codes))
        condition = condition.fill_null(False)
        expression = (
            pl.when(condition).then(pl.lit(rule.line_class))
            if expression is None
            else expression.when(condition).then(pl.lit(rule.line_class))
        )
    line_class = pl.lit("other") if expression is None else expression.otherwise(pl.lit("other"))
    return lines.with_columns(line_class=line_class.cast(pl.Utf8))
