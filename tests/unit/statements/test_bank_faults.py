"""Faults found in statements from real banks, each on a small file written for it.

Time-zone offsets on xs:date, '.' as an MT940 decimal mark, a :61: without a
transaction type code, a dash alone in :86: text, and one broken statement
among complete ones (camt and MT940 follow the same rule: the broken one is
quarantined with its reason, the complete ones are read).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from payouts.statements import StatementError, parse_camt, parse_mt940, parse_statement_file
from payouts.statements.mt940 import read_amount

D = dt.date
NS04 = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.04"
IBAN = "CH9300762011623852957"


def camt_entry(amount, booked="2017-04-01", valued="2017-04-03", ref="REF-1", cdi="DBIT", e2e="E2E-1"):
    return (
        f'<Ntry><Amt Ccy="CHF">{amount}</Amt><CdtDbtInd>{cdi}</CdtDbtInd><Sts>BOOK</Sts>'
        f"<BookgDt><Dt>{booked}</Dt></BookgDt><ValDt><Dt>{valued}</Dt></ValDt>"
        f"<AcctSvcrRef>{ref}</AcctSvcrRef><BkTxCd/>"
        f"<NtryDtls><TxDtls><Refs><EndToEndId>{e2e}</EndToEndId></Refs></TxDtls></NtryDtls></Ntry>"
    )


def camt_statement(stmt_id, entries, opening="100.00", closing="90.00", iban=IBAN):
    balances = "".join(
        f"<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp><Amt Ccy=\"CHF\">{amount}</Amt>"
        "<CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2017-04-01</Dt></Dt></Bal>"
        for code, amount in (("OPBD", opening), ("CLBD", closing))
    )
    return (
        f"<Stmt><Id>{stmt_id}</Id><CreDtTm>2017-04-01T20:00:00+02:00</CreDtTm>"
        f"<Acct><Id><IBAN>{iban}</IBAN></Id></Acct>\n{balances}\n" + "\n".join(entries) + "\n</Stmt>"
    )


def camt_document(*statements):
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Document xmlns="{NS04}"><BkToCstmrStmt>\n'
        "<GrpHdr><MsgId>M1</MsgId><CreDtTm>2017-04-01T20:00:00+02:00</CreDtTm></GrpHdr>\n"
        + "\n".join(statements)
        + "\n</BkToCstmrStmt></Document>\n"
    ).encode()


# -- 1. xs:date with a time-zone offset ----------------------------------------------------


@pytest.mark.parametrize("zone", ["+02:00", "-05:00", "Z", "+00:00"])
def test_dates_with_a_time_zone_offset_are_read_as_the_day_written(zone):
    doc = camt_document(camt_statement(
        "S1", [camt_entry("10.00", booked=f"2017-04-01{zone}", valued=f"2017-04-03{zone}")]))
    (line,) = parse_camt(doc).lines.to_dicts()
    assert line["booking_date"] == D(2017, 4, 1)
    assert line["value_date"] == D(2017, 4, 3)


@pytest.mark.parametrize("bad", ["2017-04-01+2:00", "2017-04-01+02", "2017-04-01 +02:00", "2017-02-30+02:00"])
def test_a_date_with_a_malformed_offset_is_still_refused(bad):
    doc = camt_document(camt_statement("S1", [camt_entry("10.00", booked=bad)]))
    with pytest.raises(StatementError, match="impossible booking date") as info:
        parse_camt(doc)
    assert "statement S1, line 0" in str(info.value)


# -- 2. '.' as the decimal mark in MT940 amounts -------------------------------------------


def mt940(*statements: str) -> bytes:
    return "".join(statements).encode()


def mt_statement(ref, lines_61, opening="C170401EUR1000,00", closing="C170401EUR957014,34", end="-\n"):
    body = "".join(f":61:{line}\n:86:/EREF/E{i}/REMI/payment {i}\n" for i, line in enumerate(lines_61))
    return (f":20:{ref}\n:25:NL91ABNA0417164300\n:28C:1/1\n:60F:{opening}\n{body}"
            + (f":62F:{closing}\n" if closing else "") + end)


def test_dot_decimal_amount_in_61_is_read_whole_not_cut():
    # Balances with ',' and :61: amounts with '.': the old Rabobank way.
    text = mt940(mt_statement("DOT", ["170401D43985.66NTRFNONREF//B1", "170401C1000000.00NTRFNONREF//B2"]))
    parsed = parse_mt940(text)
    assert parsed.lines["amount"].to_list() == ["-43985.66", "1000000.00"]
    assert parsed.lines["amount_minor"].to_list() == [-4398566, 100000000]
    (summary,) = parsed.statements
    assert summary.balanced is True  # 1000.00 - 43985.66 + 1000000.00 = 957014.34
    assert any("'.' as the decimal mark" in w and "line 5" in w for w in parsed.warnings)
    assert parsed.lines["entry_ref"].to_list() == ["B1", "B2"]


def test_dot_decimal_balances_are_read_too():
    text = mt940(mt_statement("DOTS", ["170401D43985.66NTRFREF1//B1"],
                              opening="C170401EUR50000.00", closing="C170401EUR6014.34"))
    parsed = parse_mt940(text)
    assert parsed.lines["amount"].to_list() == ["-43985.66"]
    assert parsed.statements[0].opening_balance == "50000.00"
    assert parsed.statements[0].balanced is True


@pytest.mark.parametrize(
    ("amount", "why"),
    [
        ("1.000", "could be 1000"),        # a grouping dot or three decimals: not guessed
        ("1.234,56", "mixes decimal marks"),
        ("1.234.567", "mixes decimal marks"),
    ],
)
def test_amounts_that_could_be_read_two_ways_refuse_their_statement_with_the_line(amount, why):
    text = mt940(mt_statement("AMB", [f"170401D{amount}NTRFREF1//B1"]))
    with pytest.raises(StatementError, match=why) as info:
        parse_mt940(text)
    assert info.value.position == "line 5"
    assert "statement AMB" in str(info.value)


def test_an_amount_running_into_a_reference_is_an_error_not_money():
    # No type code and a reference of digits: '20,00123456' is not 20.00 EUR.
    text = mt940(mt_statement("RUN", ["170401D20,00123456//B1"]))
    with pytest.raises(StatementError, match="has 8 decimals, EUR has 2") as info:
        parse_mt940(text)
    assert info.value.position == "line 5"


@pytest.mark.parametrize(("text", "value"), [("43985.66", "43985.66"), ("0.5", "0.5"), ("12.", "12"),
                                             ("43985,66", "43985.66"), ("1000.0001", "1000.0001")])
def test_read_amount(text, value):
    assert read_amount(text) == value


# -- 3. NONREF without a transaction type code -------------------------------------------


def test_nonref_without_a_type_code_is_no_reference_not_ef():
    text = (":20:NOTYPE\n:25:DE00123\n:28C:1\n:60F:C240101EUR100,00\n"
            ":61:2401010101D20,00NONREF\n:86:Payment one\n"
            ":61:2401010101D30,00NOTPROVIDED//BANK-2\n:86:Payment two\n"
            ":61:2401010101D10,00NTRFNONREF\n"
            ":62F:C240101EUR40,00\n-\n").encode()
    lines = parse_mt940(text).lines.to_dicts()
    assert [line["amount"] for line in lines] == ["-20.00", "-30.00", "-10.00"]
    assert [line["end_to_end_id"] for line in lines] == [None, None, None]
    assert [line["entry_ref"] for line in lines] == ["pos-0", "BANK-2", "pos-2"]
    assert [line["booking_ref"] for line in lines] == [None, "BANK-2", None]
    # Nothing of the placeholder is taken for a reference anywhere.
    assert all("EF" not in {str(value) for value in line.values()} for line in lines)
    assert lines[0]["remittance_info"] == "Payment one"


def test_nonref_lines_do_not_match_a_payout_named_ef():
    import polars as pl

    from payouts.reconcile.match import match_lines

    text = (":20:NOTYPE\n:25:DE00123\n:28C:1\n:60F:C240101EUR100,00\n"
            ":61:2401010101D20,00NONREF\n:62F:C240101EUR80,00\n-\n").encode()
    parsed = parse_mt940(text).lines
    lines = parsed.select("end_to_end_id", "amount_minor", "currency", "return_reason", "status",
                          "counterparty_name", "booking_date", "value_date", "entry_ref",
                          "remittance_info").with_columns(line_id=pl.lit(1, pl.Int64), charges_minor=pl.lit(None, pl.Int64))
    candidates = pl.DataFrame({
        "item_id": ["EF"], "amount_minor": [2000], "currency": ["EUR"], "already_matched": [False],
        "status": ["accepted"], "run_id": ["R1"], "rail": ["sepa_credit"], "batch_no": [None],
        "recipient_name": ["Someone"], "accepted_on": [D(2024, 1, 1)],
    }, schema_overrides={"batch_no": pl.Int64})
    result = match_lines(lines, candidates)
    assert result.matches.height == 0


# -- 4. one broken statement among complete ones ----------------------------------------


def test_a_dash_alone_in_86_text_is_text_not_the_end_of_the_message():
    text = (":20:DASH\n:25:DE00123\n:28C:1\n:60F:C240101EUR100,00\n"
            ":61:2401010101D20,00NTRFREF-1//B1\n:86:Invoice 17\n-\nthank you\n"
            ":62F:C240101EUR80,00\n-\n"
            ":20:NEXT\n:25:DE00123\n:28C:2\n:60F:C240101EUR80,00\n:62F:C240101EUR80,00\n-\n").encode()
    parsed = parse_mt940(text)
    assert [s.statement_id for s in parsed.statements] == ["DASH/1", "NEXT/2"]
    assert all(s.balanced for s in parsed.statements)
    (line,) = parsed.lines.to_dicts()
    assert line["remittance_info"] == "Invoice 17 - thank you"
    assert parsed.quarantined == []


def test_mt940_statement_without_closing_balance_is_quarantined_and_the_others_read(tmp_path):
    text = (
        mt_statement("GOOD-1", ["170401D10,00NTRFREF1//B1"], opening="C170401EUR100,00",
                     closing="C170401EUR90,00")
        + mt_statement("BROKEN", ["170401D5,00NTRFREF2//B2"], opening="C170401EUR90,00", closing=None)
        + mt_statement("GOOD-2", ["170401C1,00NTRFREF3//B3"], opening="C170401EUR90,00",
                       closing="C170401EUR91,00")
    ).encode()
    parsed = parse_mt940(text)
    assert [s.statement_id for s in parsed.statements] == ["GOOD-1/1/1", "GOOD-2/1/1"]
    assert parsed.lines["entry_ref"].to_list() == ["B1", "B3"]  # nothing of BROKEN is kept
    (broken,) = parsed.quarantined
    assert broken.statement_id == "BROKEN" and broken.account == "NL91ABNA0417164300"
    assert "statement BROKEN (lines 9 to 14) without a closing" in broken.reason
    assert broken.position == "line 9"
    path = tmp_path / "three.sta"
    path.write_bytes(text)
    assert str(path) in parse_statement_file(path).quarantined[0].reason


def test_camt_statement_with_an_impossible_date_is_quarantined_and_the_others_read():
    doc = camt_document(
        camt_statement("GOOD-1", [camt_entry("10.00", ref="A")]),
        camt_statement("BROKEN", [camt_entry("1.00", ref="B"), camt_entry("9.00", booked="2017-02-30", ref="C")],
                       iban="CH5604835012345678009"),
        camt_statement("GOOD-2", [camt_entry("10.00", ref="D")]),
    )
    parsed = parse_camt(doc)
    assert [s.statement_id for s in parsed.statements] == ["GOOD-1", "GOOD-2"]
    assert parsed.lines["entry_ref"].to_list() == ["A", "D"]
    (broken,) = parsed.quarantined
    assert (broken.statement_id, broken.account) == ("BROKEN", "CH5604835012345678009")
    assert "impossible booking date '2017-02-30'" in broken.reason
    assert broken.position == "statement BROKEN, line 1, file line 11"


def test_camt_statement_without_an_amount_is_quarantined_while_streaming():
    doc = camt_document(
        camt_statement("GOOD", [camt_entry("10.00", ref="A")]),
        camt_statement("NO-AMOUNT", [camt_entry("", ref="B")]),
    )
    parsed = parse_camt(doc)
    assert [s.statement_id for s in parsed.statements] == ["GOOD"]
    (broken,) = parsed.quarantined
    assert "entry without Amt" in broken.reason
    assert "Stmt NO-AMOUNT, entry 0, file line 10" in broken.reason


@pytest.mark.parametrize("kind", ["camt", "mt940"])
def test_a_file_without_one_complete_statement_is_refused_with_the_first_reason(kind):
    if kind == "camt":
        data = camt_document(camt_statement("ONLY", [camt_entry("9.00", booked="2017-02-30")]),
                             camt_statement("ALSO", [camt_entry("", ref="X")]))
        first, where = "impossible booking date", "statement ONLY, line 0, file line 6"
    else:
        data = mt940(mt_statement("ONLY", ["170401D5,00NTRFREF//B"], closing=None),
                     mt_statement("ALSO", ["170401D5,00NTRFREF//B"], closing=None))
        first, where = "statement ONLY (lines 1 to 6) without a closing", "line 1"
    with pytest.raises(StatementError, match="and 1 more statement cannot be read") as info:
        (parse_camt if kind == "camt" else parse_mt940)(data)
    assert first in info.value.message and info.value.position == where


def test_broken_xml_still_refuses_the_whole_file():
    doc = camt_document(camt_statement("GOOD", [camt_entry("10.00")]))[:-40]
    with pytest.raises(StatementError, match="(truncated|malformed) XML"):
        parse_camt(doc)


# -- the real samples still read whole ---------------------------------------------------

# Byte-for-byte copies of the samples in ../shared/data (tests/fixtures/*/PROVENANCE.md).
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
# Refused on purpose (see test_camt_samples.py and test_mt940.py): a group header
# without statements, fragments without :20:, and the 30 February sample.
REFUSED = {"genkgo_camt053.v2.wrong.xml", "wolph_betterplace_amount_formats.sta",
           "wolph_selfprov_february_30.sta", "wolph_selfprov_sparkassen.sta"}
SAMPLES = sorted(p for d in ("camt", "mt940") for p in (FIXTURES / d).iterdir()
                 if p.name != "PROVENANCE.md" and p.name not in REFUSED)


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_no_real_sample_loses_a_statement(path):
    parsed = parse_statement_file(path)
    assert parsed.quarantined == []
    assert parsed.statements
    assert not any("decimal mark" in w for w in parsed.warnings)


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_the_refused_samples_are_still_refused(name):
    directory = "camt" if name.endswith(".xml") else "mt940"
    with pytest.raises(StatementError):
        parse_statement_file(FIXTURES / directory / name)
