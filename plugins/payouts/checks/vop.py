"""Verification of Payee (VoP): read the bank's pain.002.001.10 answer and decide per payee.

`parse_vop_response` turns a VoP status report (with or without its ISO
namespace, as German banks send both) into one `VopResult` per request;
`vop_decisions` applies a platform's `VopPolicy` and gives each request
'ready' or 'held' with a reason made by `payouts.core.reasons.make()`.

The answer is parsed here more strictly than a statement (any DOCTYPE is
refused, the size is capped) and read by the one pain.002 reader,
`payouts.statements.pain002`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from payouts.core.reasons import make, vop_close_match_detail

if TYPE_CHECKING:
    from payouts.statements.pain002 import TransactionStatus

VopStatus = Literal["match", "close_match", "no_match", "not_possible"]
Decision = Literal["ready", "held"]

# ISO 20022 ExternalPaymentTransactionStatus1Code values of VoP. PDNG (the
# payee's bank has not answered yet) gives no verdict, like RVNA.
STATUS_BY_CODE: dict[str, VopStatus] = {
    "RCVC": "match", "RVMC": "close_match", "RVNM": "no_match", "RVNA": "not_possible",
    "PDNG": "not_possible",
}
# A VoP answer for 1000 payees is about 0.5 MB; anything far bigger is not one.
MAX_VOP_BYTES = 32 * 1024 * 1024
# Any pain.002 version; a document without a namespace is accepted too.
_PAIN002_NAMESPACE_PREFIX = "urn:iso:std:iso:20022:tech:xsd:pain.002."


class VopResponseError(ValueError):
    """The bytes are not a VoP status report we can trust."""


@dataclass(frozen=True, slots=True)
class VopResult:
    """The bank's verdict on one request (OrgnlEndToEndId = our request id)."""

    request_id: str
    status: VopStatus
    held_name: str | None  # the name the bank holds, given on a close match only
    iban: str | None = None  # as echoed in OrgnlTxRef/CdtrAcct
    requested_name: str | None = None  # as echoed in OrgnlTxRef/Cdtr


@dataclass(frozen=True, slots=True)
class VopReport:
    """A whole VoP answer: the group status and counts, and the per-request results."""

    group_status: str | None  # raw GrpSts code, e.g. 'RVMC'
    status_counts: dict[str, int]  # DtldSts -> DtldNbOfTxs of the group
    results: list[VopResult]


@dataclass(frozen=True)
class VopPolicy:
    """What each VoP outcome means for a payout item, per platform.

    Defaults follow the regulation's intent: only a full match pays without a
    person looking. A platform that accepts unverifiable payees (banks outside
    the scheme) sets `not_possible="ready"`.
    """

    match: Decision = "ready"
    close_match: Decision = "held"
    no_match: Decision = "held"
    not_possible: Decision = "held"

    def __post_init__(self) -> None:
        for outcome in ("match", "close_match", "no_match", "not_possible"):
            if getattr(self, outcome) not in ("ready", "held"):
                raise ValueError(f"VopPolicy.{outcome} must be 'ready' or 'held', "
                                 f"got {getattr(self, outcome)!r}")

    @classmethod
    def from_mapping(cls, config: dict[str, str] | None) -> VopPolicy:
        """A policy from platform configuration, e.g. {"not_possible": "ready"}."""
        config = dict(config or {})
        unknown = set(config) - {"match", "close_match", "no_match", "not_possible"}
        if unknown:
            raise ValueError(f"unknown VoP policy keys: {sorted(unknown)}")
        return cls(**config)


def _local(tag: object) -> str | None:
    if not isinstance(tag, str):  # comments, processing instructions
        return None
    return tag.rpartition("}")[2]


def _child(element, *path: str):
    """The first descendant along `path` (local names), or None."""
    for name in path:
        if element is None:
            return None
        for child in element:
            tag = child.tag
            if isinstance(tag, str) and tag.rpartition("}")[2] == name:
                element = child
                break
        else:
            return None
    return element


def _ascii_view(data: bytes) -> bytes:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:]
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data[2:].replace(b"\x00", b"")
    return data


def _parse_document(xml_bytes: bytes):
    """The root element, parsed with entities, DTDs and the network all off.

    A VoP answer never needs a DOCTYPE, so any DOCTYPE is refused outright
    (stricter than statements/safe_xml.py, which tolerates entity-free ones).
    """
    from lxml import etree

    if not isinstance(xml_bytes, (bytes, bytearray)):
        raise TypeError("parse_vop_response takes the response bytes")
    if not xml_bytes.strip():
        raise VopResponseError("empty VoP response")
    if len(xml_bytes) > MAX_VOP_BYTES:
        raise VopResponseError(f"VoP response is {len(xml_bytes)} bytes, above {MAX_VOP_BYTES}")
    if b"<!DOCTYPE" in _ascii_view(bytes(xml_bytes)).upper():
        raise VopResponseError("DOCTYPE is not allowed in a VoP response "
                               "(entities and external subsets are refused)")
    parser = etree.XMLParser(
        resolve_entities=False, load_dtd=False, dtd_validation=False, no_network=True,
        remove_comments=True, remove_pis=True, huge_tree=False, recover=False,
    )
    try:
        root = etree.fromstring(bytes(xml_bytes), parser)
    except etree.XMLSyntaxError as exc:
        raise VopResponseError(f"malformed VoP response: {exc.msg or exc}") from None
    if root.getroottree().docinfo.doctype:
        raise VopResponseError("DOCTYPE is not allowed in a VoP response")
    return root


def read_vop_report(xml_bytes: bytes) -> VopReport:
    """The whole VoP answer: group status, per-status counts and per-request results."""
    root = _parse_document(xml_bytes)
    namespace = root.tag.partition("}")[0][1:] if root.tag.startswith("{") else None
    if _local(root.tag) != "Document" or (
        namespace is not None and not namespace.startswith(_PAIN002_NAMESPACE_PREFIX)
    ):
        raise VopResponseError(f"not a pain.002 document (root {root.tag!r})")
    if _child(root, "CstmrPmtStsRpt") is None:
        raise VopResponseError("no CstmrPmtStsRpt in the pain.002 document")
    # Imported here, like lxml: the policy and decisions need neither.
    from payouts.statements.model import StatementError
    from payouts.statements.pain002 import report_from_root

    try:
        report = report_from_root(root, "VoP response")
    except StatementError as exc:
        raise VopResponseError(exc.message) from None
    results = [_result(tx) for info in report.payment_infos for tx in info.transactions]
    return VopReport(report.group_status, dict(report.status_counts), results)


def _result(tx: TransactionStatus) -> VopResult:
    request_id = tx.end_to_end_id or tx.instruction_id or tx.status_id
    if request_id is None:
        raise VopResponseError("TxInfAndSts without OrgnlEndToEndId")
    code = tx.status
    if code not in STATUS_BY_CODE:
        raise VopResponseError(f"request {request_id}: TxSts {code!r} is not a VoP status")
    status = STATUS_BY_CODE[code]
    held = _held_name(tx) if status == "close_match" else None
    return VopResult(request_id, status, held, tx.creditor_account, tx.creditor_name)


def _held_name(tx: TransactionStatus) -> str | None:
    """The name the bank holds: StsRsnInf/AddtlInf lines joined (Max105Text each).

    Banks sometimes wrap it in quotes, which are dropped.
    """
    # Lines are cut at 105 characters, mid-word or just before a space: join
    # them as they are, without adding or stripping anything between them.
    lines = [line for reason in tx.reasons for line in reason.additional_info]
    name = "".join(line for line in lines if line.strip()).strip()
    name = name.strip('"“”„«» ').strip()
    return name or None


def parse_vop_response(xml_bytes: bytes,
                       request_ids: Iterable[str] | None = None) -> list[VopResult]:
    """One VopResult per TxInfAndSts of a pain.002.001.10 VoP answer.

    Some banks list only the payees that did not match (the group counts say
    how many matched). Given the `request_ids` that were sent, requests the
    answer does not list are added: 'match' when the group's RCVC count (or an
    RCVC group status) accounts for exactly them, otherwise 'not_possible'.
    """
    report = read_vop_report(xml_bytes)
    results = list(report.results)
    if request_ids is None:
        return results
    listed = {r.request_id for r in results}
    missing = [rid for rid in dict.fromkeys(request_ids) if rid not in listed]
    if missing:
        listed_matches = sum(r.status == "match" for r in results)
        if "RCVC" in report.status_counts:
            all_match = report.status_counts["RCVC"] - listed_matches == len(missing)
        else:
            all_match = report.group_status == "RCVC"
        status: VopStatus = "match" if all_match else "not_possible"
        results.extend(VopResult(rid, status, None) for rid in missing)
    return results


def vop_reason(result: VopResult) -> dict | None:
    """The reason a payout item carries for a VoP outcome other than a match (the catalogue's text)."""
    if result.status == "close_match":
        return make("VOP_CLOSE_MATCH", detail=vop_close_match_detail(result.held_name),
                    name=result.requested_name)
    if result.status == "no_match":
        return make("VOP_NO_MATCH", name=result.requested_name)
    if result.status == "not_possible":
        return make("VOP_NOT_POSSIBLE")
    return None


def vop_decisions(
    results: Iterable[VopResult], policy: VopPolicy | None = None,
) -> dict[str, tuple[Decision, dict | None]]:
    """request_id -> ('ready' | 'held', reason or None) under the platform's policy.

    A ready item carries no reason; a held one carries the VoP reason. When a
    request id appears twice the more cautious answer (held) wins.
    """
    policy = policy or VopPolicy()
    decisions: dict[str, tuple[Decision, dict | None]] = {}
    for result in results:
        decision: Decision = getattr(policy, result.status)
        entry = (decision, vop_reason(result) if decision == "held" else None)
        prior = decisions.get(result.request_id)
        if prior is None or (prior[0] == "ready" and decision == "held"):
            decisions[result.request_id] = entry
    return decisions
