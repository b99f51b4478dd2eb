"""The sandbox bank's camt.054.001.08 debit notifications: what it booked, as it books it.

The entries are those of its camt.053 (payouts_sandbox.camt053.entry_xml: the same
AcctSvcrRef), so a booking both report is one booking. Validates against the
official camt.054.001.08 XSD.
"""

from __future__ import annotations

from collections.abc import Iterable

from payouts_sandbox.camt053 import Entry, entry_xml, text

NAMESPACE = "urn:iso:std:iso:20022:tech:xsd:camt.054.001.08"


def write_camt054(out, *, msg_id: str, created_at: str, notification_id: str, sequence_number: int,
                  account_iban: str, account_owner: str, rail: str, currency: str, business_date: str,
                  entries: Iterable[Entry]) -> int:
    out.write(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<Document xmlns="{NAMESPACE}"><BkToCstmrDbtCdtNtfctn>\n'
        f"<GrpHdr><MsgId>{text(msg_id, 35)}</MsgId><CreDtTm>{created_at}</CreDtTm></GrpHdr>\n"
        f"<Ntfctn><Id>{text(notification_id, 35)}</Id><ElctrncSeqNb>{sequence_number}</ElctrncSeqNb>"
        f"<CreDtTm>{created_at}</CreDtTm>"
        f"<Acct><Id><IBAN>{account_iban}</IBAN></Id><Ccy>{currency}</Ccy>"
        f"<Ownr><Nm>{text(account_owner)}</Nm></Ownr></Acct>\n"
    )
    count = 0
    for entry in entries:
        out.write(entry_xml(entry, rail, currency, business_date))
        count += 1
    out.write("</Ntfctn>\n</BkToCstmrDbtCdtNtfctn></Document>\n")
    return count
