"""
### reconcile_statements

Proves every cent: loads the statement files that `fetch_statements`
brought in (camt.053 for bank rails, CSV exports for crypto), matches their
lines to payout items by rules (EndToEndId first), opens breaks for what
does not tie, and posts settlements (clearing → cash) and returns.

- **Owner:** finance-ops (breaks), payments-data (the pipeline).
- **Schedule:** whenever new statements land (the statements asset, updated
  by `fetch_statements`), and every two hours regardless: breaks age and
  `missing_at_provider` must be raised even when nothing arrives. It never
  updates its own trigger.
- **Reads:** statement files, `payouts.payout_items`.
- **Writes:** `recon.statement_files`, `recon.statement_lines`,
  `recon.statements`, `recon.statement_issues`, `recon.quarantined_files`,
  `recon.quarantined_statements`, `recon.matches`, `recon.breaks`,
  `recon.passes`, ledger postings (settle, return).
- **Re-running safely:** files are known by hash, lines by statement key,
  matches by line, breaks by type and item, postings by transaction id; a
  re-run over the same statements adds nothing.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Asset, dag, get_current_context, task
from airflow.timetables.assets import AssetOrTimeSchedule
from airflow.timetables.trigger import CronTriggerTimetable

from payouts.settings import STATEMENTS_ASSET_URI


@dag(
    dag_id="reconcile_statements",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("0 */2 * * *", timezone="UTC"),
        assets=[Asset(STATEMENTS_ASSET_URI)],
    ),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # passes match the same lines: one at a time
    tags=["payouts", "reconciliation"],
    default_args={"owner": "finance-ops", "retries": 2, "retry_delay": timedelta(seconds=30)},
    doc_md=__doc__,
)
def reconcile_statements():
    @task
    def open_pass() -> int:
        from payouts.orchestration import tasks

        conf = dict(get_current_context()["dag_run"].conf or {})
        return tasks.open_pass(conf.get("trigger", "schedule"))

    @task
    def load_statements(pass_id: int) -> dict:
        from payouts.orchestration import tasks

        return tasks.load_statements(pass_id)

    @task
    def match_statements(pass_id: int, loaded: dict) -> dict:
        from payouts.orchestration import tasks

        return tasks.match_statements(pass_id, loaded)

    pass_id = open_pass()
    match_statements(pass_id, load_statements(pass_id))


reconcile_statements()
