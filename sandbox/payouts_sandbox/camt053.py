"""The sandbox's own camt.053.001.08 writer (end-of-day bank statements).

Written independently of the project's statement parsers, on purpose: a bug on
one side must not be cancelled by the same bug on the other. The writer
streams strings with XML escaping, so a million entries never exist as element
objects at once. Output validates against camt.053.001.08.xsd.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from payouts.core.money import format_amount

NAMESPACE = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"
IBAN_RE = re.compile(r"[A-Z]{2}[0-9]{2}[a-zA-Z0-9]{1,30}")
# Characters XML 1.0 cannot carry at all; dropped rather than escaped.
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_FLUSH_EVERY = 2000

# Bank transaction codes (domain/family/sub-family) per rail.
BANK_TX_CODES: dict[str, tuple[str, str, str]] = {
    "sepa_instant": ("PMNT", "ICDT", "ESCT"),
    "sepa_credit": ("PMNT", "ICDT", "ESCT"),
    "swift": ("PMNT", "ICDT", "XBCT"),
    "faster_payments": ("PMNT", "ICDT", "DMCT"),
    "ach": ("PMNT", "ICDT", "DMCT"),
}
RETURN_TX_CODE = ("PMNT", "ICDT", "RRTN")


@dataclass(frozen=True, slots=True)
class Booking:
    """One executed payment (a debit), or the original of a returned one."""

    ref: str  # the provider's reference, unique: AcctSvcrRef
    end_to_end_id: str
    amount_minor: int
    creditor_name: str
    creditor_account: str | None


@dataclass(frozen=True, slots=True)
class BatchBooking:
    """A batch booking: one debit entry for a submitted request, one TxDtls per payment."""

    ref: str
    batch_id: str
    bookings: list[Booking]


@dataclass(frozen=True, slots=True)
class ReturnBooking:
    """A returned payment: a credit entry carrying the original EndToEndId and the reason."""

    ref: str
    original: Booking
    reason_code: str


Entry = Booking | BatchBooking | ReturnBooking


def text(value: str, max_len: int = 140) -> str:
    """Escape a free-text value and cut it to the schema's length."""
    value = _INVALID_XML.sub("", value).strip()[:max_len] or "NOTPROVIDED"
    if "&" in value or "<" in value or ">" in value or '"' in value:
        value = (value.replace("&", "&amp;").replace("<", "&lt;")
                 .replace(">", "&gt;").replace('"', "&quot;"))
    return value


def _account_xml(account: str | None) -> str:
    if not account:
        return ""
    account = account.replace(" ", "")
    if IBAN_RE.fullmatch(account):
        return f"<CdtrAcct><Id><IBAN>{account}</IBAN></Id></CdtrAcct>"
    return f"<CdtrAcct><Id><Othr><Id>{text(account, 34)}</Id></Othr></Id></CdtrAcct>"


def _balance_xml(code: str, minor: int, currency: str, day: str) -> str:
    indicator = "CRDT" if minor >= 0 else "DBIT"
    return (
        f"<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp>"
        f'<Amt Ccy="{currency}">{format_amount(abs(minor), currency)}</Amt>'
        f"<CdtDbtInd>{indicator}</CdtDbtInd><Dt><Dt>{day}</Dt></Dt></Bal>\n"
    )


def _tx_codes(codes: tuple[str, str, str]) -> str:
    return (f"<BkTxCd><Domn><Cd>{codes[0]}</Cd><Fmly><Cd>{codes[1]}</Cd>"
            f"<SubFmlyCd>{codes[2]}</SubFmlyCd></Fmly></Domn></BkTxCd>")


def _tx_details(b: Booking, currency: str, indicator: str, amount: str,
                with_ref: bool, return_reason: str | None = None) -> str:
    refs = f"<AcctSvcrRef>{b.ref}</AcctSvcrRef>" if with_ref else ""
    rtr = f"<RtrInf><Rsn><Cd>{return_reason}</Cd></Rsn></RtrInf>" if return_reason else ""
    return (
        f"<TxDtls><Refs>{refs}<EndToEndId>{text(b.end_to_end_id, 35)}</EndToEndId></Refs>"
        f'<Amt Ccy="{currency}">{amount}</Amt><CdtDbtInd>{indicator}</CdtDbtInd>'
        f'<AmtDtls><TxAmt><Amt Ccy="{currency}">{amount}</Amt></TxAmt></AmtDtls>'
        f"<RltdPties><Cdtr><Pty><Nm>{text(b.creditor_name)}</Nm></Pty></Cdtr>"
        f"{_account_xml(b.creditor_account)}</RltdPties>{rtr}</TxDtls>"
    )


def entry_xml(entry: Entry, rail: str, currency: str, day: str) -> str:
    """One <Ntry> element as a string."""
    head = "<Ntry>"
    dates = (f"<Sts><Cd>BOOK</Cd></Sts><BookgDt><Dt>{day}</Dt></BookgDt>"
             f"<ValDt><Dt>{day}</Dt></ValDt>")
    if isinstance(entry, Booking):
        amount = format_amount(entry.amount_minor, currency)
        return (
            f'{head}<Amt Ccy="{currency}">{amount}</Amt><CdtDbtInd>DBIT</CdtDbtInd>{dates}'
            f"<AcctSvcrRef>{entry.ref}</AcctSvcrRef>{_tx_codes(BANK_TX_CODES[rail])}"
            f"<NtryDtls>{_tx_details(entry, currency, 'DBIT', amount, False)}</NtryDtls></Ntry>\n"
        )
    if isinstance(entry, BatchBooking):
        total = format_amount(sum(b.amount_minor for b in entry.bookings), currency)
        details = "".join(
            _tx_details(b, currency, "DBIT", format_amount(b.amount_minor, currency), True)
            for b in entry.bookings
        )
        return (
            f'{head}<Amt Ccy="{currency}">{total}</Amt><CdtDbtInd>DBIT</CdtDbtInd>{dates}'
            f"<AcctSvcrRef>{entry.ref}</AcctSvcrRef>{_tx_codes(BANK_TX_CODES[rail])}"
            f"<NtryDtls><Btch><MsgId>{text(entry.batch_id, 35)}</MsgId>"
            f"<NbOfTxs>{len(entry.bookings)}</NbOfTxs>"
            f'<TtlAmt Ccy="{currency}">{total}</TtlAmt><CdtDbtInd>DBIT</CdtDbtInd></Btch>'
            f"{details}</NtryDtls></Ntry>\n"
        )
    amount = format_amount(entry.original.amount_minor, currency)
    return (
        f'{head}<Amt Ccy="{currency}">{amount}</Amt><CdtDbtInd>CRDT</CdtDbtInd>{dates}'
        f"<AcctSvcrRef>{entry.ref}</AcctSvcrRef>{_tx_codes(RETURN_TX_CODE)}"
        f"<NtryDtls>{_tx_details(entry.original, currency, 'CRDT', amount, True, entry.reason_code)}"
        f"</NtryDtls></Ntry>\n"
    )


def write_camt053(
    out,
    *,
    msg_id: str,
    created_at: str,
    statement_id: str,
    sequence_number: int,
    account_iban: str,
    account_owner: str,
    rail: str,
    currency: str,
    business_date: str,
    opening_minor: int,
    closing_minor: int,
    entries: Iterable[Entry],
) -> int:
    """Stream one statement to `out` (anything with write(str)); returns the entry count.

    The caller computes the balances first (they precede the entries in the
    schema); the writer checks that opening + entries == closing at the end.
    """
    out.write(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<Document xmlns="{NAMESPACE}"><BkToCstmrStmt>\n'
        f"<GrpHdr><MsgId>{text(msg_id, 35)}</MsgId><CreDtTm>{created_at}</CreDtTm>"
        "<MsgPgntn><PgNb>1</PgNb><LastPgInd>true</LastPgInd></MsgPgntn></GrpHdr>\n"
        f"<Stmt><Id>{text(statement_id, 35)}</Id><ElctrncSeqNb>{sequence_number}</ElctrncSeqNb>"
        f"<CreDtTm>{created_at}</CreDtTm>"
        f"<Acct><Id><IBAN>{account_iban}</IBAN></Id><Ccy>{currency}</Ccy>"
        f"<Ownr><Nm>{text(account_owner)}</Nm></Ownr></Acct>\n"
    )
    out.write(_balance_xml("OPBD", opening_minor, currency, business_date))
    out.write(_balance_xml("CLBD", closing_minor, currency, business_date))
    running = opening_minor
    count = 0
    buffer: list[str] = []
    for entry in entries:
        buffer.append(entry_xml(entry, rail, currency, business_date))
        if isinstance(entry, Booking):
            running -= entry.amount_minor
        elif isinstance(entry, BatchBooking):
            running -= sum(b.amount_minor for b in entry.bookings)
        else:
            running += entry.original.amount_minor
        count += 1
        if len(buffer) >= _FLUSH_EVERY:
            out.write("".join(buffer))
            buffer.clear()
    out.write("".join(buffer))
    out.write("</Stmt>\n</BkToCstmrStmt></Document>\n")
    if running != closing_minor:
        raise ValueError(
            f"statement {statement_id}: opening {opening_minor} + entries != closing "
            f"{closing_minor} (got {running})"
        )
    return count
