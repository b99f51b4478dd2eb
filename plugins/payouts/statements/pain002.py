"""ISO 20022 pain.002 (customer payment status report) -> one row per stated status.

Namespace-agnostic (ISO urn, Swiss SIX `.ch.02`, or none) and read through
safe_xml, so a status report gets the same XXE / DTD / size defences as a
statement. A row is written for every level that states a status: the group
(end_to_end_id and original_payment_info_id null), each payment information
block (end_to_end_id null) and each transaction. A transaction without its own
TxSts inherits the status of its payment information block, then of the group.
"""

from __future__ import annotations

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
_PLACEHOLDER_IDS = {"NOTPROVIDED", "NONREF"}


def parse_pain002(source: safe_xml.Source) -> pl.DataFrame:
    """A pain.002 file (bytes or path) -> PAIN002_SCHEMA frame."""
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
    report = root if _local(root) == "CstmrPmtStsRpt" else _child(root, "CstmrPmtStsRpt")
    if report is None:
        inner = next(iter(root), None)
        found = _local(inner) if inner is not None else _local(root)
        raise StatementError(
            f"not a pain.002 status report (found {found!r}, expected CstmrPmtStsRpt)", name
        )
    rows: list[dict] = []
    group = _child(report, "OrgnlGrpInfAndSts")
    message_id = _text(_child(group, "OrgnlMsgId"))
    group_status = _text(_child(group, "GrpSts"))
    if group_status is not None:
        rows.append(_row(message_id, None, None, group_status, group))
    for payment_info in _children(report, "OrgnlPmtInfAndSts"):
        payment_info_id = _text(_child(payment_info, "OrgnlPmtInfId"))
        payment_status = _text(_child(payment_info, "PmtInfSts"))
        transactions = _children(payment_info, "TxInfAndSts")
        if payment_status is not None or not transactions:
            rows.append(
                _row(message_id, payment_info_id, None, payment_status or group_status, payment_info)
            )
        for tx in transactions:
            e2e = _text(_child(tx, "OrgnlEndToEndId"))
            status = _text(_child(tx, "TxSts")) or payment_status or group_status
            rows.append(
                _row(
                    message_id,
                    payment_info_id,
                    None if e2e in _PLACEHOLDER_IDS else e2e,
                    status,
                    tx,
                )
            )
    if not rows and group is not None:
        rows.append(_row(message_id, None, None, None, group))
    return pl.DataFrame(rows, schema=PAIN002_SCHEMA) if rows else pl.DataFrame(schema=PAIN002_SCHEMA)


def _row(message_id, payment_info_id, e2e, status, el) -> dict:
    codes: list[str] = []
    info: list[str] = []
    for reason in _children(el, "StsRsnInf"):
        rsn = _child(reason, "Rsn")
        code = _text(_child(rsn, "Cd")) or _text(_child(rsn, "Prtry"))
        if code:
            codes.append(code)
        info.extend(t for t in (_text(a) for a in _children(reason, "AddtlInf")) if t)
    return {
        "original_message_id": message_id,
        "original_payment_info_id": payment_info_id,
        "end_to_end_id": e2e,
        "status": status,
        "reason_code": ",".join(codes) or None,
        "additional_info": " ".join(info) or None,
    }


def _local(el) -> str:
    tag = el.tag if isinstance(el.tag, str) else ""
    return tag[tag.rfind("}") + 1 :]


def _children(el, name: str) -> list:
    if el is None:
        return []
    return [ch for ch in el if isinstance(ch.tag, str) and _local(ch) == name]


def _child(el, name: str):
    found = _children(el, name)
    return found[0] if found else None


def _text(el) -> str | None:
    if el is None or el.text is None:
        return None
    return el.text.strip() or None
