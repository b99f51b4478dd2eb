"""Who must release a run for payment, and the record of who did.

A run is auto-approved (audited: decided_by 'auto', the policy, what was seen)
when its total in EUR and its count of new payees stay under the thresholds;
otherwise a person approves it through Airflow's Human-in-the-loop
ApprovalOperator. Four eyes: the person who created a run never approves it.

Configuration (environment, read at call time):

- PAYOUTS_APPROVAL_TOTAL_EUR: a run whose ready items total this much or more
  (at payouts.core.money.INDICATIVE_PER_EUR rates) needs a person. Unset: no limit.
- PAYOUTS_APPROVAL_NEW_PAYEES: as many new payees (never paid before) or more
  needs a person. Unset: no limit.
- PAYOUTS_APPROVERS: comma list of user ids allowed to approve (the HITL
  assigned users). Empty: anyone Airflow allows to answer, except the creator.
- PAYOUTS_APPROVAL_TIMEOUT_H: hours a person has to answer (default 24). A
  timeout takes the default answer, Reject: a timeout never releases money.

Unattended runs (`make run`, tests) leave the thresholds unset or high, so
the audited auto-approval is their normal path.

The Airflow side (the branch, the HITL operator, the tasks around it) is
payouts.orchestration.hitl.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from payouts.core import destinations, items, money
from payouts.warehouse.queries import sql

if TYPE_CHECKING:
    import psycopg

class FourEyesError(PermissionError):
    """The same person may not ask for and approve one thing."""


@dataclass(frozen=True)
class ApprovalConfig:
    total_eur: Decimal | None
    new_payees: int | None
    approvers: tuple[str, ...]
    timeout: timedelta

    @classmethod
    def from_env(cls) -> "ApprovalConfig":
        total = os.environ.get("PAYOUTS_APPROVAL_TOTAL_EUR", "").strip()
        payees = os.environ.get("PAYOUTS_APPROVAL_NEW_PAYEES", "").strip()
        approvers = tuple(a.strip() for a in os.environ.get("PAYOUTS_APPROVERS", "").split(",") if a.strip())
        hours = float(os.environ.get("PAYOUTS_APPROVAL_TIMEOUT_H", "24"))
        return cls(Decimal(total) if total else None, int(payees) if payees else None, approvers,
                   timedelta(hours=hours))

    def describe(self) -> str:
        total = f"{self.total_eur} EUR" if self.total_eur is not None else "no limit"
        payees = str(self.new_payees) if self.new_payees is not None else "no limit"
        return f"total < {total}, new payees < {payees}"


# -- what the run holds ------------------------------------------------------

def run_total_eur(conn: "psycopg.Connection", run_id: str) -> Decimal:
    """The ready items' total in EUR at indicative rates (for limits, never for payment)."""
    rows = conn.execute(
        "SELECT currency, sum(amount_minor) FROM payouts.payout_items"
        " WHERE run_id = %s AND status IN ('ready', 'approved') GROUP BY 1", (run_id,)).fetchall()
    total = Decimal(0)
    for currency, minor in rows:
        rate = Decimal(money.INDICATIVE_PER_EUR.get(currency, "0") or "0")
        if rate > 0:
            total += money.to_decimal(int(minor), currency) / rate
    return total.quantize(Decimal("0.01"))


def new_payees(conn: "psycopg.Connection", run_id: str) -> int:
    """Recipients of ready items never paid before (no item accepted, settled or returned in another run)."""
    return int(conn.execute(
        sql("payout_run/new_payees"), {"run_id": run_id}).fetchone()[0])


def needs_approval(conn: "psycopg.Connection", run_id: str,
                   config: ApprovalConfig | None = None) -> tuple[bool, str]:
    """(a person must approve?, why): compares the run with the configured thresholds."""
    config = config or ApprovalConfig.from_env()
    total = run_total_eur(conn, run_id)
    payees = new_payees(conn, run_id)
    over = []
    if config.total_eur is not None and total >= config.total_eur:
        over.append(f"total {total} EUR >= {config.total_eur} EUR")
    if config.new_payees is not None and payees >= config.new_payees:
        over.append(f"{payees} new payees >= {config.new_payees}")
    if over:
        return True, "; ".join(over)
    return False, f"total {total} EUR and {payees} new payees under the thresholds ({config.describe()})"


def approval_body(conn: "psycopg.Connection", run_id: str, why: str = "") -> str:
    """The Markdown an approver reads: totals per rail and currency, held items, the largest payouts."""
    view = approval_view(conn, run_id)
    lines = [f"**Run {run_id}** needs approval: {why}" if why else f"**Run {run_id}**", "",
             f"Total (indicative): **{run_total_eur(conn, run_id)} EUR**, new payees: {new_payees(conn, run_id)}",
             "", "| rail | currency | items | amount |", "|---|---|---:|---:|"]
    for t in view["totals"]:
        lines.append(f"| {t['rail']} | {t['currency']} | {t['count']} | "
                     f"{money.format_amount(t['amount_minor'], t['currency'])} |")
    lines += ["", f"Held items (need a person, not released by this approval): **{view['held']}**", "",
              "Largest payouts:", ""]
    for item in view["largest"]:
        lines.append(f"- {item['item_id']}: {money.format_amount(item['amount_minor'], item['currency'])} "
                     f"{item['currency']}")
    return "\n".join(lines)


def creator(conn: "psycopg.Connection", run_id: str) -> str | None:
    """Who created the run: the console user, or the user who triggered its DAG run."""
    row = conn.execute(
        "SELECT coalesce(created_by, conf ->> 'created_by') FROM payouts.runs WHERE run_id = %s",
        (run_id,)).fetchone()
    return row[0] if row else None


def set_creator(conn: "psycopg.Connection", run_id: str, user: str | None) -> None:
    if user:
        conn.execute("UPDATE payouts.runs SET created_by = coalesce(created_by, %s) WHERE run_id = %s",
                     (user, run_id))


def approvers_for(config: ApprovalConfig, run_creator: str | None) -> list[str]:
    """The assigned approvers of a run: the configured ones, without the run's creator."""
    return [a for a in config.approvers if a != run_creator]


# -- decisions ---------------------------------------------------------------

def auto_approve(conn: "psycopg.Connection", run_id: str, why: str) -> int:
    """Release the run's ready items under the policy, audited as decided_by 'auto'."""
    return approve(conn, run_id, decided_by="auto", policy=f"auto: {why}")


def record_human_approval(conn: "psycopg.Connection", run_id: str, responder: str | None,
                          responded_at: str | None, body: str | None = None) -> int:
    """Record a person's approval (who, when, what they saw) and move ready -> approved.

    Refuses the run's creator (four eyes) and an answer without a responder.
    """
    if not responder:
        raise FourEyesError(f"run {run_id}: an approval without a responder releases nothing")
    made_by = creator(conn, run_id)
    if made_by and made_by == responder:
        raise FourEyesError(f"run {run_id}: {responder} created the run and cannot approve it")
    with conn.transaction():
        seen = approval_view(conn, run_id)
        seen.update({"responded_at": responded_at, "body": body, "created_by": made_by,
                     "total_eur": str(run_total_eur(conn, run_id))})
        conn.execute(
            "INSERT INTO payouts.approvals (run_id, decision, decided_by, policy, seen)"
            " VALUES (%s, 'approved', %s, 'human', %s) ON CONFLICT (run_id) DO NOTHING",
            (run_id, responder, json.dumps(seen, default=str)))
        return approve(conn, run_id, decided_by=responder, policy="human")


def record_rejection(conn: "psycopg.Connection", run_id: str, responder: str | None,
                     responded_at: str | None, body: str | None = None) -> None:
    """Record a rejection (or a timeout, which takes the default answer Reject). Nothing is released."""
    seen = approval_view(conn, run_id)
    seen.update({"responded_at": responded_at, "body": body, "timed_out": responder is None})
    conn.execute(
        "INSERT INTO payouts.approvals (run_id, decision, decided_by, policy, seen)"
        " VALUES (%s, 'rejected', %s, %s, %s) ON CONFLICT (run_id) DO NOTHING",
        (run_id, responder or "timeout", "human" if responder else "timeout: default Reject",
         json.dumps(seen, default=str)))


# -- stops and four eyes -----------------------------------------------------

FOUR_EYES_KINDS = ("sanctions_clear", "break_write_off", "payee_details_change")
# What a payee-details change may set: one destination, nothing else.
DESTINATION_FIELDS = ("iban", "bic", "account_number", "routing_code", "wallet_address", "network")


def request_action(conn: "psycopg.Connection", kind: str, subject: dict, note: str, requested_by: str) -> int:
    """Ask for an action a second person must approve. Returns the request id."""
    if kind not in FOUR_EYES_KINDS:
        raise ValueError(f"unknown four-eyes action {kind!r}")
    if kind == "sanctions_clear" and not {"recipient_id", "list_entry_id"} <= set(subject):
        raise ValueError("sanctions_clear needs recipient_id and list_entry_id")
    if kind == "break_write_off" and "break_id" not in subject:
        raise ValueError("break_write_off needs break_id")
    if kind == "payee_details_change":
        fields = set(subject) - {"recipient_id"}
        if "recipient_id" not in subject or not fields or not fields <= set(DESTINATION_FIELDS):
            raise ValueError(f"payee_details_change needs recipient_id and some of {', '.join(DESTINATION_FIELDS)}")
    if not note.strip():
        raise ValueError("a note saying why is required")
    return int(conn.execute(
        "INSERT INTO payouts.four_eyes_requests (kind, subject, note, requested_by) VALUES (%s, %s, %s, %s)"
        " RETURNING request_id", (kind, json.dumps(subject), note, requested_by)).fetchone()[0])


def decide_action(conn: "psycopg.Connection", request_id: int, decided_by: str, approve: bool) -> dict[str, Any]:
    """Approve (and apply) or refuse a four-eyes request; the requester can do neither."""
    with conn.transaction():
        row = conn.execute(
            "SELECT kind, subject, note, requested_by, status FROM payouts.four_eyes_requests"
            " WHERE request_id = %s FOR UPDATE", (request_id,)).fetchone()
        if row is None:
            raise LookupError(f"no four-eyes request {request_id}")
        kind, subject, note, requested_by, status = row
        if status != "open":
            raise ValueError(f"request {request_id} is already {status}")
        if decided_by == requested_by:
            raise FourEyesError(f"{decided_by} asked for request {request_id} and cannot decide it")
        conn.execute(
            "UPDATE payouts.four_eyes_requests SET status = %s, decided_by = %s, decided_at = now()"
            " WHERE request_id = %s", ("approved" if approve else "refused", decided_by, request_id))
        if approve and kind == "sanctions_clear":
            conn.execute(
                "INSERT INTO payouts.sanctions_allowlist (recipient_id, list_entry_id, cleared_by, note)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (subject["recipient_id"], subject["list_entry_id"], f"{requested_by}+{decided_by}", note))
        elif approve and kind == "payee_details_change":
            _change_destination(conn, subject)
        elif approve and kind == "break_write_off":
            from payouts.reconcile.breaks import resolve_break

            resolve_break(conn, subject["break_id"], f"{requested_by}+{decided_by}", f"write-off: {note}",
                          resolution=f"written off: {note}")
    return {"request_id": request_id, "kind": kind, "status": "approved" if approve else "refused",
            "requested_by": requested_by, "decided_by": decided_by}


def _change_destination(conn: "psycopg.Connection", subject: dict) -> None:
    """Apply an approved change of bank details: the new destination, unblocked, cooling off from now."""
    fields = [f for f in DESTINATION_FIELDS if f in subject]
    kind = "wallet" if "wallet_address" in fields else "iban" if "iban" in fields else "local"
    cleared = {f: None for f in DESTINATION_FIELDS}
    cleared.update({f: subject[f] for f in fields})
    updated = conn.execute(
        "UPDATE payouts.recipients SET dest_kind = %(kind)s, iban = %(iban)s, bic = %(bic)s,"
        " account_number = %(account_number)s, routing_code = %(routing_code)s,"
        " wallet_address = %(wallet_address)s, network = %(network)s, destination_changed_at = now()"
        " WHERE recipient_id = %(recipient_id)s",
        {**cleared, "kind": kind, "recipient_id": subject["recipient_id"]},
    ).rowcount
    if updated != 1:
        raise LookupError(f"no recipient {subject['recipient_id']!r}")
    destinations.unblock(conn, "SELECT %(recipient_id)s", {"recipient_id": subject["recipient_id"]})


# -- the approval view and the release ------------------------------------------

def approval_view(conn: psycopg.Connection, run_id: str) -> dict:
    """What an approver sees: totals per rail and currency, held items, the largest payouts."""
    totals = conn.execute(
        "SELECT coalesce(rail, 'unrouted'), currency, count(*), sum(amount_minor)"
        " FROM payouts.payout_items WHERE run_id = %s AND status IN ('ready', 'approved')"
        " GROUP BY 1, 2 ORDER BY 1, 2",
        (run_id,),
    ).fetchall()
    held = conn.execute(
        "SELECT count(*) FROM payouts.payout_items WHERE run_id = %s AND status = 'held'", (run_id,)
    ).fetchone()[0]
    largest = conn.execute(
        "SELECT item_id, currency, amount_minor FROM payouts.payout_items"
        " WHERE run_id = %s AND status = 'ready' ORDER BY amount_minor DESC LIMIT 5",
        (run_id,),
    ).fetchall()
    return {
        "totals": [{"rail": r, "currency": c, "count": n, "amount_minor": int(a)} for r, c, n, a in totals],
        "held": int(held),
        "largest": [{"item_id": i, "currency": c, "amount_minor": int(a)} for i, c, a in largest],
    }


def approve(conn: psycopg.Connection, run_id: str, decided_by: str, policy: str) -> int:
    """Release the run's ready items for payment, recording who did it and what they saw."""
    with conn.transaction():
        seen = approval_view(conn, run_id)
        conn.execute(
            "INSERT INTO payouts.approvals (run_id, decision, decided_by, policy, seen)"
            " VALUES (%s, 'approved', %s, %s, %s) ON CONFLICT (run_id) DO NOTHING",
            (run_id, decided_by, policy, json.dumps(seen)),
        )
        return items.move_items(
            conn,
            "SELECT item_id FROM payouts.payout_items WHERE run_id = %(run_id)s AND status = 'ready'",
            "approved", {"run_id": run_id}, detail=f"approved by {decided_by} ({policy})",
        )
