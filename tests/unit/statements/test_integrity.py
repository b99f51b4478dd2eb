"""Statement integrity: balances, sequence gaps, and classes for non-payout lines."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from payouts.statements import LINE_SCHEMA, ParsedStatement, StatementSummary, parse_mt940
from payouts.statements.integrity import (
    LINE_CLASS_RULES,
    Issue,
    LineClassRule,
    check_integrity,
    classify_lines,
    sequence_number,
)

MT940 = Path(__file__).resolve().parents[2] / "fixtures" / "mt940"


def summary(statement_id, sequence, balanced=True, account="DE01", message_type="camt.053"):
    return StatementSummary(
        statement_id=statement_id, account=account, currency="EUR", sequence=sequence,
        opening_balance="10.00", closing_balance="12.00", booked_sum="2.00" if balanced else "1.00",
        balanced=balanced, entry_count=1, line_count=1, message_type=message_type,
        message_version=None,
    )


def parsed(*summaries, source="f.xml") -> ParsedStatement:
    return ParsedStatement(lines=pl.DataFrame(schema=LINE_SCHEMA), statements=list(summaries),
                           source=source)


def test_unbalanced_statement_is_reported():
    issues = check_integrity([parsed(summary("S1", "1"), summary("S2", "2", balanced=False))])
    assert issues == [
        Issue("unbalanced", "DE01", "S2", "opening 10.00 + booked 1.00 != closing 12.00 EUR",
              "f.xml")
    ]


def test_sequence_gap_across_files_per_account_and_message_type():
    issues = check_integrity([
        parsed(summary("S1", "1"), summary("S2", "2")),
        parsed(summary("S5", "5")),
        parsed(summary("R9", "9", message_type="camt.052")),  # its own series
        parsed(summary("X3", "3", account="DE02")),
    ])
    assert [(i.kind, i.account, i.message) for i in issues] == [
        ("sequence_gap", "DE01", "camt.053 statement number(s) 3 to 4 missing between 2 and 5"),
    ]


def test_mt940_pages_and_duplicates():
    issues = check_integrity([
        parsed(
            summary("A/4/1", "00004/00001", message_type="mt940"),
            summary("A/4/3", "00004/00003", message_type="mt940"),
            summary("A/5/1", "00005/00001", message_type="mt940"),
            summary("B/5/1", "00005/00001", message_type="mt940"),
        )
    ])
    assert [(i.kind, i.statement_id, i.message) for i in issues] == [
        ("sequence_duplicate", "B/5/1", "mt940 sequence 00005/00001 also used by A/5/1"),
        ("sequence_gap", None, "mt940 statement 4: page(s) 2 missing"),
    ]


def test_the_same_statement_twice_is_no_issue():
    same = summary("S1", "1")
    assert check_integrity([parsed(same), parsed(same)]) == []


@pytest.mark.parametrize(
    ("text", "number"),
    [("5", (5, 0)), ("00004/00002", (4, 2)), ("1/1", (1, 1)), ("0", None), ("00000/00", None),
     (None, None), ("ABC", None)],
)
def test_sequence_number(text, number):
    assert sequence_number(text) == number


def test_real_samples_asn_is_continuous_and_betterplace_pages_complete():
    asn = parse_mt940(MT940 / "wolph_ASNB_mt940.txt")
    better = parse_mt940(MT940 / "wolph_betterplace_sepa_mt9401.sta")
    assert check_integrity([asn, better]) == []
    # Drop ASN statement 3 of 31: a gap.
    asn.statements = [s for s in asn.statements if s.sequence != "3/1"]
    (issue,) = check_integrity([asn])
    assert issue.kind == "sequence_gap" and "3 missing between 2 and 4" in issue.message


def test_real_sample_that_does_not_balance():
    issues = check_integrity([parse_mt940(MT940 / "wolph_jejik_triodos.sta")])
    assert [(i.kind, i.statement_id, i.message) for i in issues] == [
        ("unbalanced", "1308728725026/1/1",
         "opening 4975.09 + booked -715.70 != closing 4370.79 EUR"),
    ]


def lines(*specs) -> pl.DataFrame:
    """(amount, remittance, counterparty_account, return_reason, reversal) -> line frame."""
    base = {c: None for c in LINE_SCHEMA.names()}
    records = []
    for amount, remittance, account, reason, reversal in specs:
        records.append({**base, "amount": amount, "remittance_info": remittance,
                        "counterparty_account": account, "return_reason": reason,
                        "reversal": reversal, "currency": "EUR", "status": "booked"})
    return pl.DataFrame(records, schema=LINE_SCHEMA)


def test_classify_lines():
    frame = lines(
        ("-100.00", "PO-1 payout", "DE99", None, False),
        ("100.00", "RETOURE", None, "914", False),
        ("-204.88", "SAMMLER/STORNO", None, None, True),
        ("5000.00", "internal transfer", "DE-TREASURY", None, False),
        ("2500.00", "PREFUND run 7", "DE55", None, False),
        ("-6.00", "ENTGELTABSCHLUSS Pauschalen", None, None, False),
        ("-1.50", "Service fee March", None, None, False),
        ("-2.00", "coffee shop", None, None, False),
        ("0.40", "Habenzinsen Q1", None, None, False),
        ("12.00", "customer deposit", None, None, False),
        ("3.00", None, None, None, None),
    )
    result = classify_lines(frame, treasury_accounts=["DE-TREASURY"])
    assert result.columns == [*LINE_SCHEMA.names(), "line_class"]
    assert result["line_class"].to_list() == [
        "payout", "return", "return", "funding", "funding", "fee", "fee", "payout", "interest",
        "other", "other",
    ]


def test_bank_transaction_codes_are_used_when_present():
    frame = lines(("-4.00", "Abschluss", None, None, False), ("-9.00", "x", None, None, False))
    frame = frame.with_columns(bank_tx_code=pl.Series(["NCHG", "NTRF"]))
    assert classify_lines(frame)["line_class"].to_list() == ["fee", "payout"]


def test_rules_are_data():
    frame = lines(("-4.00", "CARD SETTLEMENT", None, None, False))
    rules = (LineClassRule("fee", direction="debit", text="CARD"), *LINE_CLASS_RULES)
    assert classify_lines(frame, rules=rules)["line_class"].to_list() == ["fee"]


def test_real_sample_fee_line_from_german_booking_text():
    text = (MT940 / "wolph_selfprov_february_30.sta").read_bytes().replace(b"1602300301", b"1602290301")
    classified = classify_lines(parse_mt940(text).lines)
    assert classified["line_class"].to_list() == ["fee"]
