"""
### fetch_statements

Pulls, from every provider connection the rails name, the statements it has
written since the cursor the warehouse keeps for it (camt.053 for bank rails,
CSV exports for crypto), into that provider's statements folder, then updates
the statements asset so that `reconcile_statements` runs.

- **Owner:** payments-data.
- **Schedule:** hourly (statements land through the day;
  `PAYOUTS_FETCH_STATEMENTS_CRON` sets another cron, and `make airflow`, whose
  sandbox closes a business day every two minutes, sets every three minutes),
  and whenever a payout run finishes (the payout-items asset).
- **Reads:** each provider's statement listing and files; `recon.statement_cursors`.
- **Writes:** files under `PAYOUTS_STATEMENTS_URL/<connection id>/` (a folder or
  a bucket, through Airflow's ObjectStoragePath), each
  provider's new cursor (stored once its files are in); the asset
  `payouts://provider-sandbox/statements`.
- **Re-running safely:** a provider's cursor moves only after its files are
  in, so a failed fetch is fetched again; loading keys files by hash and lines
  by statement key. One provider that cannot be reached fails the task after
  the others were fetched.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Asset, dag, task
from airflow.timetables.assets import AssetOrTimeSchedule
from airflow.timetables.trigger import CronTriggerTimetable

from payouts.settings import FETCH_STATEMENTS_CRON, PAYOUT_ITEMS_ASSET_URI, STATEMENTS_ASSET_URI


@dag(
    dag_id="fetch_statements",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable(FETCH_STATEMENTS_CRON, timezone="UTC"),
        assets=[Asset(PAYOUT_ITEMS_ASSET_URI)],
    ),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # one download at a time per provider
    tags=["payouts", "reconciliation"],
    default_args={"owner": "payments-data", "retries": 3, "retry_delay": timedelta(seconds=30)},
    doc_md=__doc__,
)
def fetch_statements():
    @task(outlets=[Asset(STATEMENTS_ASSET_URI)])
    def fetch() -> int:
        from payouts.orchestration import tasks

        return tasks.fetch_statements_only()

    fetch()


fetch_statements()
