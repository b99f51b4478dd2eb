"""Submit one batch of approved items to its rail, exactly once.

The order of writes is what makes repeats harmless:
1. write-ahead: each item gets its attempt row (idempotency key derived from
   item and rail) and moves approved -> submitted, committed before any request;
2. send: bulk requests under those keys, bounded concurrency, a chunk at a time;
3. record: each chunk's answers, item statuses and ledger postings, in one
   transaction per chunk, while the next chunk is being sent.
A retried or re-run task finds its items 'submitted' and sends the same keys
again, to the same provider; the provider answers with what it already did and
executes nothing new. An answer is final (accepted, rejected), a conflict (the
task stops), or pending: the item stays 'submitted', owned by `poll_pending`
(the poll_payments DAG) until the provider gives a final answer.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

import psycopg

from payouts.core import destinations, items, ledger, reasons
from payouts import settings
from payouts.providers.contract import (
    AmbiguousOutcome, Connector, Creditor, Payment, PaymentResult, ProviderError, ProviderUnavailable,
)
from payouts.warehouse import copy_in, copy_out
from payouts.payout_run.stops import active_stop, set_stop
from payouts.warehouse.queries import sql


class ProviderConflict(ProviderError):
    """The provider holds another payment under one of our keys: never paid twice, never fallen back."""


class ProviderChanged(RuntimeError):
    """Items of a batch were sent to another provider than the one the batch names now."""


def idempotency_key(item_id: str, rail: str) -> str:
    """Stable across processes and versions: the same item on the same rail, the same key."""
    return f"{item_id}:{rail}"


@dataclass
class BatchOutcome:
    sent: int = 0
    accepted: int = 0
    rejected: int = 0
    unresolved: int = 0
    cancelled: int = 0
    paused: int = 0
    pending: int = 0

    def to_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


# A batch's items (payout_items as i): one range of item ids (migration 0018), read through the primary key.
_IN_BATCH = ("i.item_id BETWEEN %(first_item)s AND %(last_item)s AND i.run_id = %(run_id)s AND i.rail = %(rail)s"
             " AND i.batch_no = %(batch_no)s")

_BATCH_ITEMS = f"""
    SELECT i.item_id, COALESCE(i.paid_currency, i.currency) AS currency,
           COALESCE(i.paid_amount_minor, i.amount_minor) AS amount_minor, i.status,
           r.name, r.country, r.iban, r.bic, r.account_number, r.routing_code, r.wallet_address, r.network
    FROM payouts.payout_items i JOIN payouts.recipients r USING (recipient_id)
    WHERE {_IN_BATCH} AND i.status IN ('approved', 'fallback', 'submitted')
    ORDER BY i.item_id
"""

_QUEUED = f"SELECT i.item_id FROM payouts.payout_items i WHERE {_IN_BATCH} AND i.status IN ('approved', 'fallback')"


def _apply_stop(conn: psycopg.Connection, params: dict, kind: str, why: str) -> int:
    """Cancel (kill switch: money back to payable) or hold (funding) the batch's queued items."""
    with conn.transaction():
        if kind == "kill":
            moved = items.move_items(conn, _QUEUED, "cancelled", params, detail="kill switch",
                                     reasons=[reasons.make("STOPPED", why=f"Stopped: {why}")])
            ledger.post_transfers(
                conn, "release",
                f"SELECT i.item_id FROM payouts.payout_items i WHERE {_IN_BATCH} AND i.status = 'cancelled'", params)
        else:
            moved = items.move_items(conn, _QUEUED, "held", params, detail="rail paused",
                                     reasons=[reasons.make("RAIL_PAUSED_FUNDING", iso="AM04", rail=params["rail"], why=why)])
    return moved



def batch_params(conn: psycopg.Connection, batch: dict) -> dict:
    """The query parameters of a planned batch: its run, rail, number and range of item ids.

    The range comes with the plan's descriptor, or else from payouts.batches.
    """
    params = {"run_id": batch["run_id"], "rail": batch["rail"], "batch_no": batch["batch_no"],
              "first_item": batch.get("first_item"), "last_item": batch.get("last_item")}
    if params["first_item"] is None or params["last_item"] is None:
        row = conn.execute(
            "SELECT first_item, last_item FROM payouts.batches WHERE run_id = %(run_id)s AND rail = %(rail)s"
            " AND batch_no = %(batch_no)s", params).fetchone()
        if row is None:
            raise LookupError(f"run {batch['run_id']} has no {batch['rail']} batch {batch['batch_no']}")
        params["first_item"], params["last_item"] = row
    return params


def submit_batch(conn: psycopg.Connection, provider: Connector, batch: dict) -> BatchOutcome:
    """Send a batch's queued items and record the answers; the batch's row follows (record_batch)."""
    if not conn.autocommit:
        # Otherwise the write-ahead below would be a savepoint, not a commit.
        raise ValueError("submit_batch needs an autocommit connection")
    params = batch_params(conn, batch)
    try:
        outcome = _submit(conn, provider, params)
    except BaseException:
        # Whatever was sent and answered before the failure still counts; the retry (or
        # resolve, and the run's finish) moves the batch on from there.
        try:
            record_batch(conn, params)
        except Exception:  # the warehouse itself may be what failed: the task's error stands
            pass
        raise
    record_batch(conn, params, outcome)
    return outcome


def _submit(conn: psycopg.Connection, provider: Connector, params: dict) -> BatchOutcome:
    import polars as pl

    run_id, rail = params["run_id"], params["rail"]
    outcome = BatchOutcome()
    stop = active_stop(conn, run_id, rail)
    if stop:
        kind, why = stop
        moved = _apply_stop(conn, params, kind, why)
        if kind == "kill":
            outcome.cancelled = moved
        else:
            outcome.paused = moved
        return outcome
    frame = copy_out(conn, _BATCH_ITEMS, params, schema={"amount_minor": pl.Int64})
    if frame.height == 0:
        return outcome
    if not _funded(conn, provider, frame, params):
        outcome.paused = frame.filter(pl.col("status") != "submitted").height
        return outcome

    # A key goes to one provider only: items sent before to another connection (the rail's
    # provider changed since) are resolved by asking that provider, never sent here too.
    elsewhere = conn.execute(
        "SELECT a.provider, count(*) FROM payouts.payout_items i JOIN payouts.attempts a"
        f" ON a.item_id = i.item_id AND a.rail = i.rail WHERE {_IN_BATCH} AND a.provider <> %(provider)s"
        " GROUP BY 1", {**params, "provider": provider.conn_id}).fetchall()
    if elsewhere:
        raise ProviderChanged(
            f"run {run_id} {rail} batch {params['batch_no']}: {sum(n for _, n in elsewhere)} items were sent to"
            f" {', '.join(p for p, _ in elsewhere)}, not {provider.conn_id}; resolve them by status there first")

    # 1. write-ahead, committed before the first request leaves; the attempt names the
    # batch that sends it, which counts its answers (record_batch).
    with conn.transaction():
        conn.execute(
            "INSERT INTO payouts.attempts (item_id, rail, idempotency_key, status, provider, batch_no)"
            " SELECT i.item_id, i.rail, i.item_id || ':' || i.rail, 'sending', %(provider)s, i.batch_no"
            f" FROM payouts.payout_items i WHERE {_IN_BATCH} AND i.status IN ('approved', 'fallback')"
            " ON CONFLICT (item_id, rail) DO UPDATE SET sends = attempts.sends + 1",
            {**params, "provider": provider.conn_id},
        )
        conn.execute(
            "UPDATE payouts.batches SET status = 'sent', detail = NULL, updated_at = now()"
            " WHERE run_id = %(run_id)s AND rail = %(rail)s AND batch_no = %(batch_no)s",
            params,
        )
        conn.execute(
            "UPDATE payouts.attempts a SET sends = a.sends + 1 FROM payouts.payout_items i"
            f" WHERE a.item_id = i.item_id AND a.rail = i.rail AND {_IN_BATCH} AND i.status = 'submitted'",
            params,
        )
        items.move_items(conn, _QUEUED, "submitted", params, detail=f"sent on {rail}")

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

    # 2. send and 3. record, a chunk at a time: the answers of one chunk are recorded
    # while the next chunk is on the wire (the provider and the warehouse work at once).
    results, unresolved_keys = asyncio.run(_send_and_record(conn, provider, rail, payments))
    outcome.accepted = sum(1 for r in results if r.status == "accepted")
    outcome.rejected = sum(1 for r in results if r.status == "rejected")
    outcome.pending = sum(1 for r in results if r.status == "pending")
    outcome.unresolved = len(unresolved_keys)
    if unresolved_keys:
        # The task fails and Airflow retries it: the same keys are sent again.
        raise AmbiguousOutcome(unresolved_keys, f"{len(unresolved_keys)} payments without a final answer")
    return outcome


async def _send_and_record(conn: psycopg.Connection, provider: Connector, rail: str,
                           payments: list[Payment]) -> tuple[list[PaymentResult], list[str]]:
    """Send chunk k+1 while chunk k's answers are recorded (in a thread, on `conn`).

    Only the recording thread uses the connection; each chunk is recorded in its
    own transaction, in order, and every recording has finished when this returns,
    also when a send or a recording fails.
    """
    # A connector may fix its own sizes (a bank: one file per request, `max_per_file` payments).
    size = max(1, provider.submit_chunk or settings.SUBMIT_CHUNK)
    chunks = [payments[i : i + size] for i in range(0, len(payments), size)]
    results: list[PaymentResult] = []
    unresolved: list[str] = []
    recording: asyncio.Future | None = None
    try:
        async with provider.session():
            for chunk in chunks:
                if recording is not None and recording.done() and recording.exception() is not None:
                    break  # the last chunk could not be recorded: send nothing more
                answered, missing = await _send_all(provider, rail, chunk)
                if recording is not None:
                    await recording
                recording = asyncio.ensure_future(asyncio.to_thread(record_results, conn, rail, answered))
                results.extend(answered)
                unresolved.extend(missing)
    finally:
        if recording is not None:
            await asyncio.gather(recording, return_exceptions=True)
    if recording is not None:
        recording.result()  # a failed recording fails the task
    return results, unresolved


async def _send_all(provider: Connector, rail: str, payments: list[Payment]) -> tuple[list[PaymentResult], list[str]]:
    """Requests of REQUEST_SIZE payments, SUBMIT_CONCURRENCY in flight, through the connector's own client."""
    semaphore = asyncio.Semaphore(settings.SUBMIT_CONCURRENCY)
    size = max(1, provider.request_size or settings.REQUEST_SIZE)
    chunks = [payments[i : i + size] for i in range(0, len(payments), size)]
    results: list[PaymentResult] = []
    unresolved: list[str] = []

    async def one(chunk: list[Payment]) -> None:
        async with semaphore:
            try:
                results.extend(await provider.submit(rail, chunk))
            except (AmbiguousOutcome, ProviderUnavailable) as exc:
                unresolved.extend(exc.idempotency_keys)

    await asyncio.gather(*(one(chunk) for chunk in chunks))
    return results, unresolved


# A batch's payments by the provider's answer: the attempts it sent, read through the
# primary key (the batch `o`'s range of item ids on its rail), wherever the item is now.
# Unanswered: no final answer, whether the provider answered pending (poll_payments asks
# on) or nothing came back (the task's retry, then resolve, asks).
_BATCH_COUNTS = """
    SELECT count(*) AS sent,
           count(*) FILTER (WHERE a.status = 'accepted') AS accepted,
           count(*) FILTER (WHERE a.status = 'rejected') AS rejected,
           count(*) FILTER (WHERE a.status IN ('sending', 'unknown', 'pending')) AS unanswered,
           count(*) FILTER (WHERE a.status = 'pending') AS pending
    FROM payouts.attempts a
    WHERE a.item_id BETWEEN o.first_item AND o.last_item AND a.rail = o.rail AND a.batch_no = o.batch_no
"""


def record_batch(conn: psycopg.Connection, params: dict, outcome: BatchOutcome | None = None) -> None:
    """Bring one batch's row up to date at the end of its submit task: one UPDATE.

    sent while a payment it sent lacks a final answer (the task's retry or resolve
    asks, or poll_payments for a pending one), done when none does; a batch a stop
    kept from sending anything is failed, with the reason in `detail`.
    """
    stopped = None
    if outcome is not None and (outcome.cancelled or outcome.paused):
        stopped = (f"nothing sent: {outcome.cancelled} cancelled by the kill switch" if outcome.cancelled
                   else f"nothing sent: {outcome.paused} held, the rail is paused for funding")
    conn.execute(
        f"""
        UPDATE payouts.batches b
        SET accepted = c.accepted, rejected = c.rejected, unanswered = c.unanswered, updated_at = now(),
            status = CASE WHEN c.sent = 0 THEN (CASE WHEN %(stopped)s::text IS NULL THEN b.status ELSE 'failed' END)
                          WHEN c.unanswered = 0 THEN 'done' ELSE 'sent' END,
            detail = CASE WHEN c.sent = 0 THEN coalesce(%(stopped)s, b.detail)
                          WHEN c.unanswered = 0 THEN NULL
                          WHEN c.pending > 0 THEN c.pending || ' payments pending at the provider'
                          ELSE c.unanswered || ' payments without a final answer yet' END
        FROM payouts.batches o, LATERAL ({_BATCH_COUNTS}) c
        WHERE o.run_id = %(run_id)s AND o.rail = %(rail)s AND o.batch_no = %(batch_no)s
          AND b.run_id = o.run_id AND b.rail = o.rail AND b.batch_no = o.batch_no
        """,
        {**params, "stopped": stopped},
    )


def close_batches(conn: psycopg.Connection, run_id: str | None = None) -> None:
    """Count again every batch not done (of one run, or, with None, every batch still sent of
    a finished run):
    done when none of its payments lacks a final answer, sent while some are pending at the
    provider (poll_payments owns them), else failed with why.

    The end of a run calls it for the run, poll_payments for what it settled. A done
    batch has no payment left to answer, so a run whose submits all succeeded reads
    no attempt here.
    """
    conn.execute(
        f"""
        UPDATE payouts.batches b
        SET accepted = c.accepted, rejected = c.rejected, unanswered = c.unanswered, updated_at = now(),
            status = CASE WHEN c.sent > 0 AND c.unanswered = 0 THEN 'done'
                          WHEN c.pending > 0 THEN 'sent' ELSE 'failed' END,
            detail = CASE WHEN c.sent > 0 AND c.unanswered = 0 THEN NULL
                          WHEN c.pending > 0 THEN c.pending || ' payments pending at the provider: poll_payments asks'
                          WHEN c.unanswered > 0 THEN c.unanswered || ' payments without a final answer:'
                               ' parked as awaiting_status, never sent again under a new key'
                          ELSE coalesce(b.detail, 'nothing sent: its submit task did not send it') END
        FROM payouts.batches o, LATERAL ({_BATCH_COUNTS}) c
        WHERE (o.run_id = %(run_id)s
               OR (%(run_id)s::text IS NULL AND o.status = 'sent'
                   AND EXISTS (SELECT 1 FROM payouts.runs r WHERE r.run_id = o.run_id AND r.status = 'completed')))
          AND o.status <> 'done' AND b.run_id = o.run_id AND b.rail = o.rail AND b.batch_no = o.batch_no
        """,
        {"run_id": run_id},
    )


def _funded(conn: psycopg.Connection, provider: Connector, frame, params: dict) -> bool:
    """Does our prefunded balance cover what this batch still has to send? If not, pause the rail."""
    import polars as pl

    if not provider.supports("balances"):
        return True  # a provider that reports no balances answers AM04 itself
    balance_of = provider.available_balance
    to_send = frame.filter(pl.col("status") != "submitted")
    needed = to_send.group_by("currency").agg(pl.col("amount_minor").sum())
    # What the provider knows beyond balances (a wallet's gas or cap) is the reason first.
    why = provider.funding_shortfall(params["rail"], to_send.select("currency", "amount_minor", "network").rows())
    for currency, amount in needed.iter_rows():
        if why:
            break
        available = balance_of(params["rail"], currency)
        if available < amount:
            why = (f"{params['rail']} {currency}: batch needs {amount} minor units,"
                   f" the prefunded balance has {available}")
    if why:
        set_stop(conn, "rail", params["rail"], "funding", why, "system")
        _apply_stop(conn, params, "funding", why)
        return False
    return True


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
    answers = answers.filter(pl.col("status") != "conflict")
    _record_answers(conn, rail, answers)
    if conflicts.height:
        # Our key and body disagree with what the provider holds: a bug, never paid twice and
        # never fallen back. The other answers are recorded; these items stay submitted.
        raise ProviderConflict(f"idempotency conflict on {conflicts.height} payments on {rail},"
                               f" e.g. {conflicts['idempotency_key'][0]}: the provider holds another payment"
                               " under the key")


def _record_answers(conn: psycopg.Connection, rail: str, answers) -> None:
    if answers.height == 0:
        return
    with conn.transaction():
        conn.execute(
            "CREATE TEMP TABLE _answers (idempotency_key text, item_id text, status text,"
            " reason_code text, provider_ref text) ON COMMIT DROP"
        )
        copy_in(conn, "_answers", answers)
        conn.execute(
            # A pending answer leaves the item submitted: answered_at waits for the final answer.
            "UPDATE payouts.attempts a SET status = t.status, reason_code = t.reason_code,"
            " provider_ref = COALESCE(t.provider_ref, a.provider_ref),"
            " answered_at = CASE WHEN t.status = 'pending' THEN a.answered_at ELSE COALESCE(a.answered_at, now()) END"
            " FROM _answers t WHERE a.idempotency_key = t.idempotency_key"
        )
        items.move_items(conn, "SELECT item_id FROM _answers WHERE status = 'accepted'", "accepted",
                         detail=f"accepted on {rail}")
        ledger.post_transfers(conn, "send", "SELECT item_id FROM _answers WHERE status = 'accepted'")
        ledger.post_transfers(conn, "fx", "SELECT item_id FROM _answers WHERE status = 'accepted'")
        for code, in conn.execute("SELECT DISTINCT reason_code FROM _answers WHERE status = 'rejected'").fetchall():
            _apply_rejection(conn, rail, code)
        ledger.post_transfers(
            conn, "release",
            "SELECT t.item_id FROM _answers t JOIN payouts.payout_items i USING (item_id)"
            " WHERE t.status = 'rejected' AND i.status = 'rejected'")


def _apply_rejection(conn: psycopg.Connection, rail: str, code: str | None) -> None:
    """Act on the provider's rejections carrying one reason code, by its class (payouts.core.reasons)."""
    iso = code or "MS03"
    klass = reasons.classify(iso)
    selection = ("SELECT item_id FROM _answers WHERE status = 'rejected'"
                 " AND reason_code IS NOT DISTINCT FROM %(code)s")
    params = {"code": code, "rail": rail}
    if klass == "rail_level":
        # Another rail can carry it: only when one is left that this item has not tried.
        next_rail = ("EXISTS (SELECT 1 FROM payouts.payout_items i, unnest(i.fallback_rails) AS f(rail)"
                     " WHERE i.item_id = _answers.item_id AND NOT EXISTS (SELECT 1 FROM payouts.attempts a"
                     " WHERE a.item_id = i.item_id AND a.rail = f.rail))")
        items.move_items(conn, f"{selection} AND {next_rail}", "fallback", params, detail=f"{iso} on {rail}",
                         reasons=[reasons.make("RAIL_REJECTED", iso=iso, rail=rail)])
        items.move_items(conn, f"{selection} AND NOT {next_rail}", "rejected", params,
                         detail=f"{iso} on {rail}, no rail left",
                         reasons=[reasons.make("NO_RAIL_LEFT", iso=iso, rail=rail)])
    elif klass == "funding":
        set_stop(conn, "rail", rail, "funding", f"the provider answered {iso}: our account lacks funds", "system")
        items.move_items(conn, selection, "held", params, detail=f"{iso} on {rail}",
                         reasons=[reasons.make("RAIL_PAUSED_FUNDING", iso=iso, rail=rail,
                                               why="treasury must top it up before it resumes")])
    elif klass == "regulatory":
        items.move_items(conn, selection, "held", params, detail=f"{iso} on {rail}",
                         reasons=[reasons.make("REGULATORY_HOLD", iso=iso, rail=rail)])
    else:
        account_level = klass == "account_level"
        items.move_items(
            conn, selection, "rejected", params, detail=f"rejected on {rail}: {iso}",
            reasons=[reasons.make("ACCOUNT_REJECTED" if account_level else "PROVIDER_REJECTED", iso=iso, rail=rail)],
        )
        if account_level:
            destinations.block(
                conn, "SELECT i.recipient_id, i.item_id, %(rail)s, %(iso)s FROM payouts.payout_items i"
                      " JOIN _answers t ON t.item_id = i.item_id WHERE t.status = 'rejected'"
                      " AND t.reason_code IS NOT DISTINCT FROM %(code)s",
                "rejected", {"code": code, "rail": rail, "iso": iso})


def plan_fallback(conn: psycopg.Connection, run_id: str, batch_size: int = settings.BATCH_SIZE) -> dict[str, list[dict]]:
    """The second wave: items a rail rejected at rail level, on the next rail of their chain.

    Each gets the first rail of its fallback chain it has not tried, and new
    batch numbers after the rail's existing ones. Idempotent: wave-2 batches
    already planned are returned as they are.
    """
    from payouts.core.rails import rail_providers
    from payouts.payout_run.stages import batch_plan, set_execution_dates

    with conn.transaction():
        planned = conn.execute(
            "SELECT count(*) FROM payouts.batches WHERE run_id = %s AND wave = 2", (run_id,)).fetchone()[0]
        if not planned:
            conn.execute(
                sql("payout_run/plan_fallback"),
                {"run_id": run_id, "size": batch_size},
            )
            conn.execute(
                "INSERT INTO payouts.batches (run_id, rail, batch_no, first_item, last_item, item_count, wave, provider)"
                " SELECT run_id, rail, batch_no, min(item_id), max(item_id), count(*), 2, %(providers)s::jsonb ->> rail"
                " FROM payouts.payout_items i WHERE run_id = %(run_id)s AND status = 'fallback'"
                " AND NOT EXISTS (SELECT 1 FROM payouts.attempts a WHERE a.item_id = i.item_id AND a.rail = i.rail)"
                " GROUP BY run_id, rail, batch_no",
                {"run_id": run_id, "providers": json.dumps(rail_providers())},
            )

            set_execution_dates(conn, run_id)
        return batch_plan(conn, run_id, wave=2)


def _ask_status(connector_of, rows: list[tuple[str, str, str]]) -> list[tuple[str, str, PaymentResult | None]]:
    """(key, rail, provider) -> the provider's answer for each key, asked of the provider it was sent to."""
    by_provider: dict[str, list[tuple[str, str]]] = {}
    for key, rail, provider in rows:
        by_provider.setdefault(provider, []).append((key, rail))

    async def ask(provider: str, keys: list[tuple[str, str]]) -> list[tuple[str, str, PaymentResult | None]]:
        connector = connector_of(provider)
        try:
            async with connector.session():
                return [(key, rail, await connector.payment_status(key)) for key, rail in keys]
        finally:
            connector.close()

    async def ask_all():
        answers = await asyncio.gather(*(ask(p, keys) for p, keys in by_provider.items()))
        return [a for per_provider in answers for a in per_provider]

    return asyncio.run(ask_all())


def resolve_unanswered(conn: psycopg.Connection, connector_of, run_id: str) -> dict[str, int]:
    """Ask the provider about every item still 'submitted' after the submit tasks gave up.

    `connector_of(conn_id)` builds the connector of the provider each key was sent
    to (its attempt says which). A final answer is recorded as if it had come back
    in time; a pending one leaves the item to `poll_pending`; a key the provider
    never received parks the item as awaiting_status with the reason: it is never
    sent again under a new key.
    """
    rows = conn.execute(
        "SELECT a.idempotency_key, a.rail, a.provider FROM payouts.payout_items i JOIN payouts.attempts a"
        " ON a.item_id = i.item_id AND a.rail = i.rail WHERE i.run_id = %s AND i.status = 'submitted'"
        " AND a.status <> 'pending'",
        (run_id,),
    ).fetchall()
    if not rows:
        return {"resolved": 0, "awaiting_status": 0, "pending": 0}
    answered = _ask_status(connector_of, rows)
    counts = _record_status_answers(conn, answered)
    missing = _park_unknown(conn, answered, "no answer from the provider",
                            "The provider has no record of the payment; operations must confirm before it is"
                            " sent again.")
    return {**counts, "awaiting_status": missing}


def _park_unknown(conn: psycopg.Connection, answered, detail: str, why: str) -> int:
    """Park the items whose key the provider does not know as awaiting_status: never resent by us."""
    missing = [key.split(":")[0] for key, _, result in answered if result is None]
    if missing:
        with conn.transaction():
            items.move_items(conn, "SELECT unnest(%(ids)s::text[])", "awaiting_status", {"ids": missing},
                             detail=detail, reasons=[reasons.make("NO_PROVIDER_ANSWER", why=why)])
    return len(missing)


def _record_status_answers(conn: psycopg.Connection, answered) -> dict[str, int]:
    by_rail: dict[str, list[PaymentResult]] = {}
    for _, rail, result in answered:
        if result is not None:
            by_rail.setdefault(rail, []).append(result)
    for rail, results in by_rail.items():
        record_results(conn, rail, results)
    every = [r for results in by_rail.values() for r in results]
    return {"resolved": sum(1 for r in every if r.final), "pending": sum(1 for r in every if r.status == "pending")}


def poll_pending(conn: psycopg.Connection, connector_of) -> dict[str, int]:
    """Ask each provider about the payments it answered `pending` (a file awaiting its status
    report, a transaction awaiting confirmations); record those that are final now.

    The owner of every pending item: the poll_payments DAG calls this on its schedule.
    A payment the provider no longer knows is parked as awaiting_status, never resent.
    A parked payment is asked about again on every poll and moves only on a final answer
    (a status report that came after the wait, a provider that knows the payment again):
    a rejection that comes late releases the money instead of leaving it parked.
    """
    rows = conn.execute(
        "SELECT a.idempotency_key, a.rail, a.provider, i.status = 'awaiting_status' FROM payouts.attempts a"
        " JOIN payouts.payout_items i ON i.item_id = a.item_id AND i.rail = a.rail"
        " WHERE a.status = 'pending' AND i.status IN ('submitted', 'awaiting_status')"
        " ORDER BY a.provider, a.idempotency_key").fetchall()
    if not rows:
        return {"polled": 0, "resolved": 0, "pending": 0, "awaiting_status": 0}
    parked = {key for key, _, _, is_parked in rows if is_parked}
    answered = [(key, rail, result) for key, rail, result in _ask_status(connector_of, [r[:3] for r in rows])
                if key not in parked or (result is not None and result.final)]
    counts = _record_status_answers(conn, answered)
    missing = _park_unknown(conn, answered, "pending payment unknown to the provider",
                            "The provider answered pending and then had no record of the payment; operations"
                            " must confirm before it is sent again.")
    close_batches(conn)  # the batches of what is final now
    return {"polled": len(rows), **counts, "awaiting_status": missing}
