"""Real MT940 / MT942 samples -> concrete line values.

Every expected value below was read from the fixture file itself.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from payouts.statements import LINE_SCHEMA, StatementError, parse_mt940, parse_statement_file
from payouts.statements.detect import sniff_format
from payouts.statements.mt940 import parse_amount, parse_balance

MT940 = Path(__file__).resolve().parents[2] / "fixtures" / "mt940"
D = dt.date

# Fragments without a :20: header (library test snippets, not statements) and
# the 30 February sample are refused on purpose; see the tests below.
REFUSED = {
    "wolph_betterplace_amount_formats.sta",
    "wolph_selfprov_sparkassen.sta",
    "wolph_selfprov_february_30.sta",
}
ALL_SAMPLES = sorted(
    p.name for p in MT940.iterdir() if p.name != "PROVENANCE.md" and p.name not in REFUSED
)


def parse(name: str):
    return parse_mt940(MT940 / name)


def rows(parsed) -> list[dict]:
    return parsed.lines.to_dicts()


@pytest.mark.parametrize("name", ALL_SAMPLES)
def test_every_sample_is_sniffed_and_parses_to_the_line_schema(name):
    assert sniff_format((MT940 / name).read_bytes()[:4096]) == "mt940"
    parsed = parse_statement_file(MT940 / name)
    lines = parsed.lines
    assert lines.schema == LINE_SCHEMA
    assert lines.height > 0
    assert lines.select(["account", "statement_id", "entry_ref", "position"]).is_unique().all()
    assert lines["message_type"].is_in(["mt940", "mt942"]).all()
    # MT942 lines are never booked, MT940 lines always are.
    assert lines.filter(pl.col("message_type") == "mt942")["status"].eq("pending").all()
    assert lines.filter(pl.col("message_type") == "mt940")["status"].eq("booked").all()
    for summary in parsed.statements:
        mine = lines.filter(
            (pl.col("statement_id") == summary.statement_id) & (pl.col("status") == "booked")
        )
        assert sum((Decimal(a) for a in mine["amount"]), Decimal(0)) == Decimal(summary.booked_sum)


def test_hbci4java_with_entry_date_german_subfields():
    parsed = parse("hbci4java_test-mt940-001.sta")
    (summary,) = parsed.statements
    assert summary.statement_id == "STARTUMS/1"
    assert summary.account == "12345678/1234567890"
    assert summary.sequence == "1"
    assert (summary.opening_balance, summary.closing_balance) == ("100.00", "103.00")
    assert summary.booked_sum == "3.00" and summary.balanced is True
    first, second = rows(parsed)
    assert first["amount"] == "2.00" and first["amount_minor"] == 200
    assert first["currency"] == "EUR" and first["status"] == "booked"
    assert first["value_date"] == D(2023, 2, 9) and first["booking_date"] == D(2023, 2, 9)
    assert first["counterparty_name"] == "Max Mustermann"
    assert first["remittance_info"] == "GUTSCHRIFT UEBERWEISUNG Test 1"
    # The customer reference is 26 characters, longer than subfield 7 allows:
    # it is not taken for an EndToEndId.
    assert first["end_to_end_id"] is None
    assert second["amount"] == "1.00"


def test_hbci4java_without_entry_date_books_on_the_value_date():
    (first, _second) = rows(parse("hbci4java_test-mt940-002.sta"))
    assert first["value_date"] == first["booking_date"] == D(2023, 2, 9)


def test_asn_swift_blocks_and_many_statements():
    parsed = parse("wolph_ASNB_mt940.txt")
    assert len(parsed.statements) == 31
    assert [s.sequence for s in parsed.statements[:3]] == ["1/1", "2/1", "3/1"]
    assert all(s.balanced for s in parsed.statements)
    first = rows(parsed)[0]
    assert first["statement_id"] == "0000000000/1/1"
    assert first["account"] == "NL81ASNB9999999999"
    assert first["amount"] == "-65.00"
    assert first["remittance_info"] == "NL47INGB9999999999 hr gjlm paulissen Betaling sieraden"
    fifth = parsed.statements[4]
    assert (fifth.opening_balance, fifth.closing_balance, fifth.booked_sum) == (
        "379.29", "577.74", "198.45"
    )


def test_betterplace_sepa_returns_reversals_and_eref():
    parsed = parse("wolph_betterplace_sepa_mt9401.sta")
    assert len(parsed.statements) == 26
    assert all(s.balanced for s in parsed.statements)
    first = parsed.statements[0]
    assert first.statement_id == "T089413946000001/00004/00001"
    assert first.account == "50880050/0194774600888"
    assert (first.opening_balance, first.closing_balance) == ("-1234718.36", "-1237628.23")
    lines = rows(parsed)
    retoure = lines[0]
    assert retoure["amount"] == "300"  # ':61:...CR300,' has no decimals
    assert retoure["entry_ref"] == "0724710345313905"
    assert retoure["end_to_end_id"] == "TFNR 40005 00005"
    assert retoure["return_reason"] == "914"
    assert retoure["remittance_info"].startswith("RETOURE MTLG:Grund nicht spezifiziert")
    storno = lines[5]  # ':61:0709040904RCR204,88NRTINONREF'
    assert storno["amount"] == "-204.88" and storno["reversal"] is True
    assert storno["entry_ref"] == "pos-5"
    credit = lines[7]
    # EREF+ runs on from ?20 into ?21 because ?20 was full (27 characters).
    assert credit["end_to_end_id"] == "EndToEndIdTFNR2000400001"
    assert credit["counterparty_name"] == "Richter Renate 70 Zeichen Beginn Fuellzeichen xxxxxxxx"
    assert credit["counterparty_account"] == "DE42100100100043921105"
    assert credit["amount"] == "15000.05"


def test_binary_character_sample_is_utf8_umlauts():
    parsed = parse("wolph_betterplace_with_binary_character.sta")
    assert parsed.warnings == []
    assert [s.statement_id for s in parsed.statements] == [
        "STAR1ÜTßUMS/00027/00001",
        "STAR1ÜTUMS/00053/00001",
    ]
    assert all(s.balanced for s in parsed.statements)
    first = rows(parsed)[0]
    assert first["amount"] == "27.00"
    assert first["counterparty_name"] == "PAYPAL"
    assert first["entry_ref"] == "32-P1-TCS49518"
    last = rows(parsed)[-1]
    assert last["booking_date"] == D(2010, 3, 19) and last["value_date"] == D(2010, 3, 22)
    assert "Überweisung" in last["remittance_info"]


def test_citi_blank_entry_date_and_zero_amounts():
    parsed = parse("wolph_citi_mt940.txt")
    (summary,) = parsed.statements
    assert summary.statement_id == "asdfsdfdsf/1/1" and summary.currency == "USD"
    assert summary.balanced is True
    amounts = [r["amount"] for r in rows(parsed)]
    assert amounts == ["-212.39", "-369.28", "0.00", "0.00", "-561.08"]
    assert rows(parsed)[0]["booking_date"] == D(2024, 3, 12)


def test_mbank_soh_etx_wrapped():
    parsed = parse("wolph_mBank_mt940.sta")
    (summary,) = parsed.statements
    assert summary.account == "PL29114010810000267002001002"
    assert (summary.opening_balance, summary.closing_balance, summary.balanced) == (
        "0.40", "0.43", True
    )
    assert [r["entry_ref"] for r in rows(parsed)] == [
        "MB170119012058", "MB170119012085", "MB170119012121"
    ]
    assert rows(parsed)[0]["amount_minor"] == 1


@pytest.mark.parametrize(
    ("name", "currency", "amounts"),
    [
        ("wolph_mBank_mt942.sta", "PLN", ["0.01", "0.01", "0.01"]),
        ("wolph_selfprov_mt942.sta", "EUR", ["-0.42"]),
    ],
)
def test_mt942_lines_are_pending(name, currency, amounts):
    parsed = parse(name)
    lines = parsed.lines
    assert lines["message_type"].unique().to_list() == ["mt942"]
    assert lines["status"].unique().to_list() == ["pending"]
    assert lines["currency"].unique().to_list() == [currency]  # from :34F:
    assert lines["amount"].to_list() == amounts
    (summary,) = parsed.statements
    assert summary.balanced is None and summary.booked_sum == "0"


def test_mt942_entry_date_after_value_date():
    (line,) = rows(parse("wolph_selfprov_mt942.sta"))
    assert line["value_date"] == D(2016, 10, 30) and line["booking_date"] == D(2016, 10, 31)
    assert line["entry_ref"] == "055001022000001"


def test_raiffeisen_cp852_is_decoded_with_a_warning():
    parsed = parse("wolph_selfprov_raiffeisen-cmi.sta")
    assert any("cp852" in w for w in parsed.warnings)
    first = rows(parsed)[0]
    assert first["amount"] == "2066637.00" and first["currency"] == "HUF"
    assert "összevont utánvét" in first["remittance_info"]
    (summary,) = parsed.statements
    assert summary.account == "UBRTHUHB/123456789150ABCDEF002/HUF"
    # The sample itself does not add up: 25170637.10 - 1012213.50 != 25281687.60.
    assert summary.booked_sum == "-1012213.50" and summary.balanced is False


def test_rabobank_dutch_structured_86_and_repeated_statement_ids():
    parsed = parse("wolph_jejik_rabobank-iban.sta")
    assert [s.statement_id for s in parsed.statements] == ["940S130101/0", "940S130101/0#2"]
    assert any("appears 2 times" in w for w in parsed.warnings)
    first, second = rows(parsed)[:2]
    assert first["amount"] == "-25.00"  # '000000000025,00'
    assert first["end_to_end_id"] == "01-01-2013 12:00 0030000987654321"
    assert first["counterparty_name"] == "CONTRA ACCOUNT HOLDER"
    assert second["counterparty_name"] == "JOHN DOE"
    assert second["remittance_info"] == "Reference 201301234"
    assert parsed.statements[0].opening_balance == "1000.00"


def test_old_rabobank_several_86_fields_and_leading_zeros():
    parsed = parse("wolph_jejik_rabobank.sta")
    first = rows(parsed)[0]
    assert first["amount"] == "-1213.28"
    assert first["end_to_end_id"] is None  # reference overflows into the name
    assert first["remittance_info"] == (
        "Terugboeking NIET AKKOORD MET AFSCHRIJVING KOSTEN KINDEROPVANG JUNI 20095731"
    )
    assert parsed.statements[1].opening_balance == "1000.89"


def test_abnamro_preamble_and_intermediate_balances():
    parsed = parse("wolph_jejik_abnamro.sta")
    assert [s.statement_id for s in parsed.statements] == [
        "ABN AMRO BANK NV/19321/1",
        "ABN AMRO BANK NV/19322/1",
    ]
    second = parsed.statements[1]
    assert (second.opening_balance, second.closing_balance) == ("2876.84", "1849.75")  # :60M:/:62M:
    assert rows(parsed)[0]["amount"] == "-9"  # 'D9,'


def test_knab_amount_without_comma_and_triodos_angle_subfields():
    knab = rows(parse("wolph_jejik_knab.sta"))
    assert [r["amount"] for r in knab] == ["500", "-7260", "500"]
    assert knab[0]["entry_ref"] == "B4E07XM00J000023"
    triodos = rows(parse("wolph_jejik_triodos.sta"))
    assert triodos[0]["counterparty_account"] == "0390123456"
    assert triodos[0]["remittance_info"].startswith("ALGEMENE TUSSENREKENING KOSTEN VAN")


def test_sberbank_non_standard_fields_are_ignored():
    parsed = parse("wolph_sberbank_171011_01234945.sta")
    (summary,) = parsed.statements
    assert summary.statement_id == "STARTUMS/00046"
    assert summary.balanced is True
    assert parsed.lines["amount"].to_list() == ["-2402.00", "-3460.00", "-3575.00"]


def test_entry_date_rolls_over_the_year():
    text = (
        ":20:ROLL\n:25:DE00123\n:28C:7/1\n:60F:C231229EUR10,00\n"
        ":61:2312290102D1,00NTRFE2E-1//B1\n:61:2401021229C2,00NTRFNONREF//B2\n"
        ":62F:C240102EUR11,00\n-\n"
    ).encode()
    first, second = rows(parse_mt940(text))
    assert first["value_date"] == D(2023, 12, 29) and first["booking_date"] == D(2024, 1, 2)
    assert second["value_date"] == D(2024, 1, 2) and second["booking_date"] == D(2023, 12, 29)
    assert first["end_to_end_id"] == "E2E-1" and second["end_to_end_id"] is None


def test_sepa_eref_in_86_wins_over_the_customer_reference():
    text = (
        ":20:E\n:25:DE00123\n:28C:1\n:60F:C240101EUR0,\n"
        ":61:2401010101D5,00NTRFPO-SHORT//BANK1\n"
        ":86:177?00SEPA-UEBERWEISUNG?20EREF+PO-20240101-0001?21SVWZ+Payout 1?32Jane Doe\n"
        ":62F:D240101EUR5,00\n-\n"
    ).encode()
    (line,) = rows(parse_mt940(text))
    assert line["end_to_end_id"] == "PO-20240101-0001"
    assert line["remittance_info"] == "SEPA-UEBERWEISUNG Payout 1"
    assert line["counterparty_name"] == "Jane Doe"
    assert line["amount"] == "-5.00"


def test_february_30_fails_with_file_and_line():
    with pytest.raises(StatementError) as info:
        parse("wolph_selfprov_february_30.sta")
    assert "impossible value date '160230'" in str(info.value)
    assert info.value.file.endswith("wolph_selfprov_february_30.sta")
    assert info.value.position == "line 6"


@pytest.mark.parametrize("name", ["wolph_betterplace_amount_formats.sta", "wolph_selfprov_sparkassen.sta"])
def test_fragments_without_a_statement_header_are_refused(name):
    with pytest.raises(StatementError, match="no :20: before it"):
        parse(name)
    assert sniff_format((MT940 / name).read_bytes()) is None


def test_amount_formats_sample_balance_by_balance():
    lines = (MT940 / "wolph_betterplace_amount_formats.sta").read_text().splitlines()
    values = [parse_balance(line.removeprefix(":60F:")) for line in lines]
    assert [v[0] for v in values] == ["380115.12", "380115.1", "380115", "0.12", "0.12", "1.12"]
    assert {v[1] for v in values} == {D(2010, 3, 18)} and {v[2] for v in values} == {"EUR"}


@pytest.mark.parametrize("text", ["", ",12", "1,2,3", "12a", "1.5"])
def test_bad_amounts(text):
    with pytest.raises(ValueError):
        parse_amount(text)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{1:F01XXXX}{2:O940X}{4:\n-}", "no :20: field"),
        (b":20:X\n:25:Y\n:61:bad\n", "malformed statement line"),
        (b":20:X\n:60F:C240101EUR1,\n:62F:C240101EUR1,\n", "without an account"),
        (b":20:X\n:25:Y\n:60F:C240101EUR1,\n", "without a closing"),
        (b":20:X\n:25:Y\n:62F:C240101EUR1,\n", "without an opening"),
        (b":20:X\n:25:Y\n:60F:C241301EUR1,\n", "malformed balance"),
        (b":20:X\n\x00", "binary file"),
    ],
)
def test_broken_files_raise_statement_errors(data, message):
    with pytest.raises(StatementError, match=message):
        parse_mt940(data)
