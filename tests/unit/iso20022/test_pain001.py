"""The pain.001 writer: XSD validity of both versions, exact control sums, ids, text reduction and escaping."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree

from payouts.iso20022 import CreditTransfer, Debtor, Pain001Error, validate, write_pain001
from payouts.iso20022.pain001 import xsd_path
from payouts.iso20022.sepa_text import is_sepa_text, to_sepa_text, transliterate
from payouts.core.money import to_decimal

PROJECT = Path(__file__).resolve().parents[3]
SAMPLES = PROJECT.parent / "shared" / "data" / "pain"
DK_XSD = PROJECT / "include" / "xsd" / "pain.001.001.03_DK.xsd"
VERSIONS = ("001.001.09", "001.001.03")
DEBTOR = Debtor("Payouts Platform GmbH", "DE75 5121 0800 1245 1261 99", "SOGEDEFFXXX")
CREATED = datetime(2026, 3, 2, 9, 30, tzinfo=timezone.utc)
SEPA_IBANS = ("DE89370400440532013000", "NL91ABNA0417164300", "FR1420041010050500013M02606",
              "GB29NWBK60161331926819", "BE68539007547034")


def _sepa(n: int, amounts=None) -> list[dict]:
    amounts = amounts or [1 + (i * 7919) % 100_000 for i in range(n)]
    return [{"end_to_end_id": f"PO-{i:06d}", "amount_minor": amounts[i], "currency": "EUR",
             "creditor_name": f"Payee {i}", "creditor_iban": SEPA_IBANS[i % len(SEPA_IBANS)],
             "remittance": f"Payout {i}"} for i in range(n)]


def _tree(xml: bytes):
    return etree.fromstring(xml)


def _find(node, path: str):
    return node.find("/".join("{*}" + part for part in path.split("/")))


def _findall(node, path: str):
    return node.findall(".//" + "/".join("{*}" + part for part in path.split("/")))


def _text(node, path: str) -> str | None:
    found = _find(node, path)
    return None if found is None else found.text


@pytest.mark.parametrize("instant", [False, True], ids=["sct", "sct_inst"])
@pytest.mark.parametrize("version", VERSIONS)
def test_both_versions_with_and_without_instant_validate(version, instant):
    xml = write_pain001(_sepa(5), DEBTOR, version=version, instant=instant, created_at=CREATED,
                        execution_date=date(2026, 3, 3), message_id="RUN-2026-03-02-001")
    assert validate(xml, version) == []
    tree = _tree(xml)
    assert etree.QName(tree).namespace == f"urn:iso:std:iso:20022:tech:xsd:pain.{version}"
    (block,) = _findall(tree, "PmtInf")
    assert _text(block, "PmtMtd") == "TRF" and _text(block, "BtchBookg") == "true"
    assert _text(block, "PmtTpInf/SvcLvl/Cd") == "SEPA"
    assert _text(block, "PmtTpInf/LclInstrm/Cd") == ("INST" if instant else None)
    assert _text(block, "ChrgBr") == "SLEV"
    if version == "001.001.09":   # a choice in .09, a plain date in .03
        assert _text(block, "ReqdExctnDt/Dt") == "2026-03-03"
        assert _text(block, "DbtrAgt/FinInstnId/BICFI") == "SOGEDEFFXXX"
    else:
        assert _text(block, "ReqdExctnDt") == "2026-03-03" and len(_find(block, "ReqdExctnDt")) == 0
        assert _text(block, "DbtrAgt/FinInstnId/BIC") == "SOGEDEFFXXX"
    assert _text(block, "DbtrAcct/Id/IBAN") == "DE75512108001245126199"
    assert _text(tree, "CstmrCdtTrfInitn/GrpHdr/MsgId") == "RUN-2026-03-02-001"
    assert _text(tree, "CstmrCdtTrfInitn/GrpHdr/CreDtTm") == "2026-03-02T09:30:00+00:00"
    if version == "001.001.03" and not instant:   # also meets the German banks' SEPA profile
        assert validate(xml, version, schema_path=DK_XSD) == []


def test_creditor_bic_element_per_version_and_debtor_agent_without_bic():
    payments = [{**_sepa(1)[0], "creditor_bic": "ABNANL2A"}]
    for version, tag in (("001.001.09", "BICFI"), ("001.001.03", "BIC")):
        xml = write_pain001(payments, Debtor("Payouts", "DE75512108001245126199"), version=version)
        assert validate(xml, version) == []
        tx = _findall(_tree(xml), "CdtTrfTxInf")[0]
        assert _text(tx, f"CdtrAgt/FinInstnId/{tag}") == "ABNANL2A"
        assert _text(_findall(_tree(xml), "PmtInf")[0], "DbtrAgt/FinInstnId/Othr/Id") == "NOTPROVIDED"


@pytest.mark.parametrize("version", VERSIONS)
def test_counts_and_control_sums_exact_over_many_payments_and_currencies(version):
    amounts = [1, 99_999_999_999, 1, 10, 99_999_999_999] + [1 + (i * 104_729) % 99_999_999_999 for i in range(2_000)]
    payments = _sepa(len(amounts), amounts)
    payments += [{"end_to_end_id": f"JP-{i}", "amount_minor": a, "currency": "JPY", "creditor_name": "Tanaka Taro",
                  "creditor_account_id": f"00{i}1234567", "creditor_bic": "BOTKJPJT", "creditor_country": "JP"}
                 for i, a in enumerate([1, 999_999_999_999, 123_456])]
    payments += [{"end_to_end_id": "BH-1", "amount_minor": 1_234_567, "currency": "BHD", "creditor_name": "Ali",
                  "creditor_iban": "BH67BMAG00001299123456", "charge_bearer": "DEBT"},
                 {"end_to_end_id": "US-1", "amount_minor": 150, "currency": "USD", "creditor_name": "Bob",
                  "creditor_iban": "NL91ABNA0417164300", "charge_bearer": "SHAR"}]
    xml = write_pain001(payments, DEBTOR, version=version)
    assert validate(xml, version) == []
    tree = _tree(xml)
    expected_total = sum(to_decimal(p["amount_minor"], p["currency"]) for p in payments)
    assert _text(tree, "CstmrCdtTrfInitn/GrpHdr/NbOfTxs") == str(len(payments))
    assert Decimal(_text(tree, "CstmrCdtTrfInitn/GrpHdr/CtrlSum")) == expected_total
    blocks = {(_findall(b, "CdtTrfTxInf")[0].find(".//{*}InstdAmt").get("Ccy"), _text(b, "ChrgBr")): b
              for b in _findall(tree, "PmtInf")}
    assert set(blocks) == {("EUR", "SLEV"), ("JPY", "SHAR"), ("BHD", "DEBT"), ("USD", "SHAR")}
    for (currency, _), block in blocks.items():
        mine = [p for p in payments if p["currency"] == currency]
        assert _text(block, "NbOfTxs") == str(len(mine)) == str(len(_findall(block, "CdtTrfTxInf")))
        assert _text(block, "CtrlSum") == format(sum(to_decimal(p["amount_minor"], currency) for p in mine), "f")
        assert _text(block, "PmtTpInf/SvcLvl/Cd") == ("SEPA" if currency == "EUR" else None)
    amounts_text = [e.text for e in _findall(tree, "InstdAmt")]
    assert amounts_text[:5] == ["0.01", "999999999.99", "0.01", "0.10", "999999999.99"]
    jpy = [e.text for e in _findall(tree, "InstdAmt") if e.get("Ccy") == "JPY"]
    assert jpy == ["1", "999999999999", "123456"]
    assert [e.text for e in _findall(tree, "InstdAmt") if e.get("Ccy") == "BHD"] == ["1234.567"]
    assert all("e" not in t.lower() for t in amounts_text)


def test_round_trip_no_amount_lost_and_end_to_end_ids_are_the_item_ids():
    payments = _sepa(500) + [
        {"item_id": f"SW-{i}", "amount_minor": 10 ** i, "currency": "USD", "name": "Carol",
         "iban": "NL91ABNA0417164300"} for i in range(10)]
    xml = write_pain001(payments, DEBTOR)
    tree = _tree(xml)
    by_id = {tx.findtext("{*}PmtId/{*}EndToEndId"): tx.find("{*}Amt/{*}InstdAmt")
             for tx in _findall(tree, "CdtTrfTxInf")}
    ids = [p.get("end_to_end_id") or p.get("item_id") for p in payments]
    assert list(by_id) == ids   # one per payment, unchanged, in input order within each block
    for currency in ("EUR", "USD"):
        read = sum(Decimal(a.text) for a in by_id.values() if a.get("Ccy") == currency)
        given = sum(to_decimal(p["amount_minor"], currency) for p in payments if p["currency"] == currency)
        assert read == given
    for p, item_id in zip(payments, ids):
        assert to_decimal(p["amount_minor"], p["currency"]) == Decimal(by_id[item_id].text)


def test_dataclass_and_credit_transfer_inputs():
    @dataclass
    class PayoutItem:
        item_id: str
        amount_minor: int
        currency: str
        name: str
        iban: str
        rail: str = "sepa_credit"

    items = [PayoutItem("IT-1", 500, "EUR", "Anna", "DE89370400440532013000"),
             CreditTransfer("IT-2", 700, "EUR", "Ben", creditor_iban="de89 3704 0044 0532 0130 00")]
    tree = _tree(write_pain001(items, DEBTOR))
    assert [e.text for e in _findall(tree, "EndToEndId")] == ["IT-1", "IT-2"]
    assert [e.text for e in _findall(tree, "CdtrAcct/Id/IBAN")] == ["DE89370400440532013000"] * 2


NASTY_NAME = 'Jürgen Müller & Söhne <GmbH> "Ökö" 🎉 دانة שלום'
NASTY_REMITTANCE = "Rechnung Nr. 42 & <script>alert('x')</script> — Straße ⅓ \u202eRTL\u202c Ελλάδα Москва 👍" * 3


@pytest.mark.parametrize("instant", [False, True], ids=["sct", "sct_inst"])
@pytest.mark.parametrize("version", VERSIONS)
def test_special_characters_reduced_for_sepa_and_document_still_validates(version, instant):
    payments = [{"end_to_end_id": "X-1", "amount_minor": 1234, "currency": "EUR", "creditor_name": NASTY_NAME * 3,
                 "creditor_iban": "DE89370400440532013000", "remittance": NASTY_REMITTANCE}]
    xml = write_pain001(payments, Debtor("Zoë & Co. <Payouts>", DEBTOR.iban), version=version, instant=instant)
    assert validate(xml, version) == []
    tx = _findall(_tree(xml), "CdtTrfTxInf")[0]
    name, ustrd = _text(tx, "Cdtr/Nm"), _text(tx, "RmtInf/Ustrd")
    assert name.startswith("Juergen Mueller + Soehne GmbH 'Oekoe'") and len(name) <= 70
    assert ustrd.startswith("Rechnung Nr. 42 + script alert('x') /script - Strasse 1/3 RTL Ellada Moskva")
    assert len(ustrd) <= 140 and ustrd == ustrd.strip()
    assert is_sepa_text(name) and is_sepa_text(ustrd) and "  " not in ustrd
    assert _text(_tree(xml), "CstmrCdtTrfInitn/GrpHdr/InitgPty/Nm") == "Zoe + Co. Payouts"


def test_unicode_text_kept_and_escaped_when_not_reduced():
    name = 'Ann & Bob <"Ö"> \'q\' 🎉 שלום'
    xml = write_pain001([{"end_to_end_id": "U-1", "amount_minor": 100, "currency": "USD", "creditor_name": name,
                          "creditor_iban": "NL91ABNA0417164300", "remittance": "a\tb\x00c & </Ustrd>"}],
                        DEBTOR, reduce_text=False)
    assert validate(xml, "001.001.09") == []
    assert b"Ann &amp; Bob &lt;" in xml and b"c &amp; &lt;/Ustrd&gt;</Ustrd>" in xml
    tx = _findall(_tree(xml), "CdtTrfTxInf")[0]
    assert _text(tx, "Cdtr/Nm") == name            # parsed back exactly: escaped, not mangled
    assert _text(tx, "RmtInf/Ustrd") == "a b c & </Ustrd>"


@pytest.mark.parametrize("bad_id", ["/LEADING", "DOUBLE//SLASH", "X" * 36, "", "with space ", "ünï"])
def test_end_to_end_ids_that_cannot_be_used_are_refused_never_rewritten(bad_id):
    payment = {**_sepa(1)[0], "end_to_end_id": bad_id}
    with pytest.raises(Pain001Error, match="EndToEndId"):
        write_pain001([payment], DEBTOR)


def test_max_length_end_to_end_id_accepted():
    xml = write_pain001([{**_sepa(1)[0], "end_to_end_id": "A" * 35}], DEBTOR)
    assert _text(_findall(_tree(xml), "CdtTrfTxInf")[0], "PmtId/EndToEndId") == "A" * 35


@pytest.mark.parametrize("change, message", [
    ({"amount_minor": 12.5}, "integer"),
    ({"amount_minor": 0}, "not positive"),
    ({"amount_minor": 100_000_000_000}, "999999999.99"),
    ({"currency": "USDC"}, "ISO 4217"),
    ({"currency": "USD", "charge_bearer": "SLEV"}, "SLEV is for SEPA only"),
    ({"charge_bearer": "XXXX"}, "charge bearer"),
    ({"creditor_iban": None}, "exactly one"),
    ({"creditor_name": "🎉 שלום"}, "nothing left"),
    ({"creditor_bic": "NOT A BIC"}, "BIC"),
])
def test_payment_problems_are_reported(change, message):
    with pytest.raises(Pain001Error, match=message):
        write_pain001([{**_sepa(1)[0], **change}], DEBTOR)


def test_instant_refuses_non_sepa_payments_duplicates_and_bad_debtors():
    usd = {**_sepa(1)[0], "currency": "USD", "end_to_end_id": "USD-1"}
    with pytest.raises(Pain001Error, match="SCT Inst"):
        write_pain001(_sepa(2) + [usd], DEBTOR, instant=True)
    with pytest.raises(Pain001Error, match="more than once"):
        write_pain001(_sepa(2) + _sepa(1), DEBTOR)
    with pytest.raises(Pain001Error, match="debtor IBAN"):
        write_pain001(_sepa(1), Debtor("P", "DE75512108001245126198"))
    with pytest.raises(Pain001Error, match="debtor BIC"):
        write_pain001(_sepa(1), Debtor("P", DEBTOR.iban, "XXXX"))
    with pytest.raises(Pain001Error, match="no payments"):
        write_pain001([], DEBTOR)
    with pytest.raises(Pain001Error, match="version"):
        write_pain001(_sepa(1), DEBTOR, version="001.001.02")
    with pytest.raises(Pain001Error, match="message id"):
        write_pain001(_sepa(1), DEBTOR, message_id="M" * 36)


def test_ids_fit_max35_and_batch_booking_flag():
    xml = write_pain001(_sepa(2) + [{**_sepa(1)[0], "end_to_end_id": "U", "currency": "USD"}], DEBTOR,
                        message_id="M" * 35, batch_booking=False)
    tree = _tree(xml)
    ids = [e.text for e in _findall(tree, "PmtInfId")]
    assert ids == ["M" * 33 + "-1", "M" * 33 + "-2"]
    assert {e.text for e in _findall(tree, "BtchBookg")} == {"false"}


def test_default_message_id_and_execution_date():
    tree = _tree(write_pain001(_sepa(1), DEBTOR, created_at=CREATED))
    assert _text(tree, "CstmrCdtTrfInitn/GrpHdr/MsgId").startswith("PAYOUTS-20260302T093000-")
    assert _findall(tree, "ReqdExctnDt/Dt")[0].text == "2026-03-02"


@pytest.mark.parametrize("sample", ["moov-iso20022_gistfile1.xml", "moov-iso20022_sepa_payment_naujas_1.xml",
                                    "moov-iso20022_International_payment_USD_naujas_1.xml"])
def test_validator_accepts_real_bank_samples_and_rejects_broken_ones(sample):
    data = (SAMPLES / sample).read_bytes()
    assert validate(data, "001.001.03") == []
    broken = data.replace(b"<PmtMtd>TRF</PmtMtd>", b"<PmtMtd>XXX</PmtMtd>", 1)
    assert any("PmtMtd" in e for e in validate(broken, "001.001.03"))
    assert validate(b"<not xml", "001.001.03")[0].startswith("not well-formed")
    assert validate(data, "001.001.09")    # wrong version: namespace mismatch


def test_xsds_are_local_copies():
    for version in VERSIONS:
        path = xsd_path(version)
        assert path.is_file() and path.parent == PROJECT / "include" / "xsd"
        assert path.read_bytes() == (PROJECT.parent / "shared" / "data" / "xsd" / path.name).read_bytes()


@pytest.mark.parametrize("text, expected", [
    ("Müller Straße", "Mueller Strasse"),
    ("ÄÖÜ äöü", "AeOeUe aeoeue"),
    ("Zoë Renée Françoise Łukasz Dvořák Øre Ærø", "Zoe Renee Francoise Lukasz Dvorak Oere AEroe"),
    ("Ελληνικά Σωκράτης", "Ellinika Sokratis"),
    ("Москва Щука Ёлка", "Moskva Shchuka Elka"),
    ("A & B <c> \"d\" ‘e’ – f; g! [h] _ € 5", "A + B c 'd' 'e' - f, g. (h) - EUR 5"),
    ("  many\t\n spaces  ", "many spaces"),
    ("🎉👍 שלום عربي 中文", ""),
    (None, ""),
])
def test_sepa_text_reduction(text, expected):
    reduced = to_sepa_text(text, 140)
    assert reduced == expected and is_sepa_text(reduced)


def test_sepa_text_truncates_after_transliteration():
    assert to_sepa_text("ü" * 80, 70) == "ue" * 35
    assert to_sepa_text("abc " * 40, 10) == "abc abc ab"
    assert to_sepa_text("abcdefghi jk", 10) == "abcdefghi"     # no trailing space after the cut
    assert all(ch in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/-?:().,'+ "
               for ch in transliterate("".join(chr(c) for c in range(0x20, 0x3000))))
