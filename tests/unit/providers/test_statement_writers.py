"""The sandbox's own camt.053 and crypto CSV writers, checked against the XSD."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from lxml import etree

from payouts_sandbox import camt053, crypto_export

NS = {"c": camt053.NAMESPACE}


def booking(n: int, amount: int, account: str | None = "DE89370400440532013000") -> camt053.Booking:
    return camt053.Booking(ref=f"SBX{n:012d}", end_to_end_id=f"R1-{n:08d}", amount_minor=amount,
                           creditor_name=f"Müller & Co <{n}>\x01", creditor_account=account)


def write(entries, rail="sepa_instant", opening=1_000_000, closing=None) -> bytes:
    if closing is None:
        closing = opening
        for e in entries:
            if isinstance(e, camt053.Booking):
                closing -= e.amount_minor
            elif isinstance(e, camt053.BatchBooking):
                closing -= sum(b.amount_minor for b in e.bookings)
            else:
                closing += e.original.amount_minor
    out = io.StringIO()
    camt053.write_camt053(
        out, msg_id="MSG1", created_at="2025-01-06T18:00:00+00:00", statement_id="STMT-1",
        sequence_number=7, account_iban="DE08370400440024543826", account_owner="Platform",
        rail=rail, currency="EUR", business_date="2025-01-06", opening_minor=opening,
        closing_minor=closing, entries=entries,
    )
    return out.getvalue().encode()


def test_single_entries_and_return_validate_against_xsd(camt053_schema):
    entries = [
        booking(1, 1234),
        booking(2, 99, account="123456789"),  # non-IBAN account -> Othr/Id
        camt053.ReturnBooking(ref="RTN000000000009", original=booking(9, 500), reason_code="AC04"),
    ]
    xml = write(entries)
    doc = etree.fromstring(xml)
    camt053_schema.assertValid(doc)
    ntries = doc.findall(".//c:Ntry", NS)
    assert [n.findtext("c:CdtDbtInd", namespaces=NS) for n in ntries] == ["DBIT", "DBIT", "CRDT"]
    assert ntries[0].findtext(".//c:EndToEndId", namespaces=NS) == "R1-00000001"
    assert ntries[0].findtext(".//c:Cdtr/c:Pty/c:Nm", namespaces=NS) == "Müller & Co <1>"
    assert ntries[1].findtext(".//c:CdtrAcct/c:Id/c:Othr/c:Id", namespaces=NS) == "123456789"
    assert ntries[2].findtext(".//c:RtrInf/c:Rsn/c:Cd", namespaces=NS) == "AC04"
    assert ntries[2].findtext(".//c:EndToEndId", namespaces=NS) == "R1-00000009"
    balances = {b.findtext(".//c:Cd", namespaces=NS): Decimal(b.findtext("c:Amt", namespaces=NS))
                for b in doc.findall(".//c:Bal", NS)}
    assert balances["OPBD"] - Decimal("12.34") - Decimal("0.99") + Decimal("5.00") == balances["CLBD"]


def test_batch_booking_sums_and_validates(camt053_schema):
    batch = camt053.BatchBooking("BTCH000000000001", "REQ1", [booking(i, 100 * i) for i in range(1, 5)])
    doc = etree.fromstring(write([batch], rail="sepa_credit"))
    camt053_schema.assertValid(doc)
    (ntry,) = doc.findall(".//c:Ntry", NS)
    assert ntry.findtext("c:Amt", namespaces=NS) == "10.00"
    assert ntry.findtext(".//c:Btch/c:NbOfTxs", namespaces=NS) == "4"
    assert ntry.findtext(".//c:Btch/c:TtlAmt", namespaces=NS) == "10.00"
    tx_amounts = [Decimal(t.findtext("c:AmtDtls/c:TxAmt/c:Amt", namespaces=NS))
                  for t in ntry.findall(".//c:TxDtls", NS)]
    assert tx_amounts == [Decimal("1.00"), Decimal("2.00"), Decimal("3.00"), Decimal("4.00")]


def test_negative_closing_balance_is_a_debit_balance(camt053_schema):
    doc = etree.fromstring(write([booking(1, 5000)], opening=1000))
    camt053_schema.assertValid(doc)
    clbd = [b for b in doc.findall(".//c:Bal", NS) if b.findtext(".//c:Cd", namespaces=NS) == "CLBD"][0]
    assert clbd.findtext("c:Amt", namespaces=NS) == "40.00"
    assert clbd.findtext("c:CdtDbtInd", namespaces=NS) == "DBIT"


def test_writer_refuses_balances_that_do_not_tie():
    with pytest.raises(ValueError, match="opening"):
        write([booking(1, 100)], opening=1000, closing=1000)


def test_crypto_csv_columns_and_amounts():
    out = io.StringIO()
    transfers = [
        crypto_export.ChainTransfer("SBX000000000001", "out", 2_500_000, "R2-1", "0xabc",
                                    "2025-01-06T00:00:01Z"),
        crypto_export.ChainTransfer("RTN000000000001", "in", 2_500_000, "R2-1",
                                    crypto_export.PLATFORM_WALLETS["polygon"],
                                    "2025-01-07T23:00:00Z", "AC04"),
    ]
    assert crypto_export.write_crypto_csv(out, network="polygon", asset="USDC", transfers=transfers) == 2
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert tuple(rows[0]) == crypto_export.COLUMNS
    assert rows[0]["amount"] == "2.500000" and rows[0]["fee"] == "0.010000"
    assert rows[0]["direction"] == "out" and rows[0]["return_reason"] == ""
    assert rows[1]["direction"] == "in" and rows[1]["return_reason"] == "AC04"
    assert rows[1]["fee"] == "0.000000"
    assert rows[0]["tx_hash"].startswith("0x") and len(rows[0]["tx_hash"]) == 66
