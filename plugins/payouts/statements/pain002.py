"""ISO 20022 pain.002 (customer payment status report): the one reader of status reports.

`read_pain002` reads a file or bytes through safe_xml (the XXE / DTD / size
defences of a statement) into a `StatusReport`: the group, each payment
information block and each transaction, with the status and reasons each
states. Namespace-agnostic (ISO urn, Swiss SIX `.ch.02`, or none).
`report_from_root` reads an element tree parsed elsewhere (the Verification of
Payee check parses its answers more strictly and reads them with it).

Two views of a report: `parse_pain002`, one row per level that states a status
(the group, each payment information block, each transaction), and
`transaction_rows`, one row per transaction, what `payouts statement parse`
prints. A transaction without its own TxSts takes the status of its payment
information block, then of the group.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
from lxml import etree

from payouts.statements import safe_xml
from payouts.statements.model import StatementError

PAIN002_SCHEMA = pl.Schema(
    {
        "original_message_id": pl.Utf8,
        "original_payment_info_id": pl.Utf8,
        "end_to_end_id": pl.Utf8,
        "status": pl.Utf8,
        "reason_code": pl.Utf8,
        "additional_info": pl.Utf8,
    }
)
# What `payouts statement parse` prints for each transaction of a status report.
TRANSACTION_KEYS = (
    "original_msg_id",
    "original_pmt_inf_id",
    "group_status",
    "pmt_inf_status",
    "end_to_end_id",
    "tx_status",
    "reason_code",
)
PLACEHOLDER_IDS = frozenset({"NOTPROVIDED", "NONREF"})


@dataclass(frozen=True, slots=True)
class StatusReason:
    code: str | None  # Rsn/Cd, else Rsn/Prtry
    additional_info: tuple[str, ...]  # each AddtlInf as written (not stripped: lines are cut mid-word)


@dataclass(frozen=True, slots=True)
class TransactionStatus:
    end_to_end_id: str | None  # OrgnlEndToEndId as written (NOTPROVIDED kept)
    instruction_id: str | None  # OrgnlInstrId
    status_id: str | None  # StsId
    status: str | None  # its own TxSts, None when it states none
    reasons: tuple[StatusReason, ...]
    creditor_account: str | None  # OrgnlTxRef/CdtrAcct: IBAN, else Othr/Id
    creditor_name: str | None  # OrgnlTxRef/Cdtr: Pty/Nm (.10), else Nm (.03)


@dataclass(frozen=True, slots=True)
class PaymentInfoStatus:
    payment_info_id: str | None
    status: str | None  # its own PmtInfSts
    reasons: tuple[StatusReason, ...]
    transactions: tuple[TransactionStatus, ...]


@dataclass(frozen=True, slots=True)
class StatusReport:
    original_message_id: str | None
    group_status: str | None
    group_reasons: tuple[StatusReason, ...]
    status_counts: dict[str, int]  # the group's NbOfTxsPerSts: DtldSts -> DtldNbOfTxs
    payment_infos: tuple[PaymentInfoStatus, ...]


def read_pain002(source: safe_xml.Source) -> StatusReport:
    """A pain.002 file (bytes or path) -> StatusReport; StatementError when it is not one."""
    name = safe_xml.source_name(source)
    stream, _size = safe_xml.open_source(source)
    try:
        safe_xml.read_prolog(stream, name)
        events = safe_xml.iterparse(stream, ("end",), None)
        try:
            for _event, _el in events:
                pass
        except etree.XMLSyntaxError as exc:
            raise safe_xml.syntax_error(exc, name) from None
        root = events.root
    finally:
        stream.close()
    if root is None:
        raise StatementError("not XML: no root element", name, "line 1")
    return report_from_root(root, name)


def report_from_root(root, name: str = "<document>") -> StatusReport:
    """The status report in a parsed Document (or CstmrPmtStsRpt) element."""
    report = root if _local(root) == "CstmrPmtStsRpt" else _child(root, "CstmrPmtStsRpt")
    if report is None:
        inner = next((ch for ch in root if isinstance(ch.tag, str)), None)
        found = _local(inner) if inner is not None else _local(root)
        raise StatementError(
            f"not a pain.002 status report (found {found!r}, expected CstmrPmtStsRpt)", name
        )
    group = _child(report, "OrgnlGrpInfAndSts")
    counts: dict[str, int] = {}
    for per_status in _children(group, "NbOfTxsPerSts"):
        code = _text(_child(per_status, "DtldSts"))
        number = _text(_child(per_status, "DtldNbOfTxs"))
        if code and number and number.isdigit():
            counts[code] = counts.get(code, 0) + int(number)
    return StatusReport(
        original_message_id=_text(_child(group, "OrgnlMsgId")),
        group_status=_text(_child(group, "GrpSts")),
        group_reasons=_reasons(group),
        status_counts=counts,
        payment_infos=tuple(
            PaymentInfoStatus(
                payment_info_id=_text(_child(payment_info, "OrgnlPmtInfId")),
                status=_text(_child(payment_info, "PmtInfSts")),
                reasons=_reasons(payment_info),
                transactions=tuple(
                    _transaction(tx) for tx in _children(payment_info, "TxInfAndSts")
                ),
            )
            for payment_info in _children(report, "OrgnlPmtInfAndSts")
        ),
    )


def parse_pain002(source: safe_xml.Source) -> pl.DataFrame:
    """A pain.002 file (bytes or path) -> PAIN002_SCHEMA frame, a row per level stating a status.

    The group (end_to_end_id and original_payment_info_id null), each payment
    information block (end_to_end_id null) and each transaction.
    """
    report = read_pain002(source)
    message_id, group_status = report.original_message_id, report.group_status
    rows: list[dict] = []
    if group_status is not None:
        rows.append(_row(message_id, None, None, group_status, report.group_reasons))
    for info in report.payment_infos:
        if info.status is not None or not info.transactions:
            rows.append(_row(message_id, info.payment_info_id, None, info.status or group_status,
                             info.reasons))
        for tx in info.transactions:
            rows.append(_row(message_id, info.payment_info_id, _real_id(tx.end_to_end_id),
                             tx.status or info.status or group_status, tx.reasons))
    if not rows and (report.original_message_id is not None or report.group_reasons):
        rows.append(_row(message_id, None, None, None, report.group_reasons))
    return pl.DataFrame(rows, schema=PAIN002_SCHEMA) if rows else pl.DataFrame(schema=PAIN002_SCHEMA)


def transaction_rows(report: StatusReport) -> list[dict]:
    """One dict (TRANSACTION_KEYS) per transaction the report names.

    tx_status is the transaction's status: its own TxSts, else its payment
    information block's, else the group's; reason_code comes from the level
    that gave it. A payment information block without transactions gives one
    row with end_to_end_id and tx_status null, and a report without payment
    information blocks one row for the group, so that no stated status is left
    out (a group rejected as a whole names no transaction).
    """
    rows: list[dict] = []

    def row(info: PaymentInfoStatus | None, tx: TransactionStatus | None) -> dict:
        levels = [(report.group_status, report.group_reasons)]
        if info is not None:
            levels.append((info.status, info.reasons))
        if tx is not None:
            levels.append((tx.status, tx.reasons))
        status, reasons = next(((s, r) for s, r in reversed(levels) if s is not None), (None, ()))
        if tx is None:
            # Nothing is said of a transaction; the reasons are those of the level itself.
            status, reasons = None, levels[-1][1]
        return {
            "original_msg_id": report.original_message_id,
            "original_pmt_inf_id": info.payment_info_id if info is not None else None,
            "group_status": report.group_status,
            "pmt_inf_status": info.status if info is not None else None,
            "end_to_end_id": _real_id(tx.end_to_end_id) if tx is not None else None,
            "tx_status": status,
            "reason_code": _codes(reasons),
        }

    for info in report.payment_infos:
        if not info.transactions:
            rows.append(row(info, None))
        rows.extend(row(info, tx) for tx in info.transactions)
    if not report.payment_infos:
        rows.append(row(None, None))
    return rows


def _transaction(tx) -> TransactionStatus:
    reference = _child(tx, "OrgnlTxRef")
    account_id = _child(_child(reference, "CdtrAcct"), "Id")
    creditor = _child(reference, "Cdtr")
    return TransactionStatus(
        end_to_end_id=_text(_child(tx, "OrgnlEndToEndId")),
        instruction_id=_text(_child(tx, "OrgnlInstrId")),
        status_id=_text(_child(tx, "StsId")),
        status=_text(_child(tx, "TxSts")),
        reasons=_reasons(tx),
        creditor_account=_text(_child(account_id, "IBAN"))
        or _text(_child(_child(account_id, "Othr"), "Id")),
        creditor_name=_text(_child(_child(creditor, "Pty"), "Nm")) or _text(_child(creditor, "Nm")),
    )


def _reasons(el) -> tuple[StatusReason, ...]:
    out = []
    for reason in _children(el, "StsRsnInf"):
        rsn = _child(reason, "Rsn")
        out.append(
            StatusReason(
                code=_text(_child(rsn, "Cd")) or _text(_child(rsn, "Prtry")),
                additional_info=tuple(a.text or "" for a in _children(reason, "AddtlInf")),
            )
        )
    return tuple(out)


def _row(message_id, payment_info_id, e2e, status, reasons: tuple[StatusReason, ...]) -> dict:
    info = [text.strip() for r in reasons for text in r.additional_info if text.strip()]
    return {
        "original_message_id": message_id,
        "original_payment_info_id": payment_info_id,
        "end_to_end_id": e2e,
        "status": status,
        "reason_code": _codes(reasons),
        "additional_info": " ".join(info) or None,
    }


def _codes(reasons: tuple[StatusReason, ...]) -> str | None:
    return ",".join(r.code for r in reasons if r.code) or None


def _real_id(value: str | None) -> str | None:
    """An id, unless it is a placeholder that says there is none."""
    return None if value in PLACEHOLDER_IDS else value


def _local(el) -> str:
    tag = el.tag if isinstance(el.tag, str) else ""
    return tag[tag.rfind("}") + 1 :]


def _children(el, name: str) -> list:
    if el is None:
        return []
    return [ch for ch in el if isinstance(ch.tag, str) and _local(ch) == name]


def _child(el, name: str):
    if el is None:
        return None
    for ch in el:
        if isinstance(ch.tag, str) and _local(ch) == name:
            return ch
    return None


def _text(el) -> str | None:
    if el is None or el.text is None:
        return None
    return el.text.strip() or None
