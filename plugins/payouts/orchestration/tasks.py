"""What each DAG task does, one function per task: connections, timing, the call.

The DAG files wire these together and stay free of logic; the CLI and the
tests can call them without Airflow.
"""

from __future__ import annotations

import logging
import time

import psycopg

from payouts.core import masking
from payouts.payout_run import stages as payout_run
from payouts.payout_run import summary
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


def connector_for(rail: str):
    """The connector of the provider connection that serves `rail` (payouts.core.rails)."""
    from payouts.providers import registry

    return registry.for_rail(rail)


def _connector(conn_id: str):
    from payouts.providers import registry

    return registry.connector(conn_id)


def capable_connector(conn_id: str, capability: str):
    """The connector of `conn_id` when its kind declares `capability`, else None (logged)."""
    from payouts.providers import registry

    connector = registry.connector(conn_id)
    if connector.supports(capability):
        return connector
    connector.close()
    log.warning("connection %s (%s) does not offer %s", conn_id, connector.kind, capability)
    return None


def check_providers() -> dict[str, list[str]]:
    """Every provider connection the rails name can be built, or the run stops here, naming it."""
    from payouts.providers import registry
    from payouts.providers.contract import ConnectorConfigError

    return refusal_is_final(registry.check_rail_providers, refusals=ConnectorConfigError)


def _connect() -> tuple[str, psycopg.Connection]:
    # Autocommit: each stage's `conn.transaction()` blocks are real transactions,
    # committed when the block ends (a write-ahead must be durable before a send).
    url = resolve_url()
    return url, psycopg.connect(url, autocommit=True)


# -- payout_run -------------------------------------------------------------

def open_run(dag_run_id: str, trigger: str, conf: dict) -> str:
    # A bad provider connection stops the run before anything is snapshotted or reserved,
    # whether or not its rail has items today.
    served = check_providers()
    log.info("provider connections: %s", served)
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
    from payouts.core.rails import vop_provider

    client = capable_connector(vop_provider(), "verify_payees")
    if client is None:
        return None

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
        from payouts.core.rails import fx_provider

        quoting = capable_connector(fx_provider(), "fx_quote")
        return payout_run.route_and_plan(conn, run_id, quote=quoting.fx_quotes if quoting else None)


def submit(batch: dict) -> dict:
    from payouts.payout_run.submit import submit_batch

    url, conn = _connect()
    with payout_run.stage(url, batch["run_id"], "submit"), conn:
        # The provider the plan named for the batch; a descriptor without one takes the rail's.
        connector = _connector(batch["provider"]) if batch.get("provider") else connector_for(batch["rail"])
        try:
            outcome = submit_batch(conn, connector, batch)
        finally:
            connector.close()
    log.info("run %s %s batch %s: %s", batch["run_id"], batch["rail"], batch["batch_no"], outcome.to_dict())
    return outcome.to_dict()


def plan_fallback(run_id: str) -> dict[str, list[dict]]:
    from payouts.payout_run.submit import plan_fallback as plan_wave_two

    url, conn = _connect()
    with payout_run.stage(url, run_id, "fallback_plan"), conn:
        return plan_wave_two(conn, run_id)


def resolve(run_id: str) -> dict:
    from payouts.payout_run.submit import resolve_unanswered

    url, conn = _connect()
    with payout_run.stage(url, run_id, "resolve"), conn:
        return resolve_unanswered(conn, _connector, run_id)


def poll_payments() -> dict:
    """Ask the providers about every payment they answered `pending`; record the final answers."""
    from payouts.payout_run.submit import poll_pending

    url, conn = _connect()
    with conn:
        counts = poll_pending(conn, _connector)
    log.info("pending payments polled: %s", counts)
    return counts


def finish(run_id: str) -> dict:
    url, conn = _connect()
    with conn:
        return summary.finish(conn, run_id)


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
    """Download, from every provider connection the rails name, the statements since its cursor.

    Returns how many files came in. A provider that cannot be reached fails the
    task after the others were fetched (their cursors are stored), so a retry
    fetches only what is still missing.
    """
    from payouts.providers import registry
    from payouts.core.rails import provider_rails
    from payouts.reconcile import run as recon

    url, conn = _connect()
    fetched, failed = 0, []
    with conn:
        for conn_id in provider_rails():
            connector = registry.connector(conn_id)
            try:
                if not connector.supports("statements"):
                    log.info("connection %s (%s) offers no statements", conn_id, connector.kind)
                    continue
                got = recon.fetch_statements(conn, connector, conn_id)
                log.info("%s: fetched %d statement files", conn_id, len(got))
                fetched += len(got)
            except Exception as exc:  # noqa: BLE001 - the other providers are fetched first
                log.error("%s: statements could not be fetched: %s", conn_id, exc)
                failed.append(f"{conn_id}: {exc}")
            finally:
                connector.close()
    if failed:
        raise RuntimeError(f"statements not fetched from {len(failed)} provider(s): {'; '.join(failed)}")
    return fetched


def load_statements(pass_id: int) -> dict:
    """Parse and load every statement file not loaded yet."""
    from payouts.reconcile import run as recon

    def work(conn):
        loaded = [f for provider in recon.provider_folders()
                  for f in recon.load_files(conn, recon.pending_files(provider), provider)]
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
