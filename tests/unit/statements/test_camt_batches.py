"""Batch bookings, balances, statuses and multi-account files (small built statements)."""

from __future__ import annotations

import datetime as dt
import sys
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from payouts.statements import LINE_SCHEMA, parse_camt

NS08 = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"


def tx(e2e, amount=None, cdi=None, v02=False, creditor="Payee", iban="FR7630006000011234567890189"):
    amt = ""
    if amount is not None:
        amt = (f'<AmtDtls><TxAmt><Amt Ccy="EUR">{amount}</Amt></TxAmt></AmtDtls>' if v02
               else f'<Amt Ccy="EUR">{amount}</Amt>')
    return (
        f"<TxDtls><Refs><EndToEndId>{e2e}</EndToEndId></Refs>{amt}"
        + (f"<CdtDbtInd>{cdi}</CdtDbtInd>" if cdi else "")
        + f"<RltdPties><Cdtr><Pty><Nm>{creditor}</Nm></Pty></Cdtr>"
        f"<CdtrAcct><Id><IBAN>{iban}</IBAN></Id></CdtrAcct></RltdPties></TxDtls>"
    )


def entry(amount, cdi="DBIT", status="<Sts><Cd>BOOK</Cd></Sts>", txs="", ref="R1", ccy="EUR", extra=""):
    return (
        f'<Ntry><Amt Ccy="{ccy}">{amount}</Amt><CdtDbtInd>{cdi}</CdtDbtInd>{status}'
        "<BookgDt><Dt>2026-03-02</Dt></BookgDt><ValDt><Dt>2026-03-03</Dt></ValDt>"
        f"<AcctSvcrRef>{ref}</AcctSvcrRef>{extra}<NtryDtls>{txs}</NtryDtls></Ntry>"
    )


def balance(code, amount, cdi="CRDT", ccy="EUR"):
    return (
        f"<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp>"
        f'<Amt Ccy="{ccy}">{amount}</Amt><CdtDbtInd>{cdi}</CdtDbtInd>'
        "<Dt><Dt>2026-03-02</Dt></Dt></Bal>"
    )


def statement(entries, stmt_id="S1", iban="DE89370400440532013000", balances="", ccy="EUR"):
    return (
        f"<Stmt><Id>{stmt_id}</Id><ElctrncSeqNb>7</ElctrncSeqNb>"
        f"<Acct><Id><IBAN>{iban}</IBAN></Id><Ccy>{ccy}</Ccy></Acct>{balances}{''.join(entries)}</Stmt>"
    )


def document(*statements, ns=NS08):
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><Document xmlns="{ns}"><BkToCstmrStmt>'
        "<GrpHdr><MsgId>M1</MsgId><CreDtTm>2026-03-02T20:00:00Z</CreDtTm></GrpHdr>"
        + "".join(statements)
        + "</BkToCstmrStmt></Document>"
    ).encode()


def test_batch_that_adds_up_is_split_and_keeps_the_entry_total():
    doc = document(statement([
        entry("350.00", txs=tx("E1", "100.00") + tx("E2", "200.00") + tx("E3", "50.00")),
    ], balances=balance("OPBD", "1000.00") + balance("CLBD", "650.00")))
    parsed = parse_camt(doc)
    lines = parsed.lines
    assert lines["amount"].to_list() == ["-100.00", "-200.00", "-50.00"]
    assert lines["amount_minor"].to_list() == [-10000, -20000, -5000]
    assert lines["end_to_end_id"].to_list() == ["E1", "E2", "E3"]
    assert lines["position"].to_list() == [0, 1, 2]
    assert lines["entry_ref"].to_list() == ["R1"] * 3
    assert lines["is_batch"].all()
    assert lines["counterparty_name"].to_list() == ["Payee"] * 3
    assert sum(Decimal(a) for a in lines["amount"]) == Decimal("-350.00")
    assert parsed.statements[0].balanced is True
    assert parsed.warnings == []


def test_batch_with_own_credit_debit_indicators_nets_to_the_entry():
    doc = document(statement([
        entry("100.00", txs=tx("E1", "120.00", "DBIT") + tx("E2", "20.00", "CRDT")),
    ]))
    lines = parse_camt(doc).lines
    assert lines["amount"].to_list() == ["-120.00", "20.00"]
    assert lines["amount_minor"].sum() == -10000


def test_v02_batch_amounts_in_amtdtls():
    ns = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"
    doc = document(statement([
        entry("30.00", cdi="CRDT", status="<Sts>BOOK</Sts>",
              txs=tx("A", "10.00", v02=True) + tx("B", "20.00", v02=True)),
    ]), ns=ns)
    parsed = parse_camt(doc)
    assert parsed.lines["amount"].to_list() == ["10.00", "20.00"]
    assert parsed.lines["message_version"].unique().to_list() == ["001.02"]


def test_batch_that_does_not_add_up_falls_back_to_one_line_and_says_so():
    doc = document(statement([
        entry("350.00", txs=tx("E1", "100.00") + tx("E2", "200.00")),
        entry("40.00", ref="R2", txs=tx("E3") + tx("E4")),  # no TxDtls amounts
    ]))
    parsed = parse_camt(doc)
    lines = parsed.lines
    assert lines["amount"].to_list() == ["-350.00", "-40.00"]
    assert lines["is_batch"].to_list() == [True, True]
    assert lines["end_to_end_id"].to_list() == [None, None]  # ambiguous in a batch
    assert len(parsed.warnings) == 2
    assert "add up to -300.00, not the booked -350.00" in parsed.warnings[0]


def test_charges_are_reported_but_never_change_the_booked_amount():
    charges = (
        '<Chrgs><TtlChrgsAndTaxAmt Ccy="EUR">2.50</TtlChrgsAndTaxAmt>'
        '<Rcrd><Amt Ccy="EUR">2.50</Amt><CdtDbtInd>DBIT</CdtDbtInd></Rcrd></Chrgs>'
    )
    doc = document(statement([entry("102.50", txs=tx("E1", "102.50"), extra=charges)]))
    line = parse_camt(doc).lines.row(0, named=True)
    assert (line["amount"], line["charges"], line["end_to_end_id"]) == ("-102.50", "2.50", "E1")


def test_statuses_pending_never_booked_and_excluded_from_balance():
    doc = document(statement([
        entry("10.00", ref="A"),
        entry("20.00", ref="B", status="<Sts><Cd>PDNG</Cd></Sts>"),
        entry("30.00", ref="C", status="<Sts><Prtry>XYZ</Prtry></Sts>"),
        entry("40.00", ref="D", status="<Sts>INFO</Sts>"),
        entry("50.00", ref="E", status="<Sts><Cd>FUTR</Cd></Sts>"),
    ], balances=balance("PRCD", "100.00") + balance("CLBD", "90.00")))
    parsed = parse_camt(doc)
    assert parsed.lines["status"].to_list() == ["booked", "pending", "pending", "pending", "pending"]
    summary = parsed.statements[0]
    assert (summary.opening_balance, summary.booked_sum, summary.balanced) == ("100.00", "-10.00", True)


def test_several_statements_accounts_and_currencies_in_one_file():
    doc = document(
        statement([entry("5.00", cdi="CRDT")], stmt_id="EUR-1"),
        statement([entry("700", ccy="JPY")], stmt_id="JPY-1", iban="GB33BUKB20201555555555", ccy="JPY"),
        statement([], stmt_id="EMPTY", iban="GB33BUKB20201555555555",
                  balances=balance("OPBD", "1.00") + balance("CLBD", "1.00")),
    )
    parsed = parse_camt(doc)
    assert parsed.lines.select("statement_id", "account", "amount", "amount_minor", "currency").rows() == [
        ("EUR-1", "DE89370400440532013000", "5.00", 500, "EUR"),
        ("JPY-1", "GB33BUKB20201555555555", "-700", -700, "JPY"),
    ]
    assert [(s.statement_id, s.currency, s.entry_count, s.balanced) for s in parsed.statements] == [
        ("EUR-1", "EUR", 1, None), ("JPY-1", "JPY", 1, None), ("EMPTY", "EUR", 0, True),
    ]
    assert parsed.lines["booking_date"].to_list() == [dt.date(2026, 3, 2)] * 2


def test_unknown_currency_and_notprovided_e2e():
    doc = document(statement([entry("1.2345", ccy="XAU", txs=tx("NOTPROVIDED", "1.2345"))]))
    line = parse_camt(doc).lines.row(0, named=True)
    assert (line["amount"], line["amount_minor"], line["currency"]) == ("-1.2345", None, "XAU")
    assert line["end_to_end_id"] is None


def test_generated_statement_streams_and_is_balanced(tmp_path):
    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))
    from parse_camt import write_camt053_v08

    path = tmp_path / "gen.xml"
    total = write_camt053_v08(path, 2_000)
    parsed = parse_camt(path)
    assert parsed.lines.schema == LINE_SCHEMA
    assert parsed.statements[0].entry_count == 2_000
    assert parsed.lines.height == 2_000 + 2 * 40  # every 50th entry is a batch of 3
    assert Decimal(parsed.statements[0].booked_sum) == total
    assert parsed.statements[0].balanced is True
    assert parsed.lines.select(["entry_ref", "position"]).is_unique().all()
    assert parsed.lines["amount_minor"].sum() == int(total * 100)


@pytest.mark.parametrize("bad", ["2026-13-01", "2026-02-29", "not-a-date"])
def test_impossible_booking_dates(bad):
    doc = document(statement([entry("1.00").replace("<Dt>2026-03-02</Dt>", f"<Dt>{bad}</Dt>")]))
    from payouts.statements import StatementError

    with pytest.raises(StatementError, match="impossible booking date") as exc:
        parse_camt(doc)
    assert "statement S1, line 0" in str(exc.value)
