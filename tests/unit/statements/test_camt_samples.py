"""Real (and semi-synthetic library) camt samples -> concrete line values.

Every expected value below was read from the fixture file itself.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from payouts.statements import LINE_SCHEMA, StatementError, parse_camt, parse_statement_file

CAMT = Path(__file__).resolve().parents[2] / "fixtures" / "camt"
D = dt.date


def parse(name: str):
    return parse_camt(CAMT / name)


def rows(parsed) -> list[dict]:
    return parsed.lines.to_dicts()


ALL_SAMPLES = sorted(p.name for p in CAMT.glob("*.xml") if p.name != "genkgo_camt053.v2.wrong.xml")


@pytest.mark.parametrize("name", ALL_SAMPLES)
def test_every_sample_parses_to_the_line_schema_with_unique_keys(name):
    parsed = parse_statement_file(CAMT / name)
    lines = parsed.lines
    assert lines.schema == LINE_SCHEMA
    assert lines.height > 0
    key = ["account", "statement_id", "entry_ref", "position"]
    assert lines.select(key).is_unique().all()
    assert lines["status"].is_in(["booked", "pending"]).all()
    assert lines["message_type"].is_in(["camt.052", "camt.053", "camt.054"]).all()
    # The lines of a statement add up to its booked entries (batch splitting
    # never changes a total).
    for summary in parsed.statements:
        mine = lines.filter(
            (pl.col("statement_id") == summary.statement_id)
            & (pl.col("account") == summary.account)
            & (pl.col("status") == "booked")
        )
        assert sum((Decimal(a) for a in mine["amount"]), Decimal(0)) == Decimal(summary.booked_sum)
        assert summary.line_count == lines.filter(
            pl.col("statement_id") == summary.statement_id
        ).height


def test_genkgo_053_v2_minimal():
    parsed = parse("genkgo_camt053.v2.minimal.xml")
    (line,) = rows(parsed)
    assert line["account"] == "NL26VAYB8060476890"
    assert line["statement_id"] == "253EURNL26VAYB8060476890"
    assert line["entry_ref"] == "pos-0"  # no AcctSvcrRef, no NtryRef
    assert (line["amount"], line["amount_minor"], line["currency"]) == ("8.85", 885, "EUR")
    assert line["booking_date"] == D(2014, 12, 31) and line["value_date"] == D(2015, 1, 2)
    assert line["status"] == "booked"
    assert line["counterparty_name"] == "NAME NAME"
    assert line["counterparty_account"] == "NL56AGDH9619008421"
    assert line["remittance_info"] == "4654654654654654"  # Strd/CdtrRefInf/Ref
    assert line["message_version"] == "001.02"
    (summary,) = parsed.statements
    assert summary.sequence == "12312"
    assert (summary.opening_balance, summary.closing_balance) == ("18.15", "-27.00")
    assert summary.balanced is False  # 18.15 + 8.85 != -27.00 (CLBD is DBIT)


def test_genkgo_053_v3_v4_v8_versions_and_refs():
    v3 = rows(parse("genkgo_camt053.v3.xml"))[0]
    v4 = rows(parse("genkgo_camt053.v4.xml"))[0]
    v8 = rows(parse("genkgo_camt053.v8.xml"))[0]
    assert (v3["message_version"], v4["message_version"], v8["message_version"]) == (
        "001.03", "001.04", "001.08",
    )
    assert v3["entry_ref"] == "XXXXXXXXXXXXXXXXXXXXXXEUR"
    assert v4["entry_ref"] == v8["entry_ref"] == "AAAASESS-FP-CN_98765/01"
    # v08: Sts/Cd, BookgDt/DtTm, RltdPties/Dbtr/Pty/Nm, account in Othr/Id.
    assert v8["status"] == "booked"
    assert v8["booking_date"] == D(2014, 12, 31)
    assert v8["end_to_end_id"] == "MUELL/FINP/RA12345"
    assert v8["counterparty_name"] == "NAME NAME"
    assert v8["account"] == "NL26VAYB8060476890"
    # The single TxDtls says "SEK 0": a lone TxDtls never overrides the entry.
    assert (v8["amount"], v8["currency"]) == ("8.85", "EUR")


def test_genkgo_multi_statement_is_two_balanced_statements():
    parsed = parse("genkgo_camt053.v2.multi.statement.xml")
    assert [s.statement_id for s in parsed.statements] == [
        "253EURNL26VAYB8060476890", "254EURNL26VAYB8060476890",
    ]
    assert [s.balanced for s in parsed.statements] == [True, True]
    assert parsed.lines["amount"].to_list() == ["8.85", "-7.00"]
    assert parsed.lines["end_to_end_id"].to_list() == ["000000001", "000000002"]
    assert parsed.lines["position"].to_list() == [0, 0]
    assert parsed.statements[1].closing_balance == "20.00"


def test_five_decimals_keeps_the_bank_text_and_refuses_minor_units():
    parsed = parse("genkgo_camt053.v2.five.decimals.xml")
    (line,) = rows(parsed)
    assert line["amount"] == "8.850"
    assert line["amount_minor"] is None  # EUR has 2 decimals, the bank wrote 3
    assert parsed.statements[0].opening_balance == "18.150"
    assert parsed.statements[0].closing_balance == "27.050"


def test_all_balance_types_takes_opbd_and_clbd():
    summary = parse("genkgo_camt053.v2.all-balance-types.xml").statements[0]
    assert summary.account == "CH2801234000123456789"
    assert (summary.opening_balance, summary.closing_balance) == ("1.01", "4.04")
    assert summary.balanced is False


def test_wrong_xml_group_header_only_is_rejected():
    with pytest.raises(StatementError, match="group header only") as exc:
        parse("genkgo_camt053.v2.wrong.xml")
    assert exc.value.file.endswith("genkgo_camt053.v2.wrong.xml")


@pytest.mark.parametrize(
    "name,version", [("genkgo_camt054.v2.xml", "001.02"), ("genkgo_camt054.v4.xml", "001.04"),
                     ("genkgo_camt054.v8.xml", "001.08")],
)
def test_genkgo_054_batch_that_does_not_add_up_stays_one_line(name, version):
    parsed = parse(name)
    (line,) = rows(parsed)
    # Entry: SEK 200000 DBIT; its 3 TxDtls are CHF credits of 3.1/3.2/3.2.
    assert (line["amount"], line["amount_minor"], line["currency"]) == ("-200000", -20000000, "SEK")
    assert line["is_batch"] is True
    assert line["message_type"] == "camt.054" and line["message_version"] == version
    assert line["booking_date"] == D(2007, 10, 18)
    assert len(parsed.warnings) == 1 and "kept as one line" in parsed.warnings[0]


def test_genkgo_054_v8_uetr_only_entry():
    (line,) = rows(parse("genkgo_camt054.v8-with-UETR.xml"))
    assert line["entry_ref"] == "pos-0"
    assert line["booking_date"] is None
    assert line["amount"] == "-200000"


def test_hbci4java_052_v08_status_code_and_v08_parties():
    parsed = parse("hbci4java_camt.052.001.08.xml")
    (line,) = rows(parsed)
    assert line["message_type"] == "camt.052" and line["message_version"] == "001.08"
    assert line["status"] == "booked"  # <Sts><Cd>BOOK</Cd></Sts>
    assert (line["amount"], line["amount_minor"]) == ("-34.00", -3400)
    assert line["entry_ref"] == "2023-11-10-00.06.42.329883"
    assert line["end_to_end_id"] == "123456789012"
    assert line["counterparty_name"] == "Beispiel AG"
    assert line["counterparty_account"] == "DE12345678901234567892"
    assert line["remittance_info"] == "Verwendungszweck"
    assert parsed.statements[0].balanced is True  # 100.00 - 34.00 == 66.00


def test_hbci4java_052_direct_debit_return_crlf():
    (line,) = rows(parse("hbci4java_camt.052.001.02_ruecklastschrift.xml"))
    assert line["account"] == "DE1234567890"
    assert line["entry_ref"] == "pos-0"  # AcctSvcrRef is the NONREF placeholder
    assert (line["amount"], line["charges"]) == ("-53.00", "3.00")
    assert line["return_reason"] == "MS03"
    assert line["counterparty_name"] == "Erwin Einzieher"
    assert line["remittance_info"] == "RUECKLASTSCHRIFT Sonstige Gruende"
    assert line["booking_date"] == D(2021, 3, 26)


def test_postfinance_053_balances_do_not_tie_and_we_say_so():
    parsed = parse("moov-iso20022_camt.053_P_CH2909000000250094239_1110092698_0_2020112503071366.xml")
    assert parsed.lines["amount"].to_list() == ["4.50", "-77.70", "1500.00", "1537.00", "1692.22"]
    summary = parsed.statements[0]
    assert summary.sequence == "118"
    assert (summary.opening_balance, summary.closing_balance) == ("211993.19", "215112.21")
    assert summary.booked_sum == "4656.02"
    assert summary.balanced is False  # the PostFinance test file is not consistent
    # Same AcctSvcrRef on two entries: position keeps the key unique.
    refs = parsed.lines.filter(pl.col("entry_ref") == "07582000303KBMSU")["position"].to_list()
    assert refs == [3, 4]


def test_postfinance_054_returns_carry_reason_and_e2e():
    (line,) = rows(parse(
        "moov-iso20022_200519_camt054-returns_p_ch2909000000250094239_1109800798_0_2019052023472022.xml"
    ))
    assert line["return_reason"] == "AC01"
    assert line["end_to_end_id"] == "EndToEndId-004-01-01"
    assert (line["amount"], line["currency"], line["status"]) == ("400.00", "CHF", "booked")
    assert line["reversal"] is False
    (line2,) = rows(parse(
        "moov-iso20022_camt054-returns_p_ch5109000000250092291_1110097606_0_2020112500512470.xml"
    ))
    assert (line2["return_reason"], line2["end_to_end_id"]) == ("AC01", "EndToEndId-001-03-04")
    assert line2["reversal"] is True
    assert line2["amount"] == "500.00"


def test_postfinance_054_batch_split_into_transactions():
    parsed = parse(
        "moov-iso20022_200924_camt.054_P_CH2909000000250094239_1110092703_0_2019042423412214.xml"
    )
    lines = parsed.lines
    assert lines["amount"].to_list() == ["400.00", "350.00", "450.00", "150.00", "50.00", "100.00"]
    assert lines["end_to_end_id"].to_list() == [f"EndToEndId-001-03-0{i}" for i in range(1, 7)]
    assert lines["entry_ref"].unique().to_list() == ["0000000000000001"]
    assert lines["position"].to_list() == list(range(6))
    assert lines["is_batch"].all()
    assert parsed.statements[0].booked_sum == "1500.00"
    assert parsed.statements[0].entry_count == 1


def test_postfinance_esr_debit_batch_and_charges():
    parsed = parse(
        "moov-iso20022_200519_camt054-ESR-ASR_P_CH2909000000250094239_1110092704_0_2019042500372179.xml"
    )
    lines = parsed.lines
    assert lines.height == 6
    assert lines["amount"].to_list()[:5] == ["250.00", "200.00", "300.00", "324.00", "463.00"]
    last = lines.row(5, named=True)
    assert (last["amount"], last["charges"], last["is_batch"]) == ("-147.00", "4.40", False)
    assert parsed.statements[0].booked_sum == "1390.00"


def test_postfinance_052_and_054_single_entries():
    r052 = parse("moov-iso20022_200519_camt.052_P_CH2909000000250094239_1110092686_0_2019042416072347.xml")
    assert r052.lines["amount"].to_list() == ["-103.00", "-913.00"]
    assert r052.lines["end_to_end_id"].to_list() == ["20190423001255000100005", "20190423001255000100006"]
    assert r052.statements[0].opening_balance == "208509.19"
    assert r052.statements[0].balanced is None  # no CLBD in an intraday report
    credit = rows(parse("moov-iso20022_200519_camt.054-Credit_P_CH2909000000250094239_1110092691_0_2019042421291293.xml"))[0]
    assert (credit["amount"], credit["value_date"]) == ("1500.00", D(2019, 4, 25))
    debit = rows(parse("moov-iso20022_200519_camt.054-Debit_P_CH2909000000250094239_1110092692_0_2019042401501580.xml"))[0]
    assert (debit["amount"], debit["end_to_end_id"]) == ("-913.00", "20190424001255000100006")


def test_postfinance_epo_batch_without_entry_ref():
    parsed = parse("moov-iso20022_200519_camt054-epo_p_ch5109000000250092291_1110097605_0_2019052003522556.xml")
    assert parsed.lines["entry_ref"].to_list() == ["pos-0"] * 3
    assert parsed.lines["amount"].to_list() == ["-200.00", "-250.00", "-300.00"]
    assert parsed.lines["amount_minor"].sum() == -75000


def test_fi_053_official_sample_balances_and_batches():
    parsed = parse("moov-iso20022_FI_camt_053_sample.xml.xml")
    summary = parsed.statements[0]
    assert (summary.statement_id, summary.account, summary.sequence) == (
        "BANKSTMTID0972009", "FI7433010001222090", "120",
    )
    assert (summary.opening_balance, summary.closing_balance) == ("10000.00", "23644.83")
    assert summary.balanced is True
    assert (summary.entry_count, summary.line_count) == (10, 13)
    arch03 = parsed.lines.filter(pl.col("entry_ref") == "091029ACCTSTMTARCH03")
    assert arch03["amount"].to_list() == ["-2000.02", "-1000.01", "-1230.02"]
    assert arch03["counterparty_name"].to_list() == ["Creditor Company"] * 3
    sct = parsed.lines.filter(pl.col("entry_ref") == "091029ACCTSTMTARCH08").row(0, named=True)
    assert (sct["end_to_end_id"], sct["remittance_info"]) == ("EndToEndIdSCT01", "RF98123456789012")


def test_fi_052_pending_is_never_booked():
    parsed = parse("moov-iso20022_FI_camt_052_sample.xml.xml")
    first, second = rows(parsed)
    assert (first["entry_ref"], first["status"], first["amount"]) == ("21892819", "pending", "2120.00")
    assert (second["status"], second["end_to_end_id"]) == ("booked", "EndToEndIdSCT01")
    assert second["booking_date"] == D(2009, 10, 30)  # from BookgDt/DtTm
    assert [s.booked_sum for s in parsed.statements] == ["0", "100.00"]


def test_fi_054_info_status_reversal_and_return_reasons():
    parsed = parse("moov-iso20022_FI_camt_054_sample.xml.xml")
    errors = parsed.lines.filter(pl.col("entry_ref") == "091029ACCTSTMTERR01")
    assert errors["status"].to_list() == ["pending", "pending"]  # Sts INFO
    assert errors["return_reason"].to_list() == ["AC01", "CUST"]
    assert errors["amount"].to_list() == ["40.00", "60.00"]
    assert errors["reversal"].all()
    xbct = parsed.lines.filter(pl.col("entry_ref") == "091029NTFCTNXBCT010101")
    assert xbct["end_to_end_id"].to_list() == ["ISSRBKREF12345678", "ISSRBKREF12345679"]
    assert xbct["amount"].to_list() == ["-500.00", "-500.00"]
    assert xbct["charges"].to_list() == ["20.00", "20.00"]
    assert parsed.statements[0].booked_sum == "269.95"


def test_lithuanian_statement_keeps_diacritics_and_odd_amounts():
    parsed = parse("moov-iso20022_statement_1.xml")
    assert parsed.lines["amount"].to_list() == ["-1.64", "-2734.58", "-30.16", "-1.7"]
    assert parsed.lines["amount_minor"].to_list() == [-164, -273458, -3016, -170]
    assert parsed.lines["counterparty_account"][2] == "LT007044000000000000"
    assert parsed.lines["remittance_info"][0].startswith("Mokestis už į kliento sąskaitą")
    assert parsed.statements[0].balanced is None  # only OPAV/CLAV balances
