"""The sandbox's Verification of Payee: the simulated payee banks and their pain.002.001.10 answer.

Each IBAN's bank holds a canonical name derived from the requested one unless a
fault (`vop_close`, `vop_nomatch`, `vop_unavailable`, decided per seed and IBAN)
says otherwise. The answer is written here, with the sandbox's own string
writer, never with the project's parsers: RVMC carries the held name in
TxInfAndSts/StsRsnInf/AddtlInf, as German banks do.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from dataclasses import dataclass

from payouts_sandbox.faults import Faults

NAMESPACE = "urn:iso:std:iso:20022:tech:xsd:pain.002.001.10"
IBAN_RE = re.compile(r"[A-Z]{2}[0-9]{2}[a-zA-Z0-9]{1,30}")
# Countries whose banks must answer VoP (EU/EEA, Instant Payments Regulation);
# other SEPA countries (GB, CH, MC, SM, ...) answer "not possible".
VOP_COUNTRIES = frozenset(
    "AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IS IT LI LT LU LV MT NL NO PL PT RO SE SI SK"
    .split()
)
STATUS_CODES = ("RCVC", "RVMC", "RVNM", "RVNA")
_OUTCOME_CODES = {"match": "RCVC", "close": "RVMC", "nomatch": "RVNM", "unavailable": "RVNA"}
_ADDTL_INF_MAX = 105  # Max105Text
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@dataclass(frozen=True, slots=True)
class VopAnswer:
    """The simulated bank's answer for one request."""

    request_id: str
    iban: str
    requested_name: str
    status: str  # RCVC | RVMC | RVNM | RVNA
    held_name: str | None  # disclosed only on RVMC


def canonical_name(name: str) -> str:
    """What the bank holds when the name matches: the requested name, whitespace tidied."""
    return " ".join(name.split())


def close_variant(name: str) -> str:
    """A plausibly different held name: a dropped middle name, an initial, a legal suffix."""
    tokens = canonical_name(name).split(" ")
    if len(tokens) >= 3:
        return " ".join([tokens[0], *tokens[2:]])  # "Anna Maria Schmidt" -> "Anna Schmidt"
    if len(tokens) == 2:
        first, last = tokens
        if len(first.rstrip(".")) == 1 and first[0].isalpha():
            # Already an initial: the bank has another one ("M. Weber" -> "N. Weber").
            other = chr((ord(first[0].upper()) - ord("A") + 1) % 26 + ord("A"))
            return f"{other}. {last}"
        return f"{first[0].upper()}. {last}"  # "Max Mustermann" -> "M. Mustermann"
    return f"{tokens[0]} Ltd"


def answer(request_id: str, iban: str, name: str, faults: Faults) -> VopAnswer:
    """The deterministic answer of the payee's bank for one (IBAN, name)."""
    compact = iban.replace(" ", "").upper()
    if not IBAN_RE.fullmatch(compact) or compact[:2] not in VOP_COUNTRIES:
        return VopAnswer(request_id, iban, name, "RVNA", None)
    status = _OUTCOME_CODES[faults.vop_outcome(compact)]
    held = close_variant(name) if status == "RVMC" else None
    return VopAnswer(request_id, iban, name, status, held)


def _esc(value: str) -> str:
    value = _INVALID_XML.sub("", value)
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _counts_xml(counts: Counter[str]) -> str:
    return "".join(
        f"<NbOfTxsPerSts><DtldNbOfTxs>{counts[code]}</DtldNbOfTxs>"
        f"<DtldSts>{code}</DtldSts></NbOfTxsPerSts>"
        for code in STATUS_CODES
    )


def _account_xml(iban: str) -> str:
    compact = iban.replace(" ", "")
    if IBAN_RE.fullmatch(compact):
        return f"<CdtrAcct><Id><IBAN>{compact}</IBAN></Id></CdtrAcct>"
    return f"<CdtrAcct><Id><Othr><Id>{_esc(compact[:34])}</Id></Othr></Id></CdtrAcct>"


def _tx_xml(a: VopAnswer) -> str:
    reason = ""
    if a.held_name:
        # Max105Text: a long held name continues in further AddtlInf lines.
        chunks = [a.held_name[i:i + _ADDTL_INF_MAX]
                  for i in range(0, len(a.held_name), _ADDTL_INF_MAX)]
        reason = "<StsRsnInf>" + "".join(
            f"<AddtlInf>{_esc(c)}</AddtlInf>" for c in chunks) + "</StsRsnInf>"
    return (
        f"<TxInfAndSts><OrgnlEndToEndId>{_esc(a.request_id)}</OrgnlEndToEndId>"
        f"<TxSts>{a.status}</TxSts>{reason}"
        f"<OrgnlTxRef><Cdtr><Pty><Nm>{_esc(a.requested_name[:140])}</Nm></Pty></Cdtr>"
        f"{_account_xml(a.iban)}</OrgnlTxRef></TxInfAndSts>\n"
    )


def write_vop_report(
    answers: list[VopAnswer], msg_id: str, original_msg_id: str,
    created: dt.datetime | None = None,
) -> bytes:
    """A pain.002.001.10 VoP status report with one TxInfAndSts per answer.

    Like the German banks' replies, the group status is RCVC only when every
    name matched and RVMC otherwise; the per-status counts list all four codes.
    """
    created = created or dt.datetime.now(dt.UTC)
    counts = Counter(a.status for a in answers)
    group = "RCVC" if counts["RCVC"] == len(answers) else "RVMC"
    n = len(answers)
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n',
        f'<Document xmlns="{NAMESPACE}">\n<CstmrPmtStsRpt>\n',
        f"<GrpHdr><MsgId>{_esc(msg_id[:35])}</MsgId>"
        f"<CreDtTm>{created.strftime('%Y-%m-%dT%H:%M:%S')}Z</CreDtTm></GrpHdr>\n",
        f"<OrgnlGrpInfAndSts><OrgnlMsgId>{_esc(original_msg_id[:35])}</OrgnlMsgId>"
        f"<OrgnlMsgNmId>pain.001</OrgnlMsgNmId><OrgnlNbOfTxs>{n}</OrgnlNbOfTxs>"
        f"<GrpSts>{group}</GrpSts>{_counts_xml(counts)}</OrgnlGrpInfAndSts>\n",
        f"<OrgnlPmtInfAndSts><OrgnlPmtInfId>{_esc(original_msg_id[:35])}</OrgnlPmtInfId>"
        f"<OrgnlNbOfTxs>{n}</OrgnlNbOfTxs><PmtInfSts>{group}</PmtInfSts>"
        f"{_counts_xml(counts)}\n",
        *(_tx_xml(a) for a in answers),
        "</OrgnlPmtInfAndSts>\n</CstmrPmtStsRpt>\n</Document>\n",
    ]
    return "".join(parts).encode("utf-8")
