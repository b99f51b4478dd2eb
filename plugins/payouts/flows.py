"""What each DAG task does, one function per task: connections, timing, the call.

The DAG files wire these together and stay free of logic; the CLI and the
tests can call them without Airflow.
"""

from __future__ import annotations

import logging
import time

import psycopg

from payouts import masking
from payouts import run as payout_run
from payouts import settings
from payouts.warehouse import resolve_url

log = logging.getLogger(__name__)
masking.install()  # every task imports this module: destinations masked in its task log


class GateFailed(RuntimeError):
    """The data-quality gate refused the run: nothing may be sent."""


def refusal_is_final(call, *args, refusals: type[Exception] | tuple[type[Exception], ...]):
    """`call(*args)` in an Airflow task: a refusal (a verdict) ends the task without a retry.

    Anything else (a dropped connection, say) is left to the task's retries.
    """
    from airflow.sdk.exceptions import AirflowFailException

    try:
        return call(*args)
    except refusals as verdict:
        raise AirflowFailException(str(verdict)) from verdict


def provider():
    from payouts.providers.http_client import SandboxProvider

    url = settings.sandbox_url()
    if not url:
        raise RuntimeError("PAYOUTS_SANDBOX_URL is not set: the payout tasks do not know where the provider is")
    return SandboxProvider(url)


def _connect() -> tuple[str, psycopg.Connection]:
    # Autocommit: each stage's `conn.transaction()` blocks are real transactions,
    # committed when the block ends (a write-ahead must be durable before a send).
    url = resolve_url()
    return url, psycopg.connect(url, autocommit=True)


# -- payout_run -------------------------------------------------------------

def open_run(dag_run_id: str, trigger: str, conf: dict) -> str:
    url, conn = _connect()
    with conn:
        run_id = payout_run.open_run(conn, dag_run_id, trigger, conf)
    log.info("payout run %s for DAG run %s", run_id, dag_run_id)
    return run_id


def snapshot(run_id: str) -> int:
    url, conn = _connect()
    with payout_run.stage(url, run_id, "snapshot"), conn:
        count = payout_run.snapshot(conn, run_id)
    log.info("run %s: %d payout items snapshotted and reserved", run_id, count)
    return count


def quality_gate(run_id: str) -> dict:
    from payouts.checks.gate import run_gate

    url, conn = _connect()
    with payout_run.stage(url, run_id, "quality_gate"), conn:
        items = conn.execute("SELECT count(*) FROM payouts.payout_items WHERE run_id = %s", (run_id,)).fetchone()[0]
        reserved = conn.execute("SELECT count(*) FROM ledger.transactions WHERE txn_id LIKE %s",
                                (f"reserve:{run_id}-%",)).fetchone()[0] if items == 0 else None
        if items == 0 and reserved == 0:
            # Nothing was payable: an empty run is a quiet day, not a failure. (An empty run
            # with reservations under its name goes through the gate, which refuses it.)
            result = {"success": True, "expectations": [], "run_id": run_id,
                      "note": "no items: nothing was payable, nothing to check"}
        else:
            result = run_gate(url, run_id).to_json()
        payout_run.record_gate(conn, run_id, result)
    if not result["success"]:
        failed = [e for e in result["expectations"] if not e["success"]]
        raise GateFailed(f"run {run_id}: the data-quality gate failed: {failed}")
    return {"success": True, "expectations": len(result["expectations"])}


def verifier():
    """Verification of Payee through the provider: requests -> parsed answers."""
    from payouts.checks.vop import parse_vop_response

    client = provider()

    def verify(requests: list[tuple[str, str, str]]):
        results = []
        for document in client.verify_payee_batches(requests):
            results.extend(parse_vop_response(document))
        return results

    return verify


def check_items(run_id: str) -> dict[str, int]:
    url, conn = _connect()
    with payout_run.stage(url, run_id, "checks"), conn:
        return payout_run.check_items(conn, run_id, verify=verifier())


def plan(run_id: str) -> dict[str, list[dict]]:
    url, conn = _connect()
    with payout_run.stage(url, run_id, "routing"), conn:
        return payout_run.route_and_plan(conn, run_id, quote=provider().fx_quotes)


def submit(batch: dict) -> dict:
    from payouts.submit import submit_batch

    url, conn = _connect()
    with payout_run.stage(url, batch["run_id"], "submit"), conn:
        outcome = submit_batch(conn, provider(), batch)
    log.info("run %s %s batch %s: %s", batch["run_id"], batch["rail"], batch["batch_no"], outcome.to_dict())
    return outcome.to_dict()


def plan_fallback(run_id: str) -> dict[str, list[dict]]:
    from payouts.submit import plan_fallback as plan_wave_two

    url, conn = _connect()
    with payout_run.stage(url, run_id, "fallback_plan"), conn:
        return plan_wave_two(conn, run_id)


def resolve(run_id: str) -> dict:
    from payouts.submit import resolve_unanswered

    url, conn = _connect()
    with payout_run.stage(url, run_id, "resolve"), conn:
        return resolve_unanswered(conn, provider(), run_id)


def finish(run_id: str) -> dict:
    url, conn = _connect()
    with conn:
        return payout_run.finish(conn, run_id)


# -- reconcile_statements ---------------------------------------------------

def open_pass(trigger: str) -> int:
    from payouts.reconcile import run as recon

    url, conn = _connect()
    with conn:
        return recon.open_pass(conn, trigger)


def _timed_pass_stage(pass_id: int, stage: str, work):
    from payouts.reconcile import run as recon

    url, conn = _connect()
    with conn:
        start = time.perf_counter()
        result = work(conn)
        recon.record_timing(conn, pass_id, stage, time.perf_counter() - start)
    return result


def fetch_statements_only() -> int:
    """Download the statements the provider has and the warehouse does not. Returns how many."""
    from payouts.reconcile import run as recon

    url, conn = _connect()
    with conn:
        fetched = recon.fetch_statements(conn, provider())
    log.info("fetched %d statement files", len(fetched))
    return len(fetched)


def load_statements(pass_id: int) -> dict:
    """Parse and load every statement file not loaded yet."""
    from payouts.reconcile import run as recon

    def work(conn):
        loaded = recon.load_files(conn, recon.pending_files())
        for f in loaded:
            if f.get("quarantined"):
                log.warning("quarantined statement file %s: %s", f["file"], f["quarantined"])
            for reason in f.get("statements_quarantined", ()):
                log.warning("quarantined a statement of %s (its other statements are loaded): %s", f["file"], reason)
        new = [f for f in loaded if f["loaded"]]
        return {"files": len(new), "lines": sum(f["lines"] for f in new)}

    return _timed_pass_stage(pass_id, "parse_load", work)


def match_statements(pass_id: int, loaded: dict) -> dict:
    """Match, open breaks, post settlements and returns; close the pass."""
    from payouts.reconcile import run as recon

    def work(conn):
        counts = recon.match_pass(conn)
        counts["missing_at_provider"] = recon.flag_missing(conn)
        return counts

    counts = _timed_pass_stage(pass_id, "match_post", work)
    url, conn = _connect()
    with conn:
        recon.close_pass(conn, pass_id, loaded["files"], loaded["lines"], counts)
    log.info("reconciliation pass %s: %s", pass_id, counts)
    return counts
