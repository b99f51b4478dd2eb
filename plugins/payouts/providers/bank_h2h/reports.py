"""What a pain.002 does to the payments of the file it answers: pure rules, no I/O.

Statuses: group and payment-information level RCVD, ACTC, ACCP, ACSP, ACSC,
ACWC, PDNG, PART, RJCT; transaction level the same less RCVD and PART. A
payment takes the status of the most specific level that names it (its own
TxSts, else its block's, else the group's; PART says nothing of a payment).
Reports apply in order and never move a payment backwards: RJCT and the
accepted statuses (ACSP, ACWC, ACSC) are final for the platform; before them a
status only moves up RCVD < PDNG < ACTC < ACCP. ACSC means our account was
debited: the item is accepted, and settled only by its camt booking. A group
RJCT for a duplicate MsgId (DU01, AM05) says the bank refused a second copy of
a file it already has: it rejects no payment, the first file stands.
"""

from __future__ import annotations

from dataclasses import dataclass

from payouts.statements.pain002 import StatusReport

GROUP_STATUSES = frozenset({"RCVD", "ACTC", "ACCP", "ACSP", "ACSC", "ACWC", "PDNG", "PART", "RJCT"})
TX_STATUSES = GROUP_STATUSES - {"RCVD", "PART"}
ACCEPTED = frozenset({"ACSP", "ACWC", "ACSC"})
RANK = {"RCVD": 0, "PDNG": 1, "ACTC": 2, "ACCP": 3, "ACSP": 4, "ACWC": 5, "ACSC": 6}
DUPLICATE_CODES = frozenset({"DU01", "AM05"})


class ReportError(ValueError):
    """A status report that cannot be applied (the message says why); nothing of it is applied."""


@dataclass(frozen=True)
class Change:
    idempotency_key: str
    end_to_end_id: str
    iso_status: str
    reason_code: str | None


def moves(old: str | None, new: str) -> bool:
    """Does `new` move a payment that stands at `old` (never backwards, never out of a final status)?"""
    if old == "RJCT" or old in ACCEPTED:
        return old in ACCEPTED and new in ACCEPTED and RANK[new] > RANK[old]
    if new == "RJCT" or new in ACCEPTED:
        return True
    return RANK[new] > RANK.get(old or "", -1)


def platform_status(iso_status: str | None) -> str:
    """accepted | rejected | pending, as the connector contract says it."""
    if iso_status == "RJCT":
        return "rejected"
    if iso_status in ACCEPTED:
        return "accepted"
    return "pending"


def is_duplicate_rejection(report: StatusReport) -> bool:
    return report.group_status == "RJCT" and any(r.code in DUPLICATE_CODES for r in report.group_reasons)


def _codes(reasons) -> str | None:
    return next((r.code for r in reasons if r.code), None)


def changes(report: StatusReport, items: dict[str, tuple[str, str, str | None]]) -> list[Change]:
    """The status changes `report` makes to a file's payments.

    `items`: EndToEndId -> (idempotency key, PmtInfId, the status it stands at).
    Raises ReportError when the report names a status outside the lists above,
    a block or a payment the file does not hold.
    """
    if report.group_status is not None and report.group_status not in GROUP_STATUSES:
        raise ReportError(f"group status {report.group_status!r} is not a pain.002 status we know")
    if is_duplicate_rejection(report):
        return []
    blocks = {pmt_inf for _, pmt_inf, _ in items.values()}
    said: dict[str, tuple[str, str | None]] = {}   # e2e -> (status, reason)
    block_said: dict[str, tuple[str, str | None]] = {}
    for info in report.payment_infos:
        if info.status is not None and info.status not in GROUP_STATUSES:
            raise ReportError(f"block {info.payment_info_id}: status {info.status!r} is not a pain.002 status")
        if info.payment_info_id is not None and info.payment_info_id not in blocks:
            raise ReportError(f"block {info.payment_info_id!r} is not a payment information block of the file")
        if info.status not in (None, "PART") and info.payment_info_id is not None:
            block_said[info.payment_info_id] = (info.status, _codes(info.reasons))
        for tx in info.transactions:
            e2e = tx.end_to_end_id
            if e2e not in items:
                raise ReportError(f"EndToEndId {e2e!r} is not a payment of the file")
            status, reasons = tx.status, tx.reasons
            if status is None:
                status, reasons = (info.status, info.reasons) if info.status not in (None, "PART") \
                    else (report.group_status, report.group_reasons)
            if status is None or status == "PART":
                continue
            if status not in TX_STATUSES:
                raise ReportError(f"EndToEndId {e2e}: transaction status {status!r} is not a pain.002 status")
            said[e2e] = (status, _codes(reasons))
    group = None
    if report.group_status not in (None, "PART"):
        group = (report.group_status, _codes(report.group_reasons))
    out: list[Change] = []
    for e2e, (key, pmt_inf, old) in items.items():
        status = said.get(e2e) or block_said.get(pmt_inf) or group
        if status is None:
            continue
        iso, reason = status
        if iso == "RCVD" and e2e in said:
            raise ReportError(f"EndToEndId {e2e}: RCVD is not a transaction status")
        if moves(old, iso):
            out.append(Change(key, e2e, iso, reason if iso == "RJCT" else None))
    return out
