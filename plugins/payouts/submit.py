"""Submit one batch of approved items to its rail, exactly once.

The order of writes is what makes repeats harmless:
1. write-ahead: each item gets its attempt row (idempotency key derived from
   item and rail) and moves approved -> submitted, committed before any request;
2. send: bulk requests under those keys, bounded concurrency;
3. record: answers, item statuses and ledger postings, in one transaction.
A retried or re-run task finds its items 'submitted' and sends the same keys
again; the provider answers with what it already did and executes nothing new.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

import psycopg

from payouts import items, ledger, settings
from payouts.providers.base import (
    AmbiguousOutcome, Creditor, Payment, PaymentProvider, PaymentResult, ProviderUnavailable,
)
from payouts.warehouse import copy_in, copy_out

# ISO 20022 reason codes that mean "this destination is wrong": never retried,
# never fallen back, and the destination is blocked until the payee changes it.
ACCOUNT_LEVEL_CODES = frozenset({"AC01", "AC03", "AC04", "AC06", "AC13", "BE01", "MD07"})


def idempotency_key(item_id: str, rail: str) -> str:
    """Stable across processes and versions: the same item on the same rail, the same key."""
    return f"{item_id}:{rail}"


@dataclass
class BatchOutcome:
    sent: int = 0
    accepted: int = 0
    rejected: int = 0
    unresolved: int = 0

    def to_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


_BATCH_ITEMS = """
    SELECT i.item_id, i.currency, i.amount_minor, i.status,
           r.name, r.country, r.iban, r.bic, r.account_number, r.routing_code, r.wallet_address, r.network
    FROM payouts.payout_items i JOIN payouts.recipients r USING (recipient_id)
    WHERE i.run_id = %(run_id)s AND i.rail = %(rail)s AND i.batch_no = %(batch_no)s
      AND i.status IN ('approved', 'submitted')
    ORDER BY i.item_id
"""


def submit_batch(conn: psycopg.Connection, provider: PaymentProvider, batch: dict) -> BatchOutcome:
    import polars as pl

    if not conn.autocommit:
        # Otherwise the write-ahead below would be a savepoint, not a commit.
        raise ValueError("submit_batch needs an autocommit connection")
    run_id, rail, batch_no = batch["run_id"], batch["rail"], batch["batch_no"]
    params = {"run_id": run_id, "rail": rail, "batch_no": batch_no}
    frame = copy_out(conn, _BATCH_ITEMS, params, schema={"amount_minor": pl.Int64})
    outcome = BatchOutcome()
    if frame.height == 0:
        return outcome

    # 1. write-ahead, committed before the first request leaves.
    with conn.transaction():
        conn.execute(
            "INSERT INTO payouts.attempts (item_id, rail, idempotency_key, status)"
            " SELECT item_id, rail, item_id || ':' || rail, 'sending' FROM payouts.payout_items"
            " WHERE run_id = %(run_id)s AND rail = %(rail)s AND batch_no = %(batch_no)s"
            " AND status = 'approved' ON CONFLICT (item_id, rail) DO UPDATE SET sends = attempts.sends + 1",
            params,
        )
        conn.execute(
            "UPDATE payouts.attempts a SET sends = a.sends + 1 FROM payouts.payout_items i"
            " WHERE a.item_id = i.item_id AND a.rail = i.rail AND i.run_id = %(run_id)s"
            " AND i.rail = %(rail)s AND i.batch_no = %(batch_no)s AND i.status = 'submitted'",
            params,
        )
        items.move_items(
            conn,
            "SELECT item_id FROM payouts.payout_items WHERE run_id = %(run_id)s AND rail = %(rail)s"
            " AND batch_no = %(batch_no)s AND status = 'approved'",
            "submitted", params, detail=f"sent on {rail}",
        )

    payments = [
        Payment(
            idempotency_key=idempotency_key(row["item_id"], rail),
            end_to_end_id=row["item_id"],
            amount_minor=row["amount_minor"],
            currency=row["currency"],
            creditor=Creditor(
                name=row["name"], country=row["country"], iban=row["iban"], bic=row["bic"],
                account_number=row["account_number"], routing_code=row["routing_code"],
                wallet_address=row["wallet_address"], network=row["network"],
            ),
        )
        for row in frame.iter_rows(named=True)
    ]
    outcome.sent = len(payments)

    # 2. send.
    results, unresolved_keys = asyncio.run(_send_all(provider, rail, payments))

    # 3. record.
    record_results(conn, rail, results)
    outcome.accepted = sum(1 for r in results if r.status == "accepted")
    outcome.rejected = sum(1 for r in results if r.status == "rejected")
    outcome.unresolved = len(unresolved_keys)
    if unresolved_keys:
        # The task fails and Airflow retries it: the same keys are sent again.
        raise AmbiguousOutcome(unresolved_keys, f"{len(unresolved_keys)} payments without a final answer")
    return outcome


async def _send_all(provider: PaymentProvider, rail: str, payments: list[Payment]) -> tuple[list[PaymentResult], list[str]]:
    import httpx

    semaphore = asyncio.Semaphore(settings.SUBMIT_CONCURRENCY)
    chunks = [payments[i : i + settings.REQUEST_SIZE] for i in range(0, len(payments), settings.REQUEST_SIZE)]
    results: list[PaymentResult] = []
    unresolved: list[str] = []
    limits = httpx.Limits(max_connections=settings.SUBMIT_CONCURRENCY)
    async with httpx.AsyncClient(limits=limits) as client:

        async def one(chunk: list[Payment]) -> None:
            async with semaphore:
                try:
                    results.extend(await provider.submit_batch(client, rail, chunk))
                except (AmbiguousOutcome, ProviderUnavailable) as exc:
                    unresolved.extend(exc.idempotency_keys)

        await asyncio.gather(*(one(chunk) for chunk in chunks))
    return results, unresolved


def record_results(conn: psycopg.Connection, rail: str, results: list[PaymentResult]) -> None:
    """Store the provider's answers and move items, post the ledger, block bad destinations."""
    import polars as pl

    if not results:
        return
    answers = pl.DataFrame(
        {
            "idempotency_key": [r.idempotency_key for r in results],
            "item_id": [r.end_to_end_id for r in results],
            "status": [r.status for r in results],
            "reason_code": [r.reason_code for r in results],
            "provider_ref": [r.provider_ref for r in results],
        },
        schema={k: pl.Utf8 for k in ("idempotency_key", "item_id", "status", "reason_code", "provider_ref")},
    )
    conflicts = answers.filter(pl.col("status") == "conflict")
    if conflicts.height:
        # Our key and body disagree with what the provider holds: a bug, never paid twice.
        raise RuntimeError(f"idempotency conflict on {conflicts.height} payments, e.g. {conflicts['idempotency_key'][0]}")
    with conn.transaction():
        conn.execute(
            "CREATE TEMP TABLE _answers (idempotency_key text, item_id text, status text,"
            " reason_code text, provider_ref text) ON COMMIT DROP"
        )
        copy_in(conn, "_answers", answers)
        conn.execute(
            "UPDATE payouts.attempts a SET status = t.status, reason_code = t.reason_code,"
            " provider_ref = t.provider_ref, answered_at = COALESCE(a.answered_at, now())"
            " FROM _answers t WHERE a.idempotency_key = t.idempotency_key"
        )
        items.move_items(conn, "SELECT item_id FROM _answers WHERE status = 'accepted'", "accepted",
                         detail=f"accepted on {rail}")
        ledger.post_transfers(conn, "send", "SELECT item_id FROM _answers WHERE status = 'accepted'")
        for code, in conn.execute("SELECT DISTINCT reason_code FROM _answers WHERE status = 'rejected'").fetchall():
            iso = code or "MS03"
            account_level = iso in ACCOUNT_LEVEL_CODES
            items.move_items(
                conn, "SELECT item_id FROM _answers WHERE status = 'rejected'"
                " AND reason_code IS NOT DISTINCT FROM %(code)s", "rejected", {"code": code},
                detail=f"rejected on {rail}: {iso}",
                reasons=[items.reason(
                    "ACCOUNT_REJECTED" if account_level else "PROVIDER_REJECTED",
                    f"The provider rejected the payment on {rail} with {iso}"
                    + ("; the destination is blocked until the payee changes it." if account_level else "."),
                    iso,
                )],
            )
            if account_level:
                conn.execute(
                    "UPDATE payouts.recipients r SET destination_blocked_reason = %(why)s"
                    " FROM payouts.payout_items i, _answers t"
                    " WHERE t.status = 'rejected' AND t.reason_code IS NOT DISTINCT FROM %(code)s"
                    " AND i.item_id = t.item_id AND r.recipient_id = i.recipient_id",
                    {"code": code, "why": json.dumps({"iso_code": iso, "rail": rail})},
                )
        ledger.post_transfers(conn, "release", "SELECT item_id FROM _answers WHERE status = 'rejected'")


def resolve_unanswered(conn: psycopg.Connection, provider: PaymentProvider, run_id: str) -> dict[str, int]:
    """Ask the provider about every item still 'submitted' after the submit tasks gave up.

    An answer is recorded as if it had come back in time; a key the provider
    never received parks the item as awaiting_status with the reason: it is
    never sent again under a new key.
    """
    rows = conn.execute(
        "SELECT a.idempotency_key, a.rail FROM payouts.payout_items i JOIN payouts.attempts a"
        " ON a.item_id = i.item_id AND a.rail = i.rail WHERE i.run_id = %s AND i.status = 'submitted'",
        (run_id,),
    ).fetchall()
    if not rows:
        return {"resolved": 0, "awaiting_status": 0}

    async def ask() -> list[tuple[str, str, PaymentResult | None]]:
        import httpx

        async with httpx.AsyncClient() as client:
            answers = []
            for key, rail in rows:
                answers.append((key, rail, await provider.payment_status(client, key)))
            return answers

    answered = asyncio.run(ask())
    by_rail: dict[str, list[PaymentResult]] = {}
    missing: list[str] = []
    for key, rail, result in answered:
        if result is None:
            missing.append(key.split(":")[0])
        else:
            by_rail.setdefault(rail, []).append(result)
    for rail, results in by_rail.items():
        record_results(conn, rail, results)
    if missing:
        with conn.transaction():
            items.move_items(
                conn, "SELECT unnest(%(ids)s::text[])", "awaiting_status", {"ids": missing}, detail="no answer from the provider",
                reasons=[items.reason(
                    "NO_PROVIDER_ANSWER",
                    "The provider has no record of the payment; operations must confirm before it is sent again.",
                )],
            )
    return {"resolved": sum(len(v) for v in by_rail.values()), "awaiting_status": len(missing)}
