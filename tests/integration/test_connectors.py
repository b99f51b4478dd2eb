"""The connector contract against a real warehouse: a payment answered `pending` stays
`submitted`, owned by the poller until its provider answers; a key never goes to two
providers; a conflict stops the batch; a bad provider connection stops a run before
anything is reserved. The providers here are a connector kind of the tests (a bank that
answers later), reached through Airflow connections like any other."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from payouts.core import ledger
from payouts.core.rails import RAILS
from payouts.providers import registry
from payouts.payout_run import stages as payout_run
from payouts.payout_run import summary
from payouts.providers.contract import Connector, Payment, PaymentResult
from payouts.payout_run.submit import ProviderChanged, ProviderConflict, poll_pending, resolve_unanswered, submit_batch
from tests_support import fresh_database

from test_payout_run_stages import RECIPIENTS, _prepare, fresh  # noqa: F401  (fixture)

PROJECT = Path(__file__).resolve().parents[2]


class LaterBank(Connector):
    """Books every payment and answers `pending`; the final answer comes when the test says."""

    books: dict[str, dict[str, PaymentResult]] = {}   # conn_id -> key -> the answer it gave
    sends: dict[str, int] = {}
    final: dict[str, tuple[str, str | None]] = {}     # key -> (status, reason) once decided
    conflicting: set[str] = set()

    @classmethod
    def from_connection(cls, conn_id, connection, rails=()):
        return cls(conn_id, rails)

    async def submit(self, rail: str, payments: list[Payment]) -> list[PaymentResult]:
        book = self.books.setdefault(self.conn_id, {})
        answers = []
        for p in payments:
            self.sends[p.idempotency_key] = self.sends.get(p.idempotency_key, 0) + 1
            status = "conflict" if p.idempotency_key in self.conflicting else "pending"
            book.setdefault(p.idempotency_key, PaymentResult(p.idempotency_key, p.end_to_end_id, "pending",
                                                             None, f"file-{self.conn_id}-{len(book)}"))
            answers.append(PaymentResult(p.idempotency_key, p.end_to_end_id, status, None,
                                         book[p.idempotency_key].provider_ref))
        return answers

    async def payment_status(self, idempotency_key, reference=None):
        booked = self.books.get(self.conn_id, {}).get(idempotency_key)
        if booked is None:
            return None
        status, reason = self.final.get(idempotency_key, ("pending", None))
        return PaymentResult(idempotency_key, booked.end_to_end_id, status, reason, booked.provider_ref)

    def health(self):
        return {"status": "ok"}


@pytest.fixture()
def later_bank(monkeypatch):
    registry.register("later_bank", capabilities={"payment_status"})(LaterBank)
    LaterBank.books, LaterBank.sends, LaterBank.final, LaterBank.conflicting = {}, {}, {}, set()
    for conn_id in ("payouts_later", "payouts_other"):
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}",
                           json.dumps({"conn_type": "later", "extra": {"connector": "later_bank"}}))
    monkeypatch.setenv("PAYOUTS_RAIL_PROVIDERS", ",".join(
        f"{rail}=payouts_later" for rail in ("sepa_instant", "sepa_credit", "swift", "faster_payments", "ach", "crypto")))
    monkeypatch.setenv("PAYOUTS_FX_PROVIDER", "payouts_later")
    yield LaterBank
    registry.unregister("later_bank")


def _statuses(conn, run_id):
    return dict(conn.execute("SELECT status, count(*) FROM payouts.payout_items WHERE run_id = %s GROUP BY 1",
                             (run_id,)).fetchall())


def _batch_rows(conn, run_id):
    return {(rail, batch_no): (status, accepted, rejected, unanswered)
            for rail, batch_no, status, accepted, rejected, unanswered in conn.execute(
                "SELECT rail, batch_no, status, accepted, rejected, unanswered FROM payouts.batches"
                " WHERE run_id = %s", (run_id,)).fetchall()}


def test_pending_answers_stay_submitted_until_the_poller_hears_the_final_answer(fresh, later_bank):
    url, tag = fresh
    with psycopg.connect(url, autocommit=True) as conn:
        run_id, plan = _prepare(conn, tag)
        batches = [b for rail_batches in plan.values() for b in rail_batches]
        assert batches and {b["provider"] for b in batches} == {"payouts_later"}
        before = _statuses(conn, run_id)  # the checks held or rejected some already
        sent = 0
        for batch in batches:
            outcome = submit_batch(conn, registry.connector(batch["provider"]), batch)
            assert outcome.pending == outcome.sent and outcome.accepted == 0
            sent += outcome.sent
        assert sent > 0 and _statuses(conn, run_id)["submitted"] == sent
        attempts = conn.execute("SELECT a.status, a.provider, count(*), count(a.answered_at) FROM payouts.attempts a"
                                " JOIN payouts.payout_items i USING (item_id) WHERE i.run_id = %s GROUP BY 1, 2",
                                (run_id,)).fetchall()
        assert attempts == [("pending", "payouts_later", sent, 0)]

        # The run's resolve step leaves them to the poller: never parked, never resent.
        assert resolve_unanswered(conn, registry.connector, run_id)["awaiting_status"] == 0
        # Its batches are sent, their payments unanswered, also once the run has finished:
        # the poller owns them, so none is failed.
        summary.finish(conn, run_id)
        assert _batch_rows(conn, run_id) == {(b["rail"], b["batch_no"]): ("sent", 0, 0, b["item_count"])
                                             for b in batches}
        # A retried submit task sends the same keys to the same provider, which books nothing new.
        for batch in batches:
            submit_batch(conn, registry.connector(batch["provider"]), batch)
        assert len(LaterBank.books["payouts_later"]) == sent
        assert set(LaterBank.sends.values()) == {2}

        # Nothing final yet: the poller asks and leaves everything as it is.
        assert poll_pending(conn, registry.connector) == {"polled": sent, "resolved": 0, "pending": sent,
                                                          "awaiting_status": 0}
        keys = sorted(LaterBank.books["payouts_later"])
        accepted, rejected = keys[:-1], keys[-1]
        for key in accepted:
            LaterBank.final[key] = ("accepted", None)
        LaterBank.final[rejected] = ("rejected", "AC04")
        counts = poll_pending(conn, registry.connector)
        assert counts == {"polled": sent, "resolved": sent, "pending": 0, "awaiting_status": 0}
        statuses = _statuses(conn, run_id)
        assert statuses.get("accepted") == len(accepted)
        assert statuses.get("rejected") == before.get("rejected", 0) + 1
        assert "submitted" not in statuses
        # The poller's answers close the finished run's batches: done, counted by answer.
        rows = _batch_rows(conn, run_id)
        assert {status for status, *_ in rows.values()} == {"done"}
        assert sum(a for _, a, _, _ in rows.values()) == len(accepted)
        assert sum(r for _, _, r, _ in rows.values()) == 1
        assert sum(u for *_, u in rows.values()) == 0
        rejected_item = rejected.split(":")[0]
        blocked = conn.execute(
            "SELECT r.destination_blocked_reason FROM payouts.recipients r JOIN payouts.payout_items i"
            " USING (recipient_id) WHERE i.item_id = %s", (rejected_item,)).fetchone()[0]
        reason = json.loads(blocked)
        assert reason == {"event": "rejected", "item_id": rejected_item, "rail": reason["rail"],
                                       "reason_code": "AC04"}
        assert reason["rail"] in RAILS
        sends = conn.execute("SELECT count(*) FROM ledger.transactions WHERE txn_id LIKE %s",
                             (f"send:{run_id}-%",)).fetchone()[0]
        assert sends == len(accepted)
        assert ledger.unbalanced(conn) == []
        # Polled again: nothing is pending, nothing changes.
        assert poll_pending(conn, registry.connector)["polled"] == 0


def test_a_pending_payment_the_provider_forgot_is_parked_not_resent(fresh, later_bank):
    url, tag = fresh
    with psycopg.connect(url, autocommit=True) as conn:
        run_id, plan = _prepare(conn, tag)
        batch = next(b for rail_batches in plan.values() for b in rail_batches)
        outcome = submit_batch(conn, registry.connector("payouts_later"), batch)
        forgotten = sorted(LaterBank.books["payouts_later"])[0]
        del LaterBank.books["payouts_later"][forgotten]
        counts = poll_pending(conn, registry.connector)
        assert counts["awaiting_status"] == 1 and counts["pending"] == outcome.sent - 1
        item = forgotten.split(":")[0]
        status, reasons = conn.execute("SELECT status, reasons FROM payouts.payout_items WHERE item_id = %s",
                                       (item,)).fetchone()
        assert status == "awaiting_status" and reasons[-1]["code"] == "NO_PROVIDER_ANSWER"
        assert LaterBank.sends[forgotten] == 1  # asked about, never sent again
        # Asked about again on the next poll, still unknown: it stays parked, with one reason.
        poll_pending(conn, registry.connector)
        status, again = conn.execute("SELECT status, reasons FROM payouts.payout_items WHERE item_id = %s",
                                     (item,)).fetchone()
        assert status == "awaiting_status" and again == reasons and LaterBank.sends[forgotten] == 1


def test_a_key_is_never_sent_to_a_second_provider(fresh, later_bank):
    url, tag = fresh
    with psycopg.connect(url, autocommit=True) as conn:
        run_id, plan = _prepare(conn, tag)
        batch = next(b for rail_batches in plan.values() for b in rail_batches)
        submit_batch(conn, registry.connector("payouts_later"), batch)
        # The rail now names another connection: the items sent before are not sent there.
        with pytest.raises(ProviderChanged, match="were sent to payouts_later, not payouts_other"):
            submit_batch(conn, registry.connector("payouts_other"), {**batch, "provider": "payouts_other"})
        assert "payouts_other" not in LaterBank.books


def test_a_conflict_stops_the_batch_and_keeps_the_other_answers(fresh, later_bank):
    url, tag = fresh
    with psycopg.connect(url, autocommit=True) as conn:
        run_id, plan = _prepare(conn, tag)
        batch = next(b for rail_batches in plan.values() for b in rail_batches if b["item_count"] == 2)
        first = conn.execute("SELECT min(item_id) FROM payouts.payout_items WHERE item_id BETWEEN %s AND %s"
                             " AND run_id = %s AND rail = %s", (batch["first_item"], batch["last_item"], run_id,
                                                                 batch["rail"])).fetchone()[0]
        LaterBank.conflicting.add(f"{first}:{batch['rail']}")
        with pytest.raises(ProviderConflict, match="idempotency conflict on 1 payments"):
            submit_batch(conn, registry.connector("payouts_later"), batch)
        rows = dict(conn.execute(
            "SELECT a.item_id, a.status FROM payouts.attempts a JOIN payouts.payout_items i USING (item_id)"
            " WHERE i.run_id = %s AND a.rail = %s AND a.item_id BETWEEN %s AND %s",
            (run_id, batch["rail"], batch["first_item"], batch["last_item"])).fetchall())
        assert rows[first] == "sending"  # stopped: no answer recorded, no fallback
        assert sorted(s for i, s in rows.items() if i != first) == ["pending"]
        assert conn.execute("SELECT status FROM payouts.payout_items WHERE item_id = %s", (first,)).fetchone()[0] \
            == "submitted"


# -- a bad provider connection stops the run before anything is reserved ------------------

BAD_CONNECTIONS = {
    "unknown_kind": ({"AIRFLOW_CONN_PAYOUTS_SANDBOX": json.dumps(
        {"conn_type": "http", "host": "127.0.0.1", "extra": {"connector": "carrier_pigeon"}})},
        "connection 'payouts_sandbox' names the connector kind 'carrier_pigeon', which is not registered"),
    "missing_host": ({"AIRFLOW_CONN_PAYOUTS_SANDBOX": json.dumps({"conn_type": "https"})},
                     "connection 'payouts_sandbox' has no host"),
    # faster_payments: a rail the seed gives few items; checked whether or not it has any.
    "rail_on_a_missing_connection": ({"AIRFLOW_CONN_PAYOUTS_SANDBOX": "http://127.0.0.1:9",
                                      "PAYOUTS_RAIL_PROVIDERS": "faster_payments=payouts_bank_uk"},
                                     "connection 'payouts_bank_uk' is not defined"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONNECTIONS))
def test_payouts_run_stops_at_a_bad_connection_naming_it(case, tmp_path):
    extra, message = BAD_CONNECTIONS[case]
    url, drop = fresh_database("embedded")
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN_", "PAYOUTS_RAIL"))}
        env.update(extra, PAYOUTS_WAREHOUSE_URL=url, PAYOUTS_DATA_DIR=str(tmp_path / "data"),
                   PYTHONPATH=str(PROJECT / "plugins"))
        done = subprocess.run([sys.executable, "-m", "payouts_tooling.cli", "run", "--recipients", "20"], env=env,
                              capture_output=True, text=True, timeout=300, cwd=tmp_path)
        assert done.returncode == 2, done.stderr[-2000:]
        errors = [line for line in done.stderr.splitlines() if line.startswith("payouts run:")]
        assert errors == [f"payouts run: {errors[0].removeprefix('payouts run: ')}"] and message in errors[0]
        assert "Traceback" not in done.stderr
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT count(*) FROM payouts.runs").fetchone()[0] == 0
            assert conn.execute("SELECT count(*) FROM ledger.transactions").fetchone()[0] == 0
        assert not (tmp_path / "data" / "sandbox").exists(), "no provider was started for a run that cannot pay"
    finally:
        drop()


def test_the_first_task_of_a_run_stops_at_a_bad_connection(fresh, monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException

    from payouts.orchestration import tasks

    url, tag = fresh
    monkeypatch.setenv("PAYOUTS_WAREHOUSE_URL", url)
    monkeypatch.setenv("AIRFLOW_CONN_PAYOUTS_SANDBOX", "http://127.0.0.1:9")
    monkeypatch.setenv("PAYOUTS_RAIL_PROVIDERS", "crypto=payouts_chain")
    monkeypatch.setenv("AIRFLOW_CONN_PAYOUTS_CHAIN", json.dumps({"conn_type": "chain", "host": "127.0.0.1"}))
    with pytest.raises(AirflowFailException, match="connection 'payouts_chain' .* names no connector kind"):
        tasks.open_run(f"dag-run-{tag}", "test", {})
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM payouts.runs").fetchone()[0] == 0
        reserved = conn.execute("SELECT count(*) FROM ledger.transactions WHERE kind <> 'earning'").fetchone()[0]
        assert reserved == 0
