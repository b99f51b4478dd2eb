"""The sandbox bank's pain.002 writer (001.001.10 by default, 001.001.03 on request).

Written apart from the project's pain.002 reader, on purpose: a bug on one side
must not be cancelled by the same bug on the other. Output of .10 validates
against the official pain.002.001.10 XSD.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from lxml import etree

VERSIONS = ("001.001.10", "001.001.03")


@dataclass
class Tx:
    end_to_end_id: str
    status: str
    reason: str | None = None


@dataclass
class Block:
    pmt_inf_id: str
    status: str | None
    txs: list[Tx] = field(default_factory=list)
    reason: str | None = None


def write_pain002(*, msg_id: str, original_msg_id: str, original_msg_name: str, group_status: str | None,
                  group_reason: str | None = None, group_info: str | None = None, blocks: list[Block] = (),
                  version: str = "001.001.10", created_at: dt.datetime | None = None) -> bytes:
    if version not in VERSIONS:
        raise ValueError(f"pain.002 version {version!r} is not one of {', '.join(VERSIONS)}")
    ns = f"urn:iso:std:iso:20022:tech:xsd:pain.002.{version.split('.', 1)[1]}"
    q = f"{{{ns}}}"

    def sub(parent, tag, text=None):
        el = etree.SubElement(parent, q + tag)
        if text is not None:
            el.text = text
        return el

    def reason(parent, code, info=None):
        if code is None and info is None:
            return
        rsn = sub(parent, "StsRsnInf")
        if code is not None:
            sub(sub(rsn, "Rsn"), "Cd", code)
        if info:
            sub(rsn, "AddtlInf", info[:105])

    created_at = (created_at or dt.datetime.now(dt.timezone.utc)).replace(microsecond=0)
    root = etree.Element(q + "Document", nsmap={None: ns})
    report = sub(root, "CstmrPmtStsRpt")
    header = sub(report, "GrpHdr")
    sub(header, "MsgId", msg_id)
    sub(header, "CreDtTm", created_at.isoformat())
    group = sub(report, "OrgnlGrpInfAndSts")
    sub(group, "OrgnlMsgId", original_msg_id)
    sub(group, "OrgnlMsgNmId", original_msg_name)
    if group_status is not None:
        sub(group, "GrpSts", group_status)
    reason(group, group_reason, group_info)
    for block in blocks:
        info = sub(report, "OrgnlPmtInfAndSts")
        sub(info, "OrgnlPmtInfId", block.pmt_inf_id)
        if block.status is not None:
            sub(info, "PmtInfSts", block.status)
        reason(info, block.reason)
        for tx in block.txs:
            el = sub(info, "TxInfAndSts")
            sub(el, "OrgnlEndToEndId", tx.end_to_end_id)
            sub(el, "TxSts", tx.status)
            reason(el, tx.reason)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
