"""
### poll_payments

Owns every payment a provider answered `pending` (a bank file awaiting its
pain.002 status report, a chain transaction awaiting its confirmations): asks
the provider that received it for its status and records the final answers
(accepted: the ledger posts the send; rejected: the reason's action, as if the
answer had come at once). Until then the item stays `submitted`, with this DAG
as its owner.

- **Owner:** payments-data.
- **Schedule:** every ten minutes, and whenever a payout run finishes (the
  payout-items asset).
- **Reads:** `payouts.attempts` in status pending; each provider's status API.
- **Writes:** attempts, item statuses and ledger postings of the answered payments;
  the status of their batches once their run has finished (`payouts.batches`).
- **Re-running safely:** it only asks and records; an answer recorded twice
  changes nothing (item moves are compare-and-set, postings keyed by event and
  item). It never sends a payment.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Asset, dag, task
from airflow.timetables.assets import AssetOrTimeSchedule
from airflow.timetables.trigger import CronTriggerTimetable

from payouts.settings import PAYOUT_ITEMS_ASSET_URI


@dag(
    dag_id="poll_payments",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("*/10 * * * *", timezone="UTC"),
        assets=[Asset(PAYOUT_ITEMS_ASSET_URI)],
    ),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # one poller at a time: answers are recorded in order
    tags=["payouts", "money-movement"],
    default_args={"owner": "payments-data", "retries": 3, "retry_delay": timedelta(seconds=30)},
    doc_md=__doc__,
)
def poll_payments():
    # Only asks and records (no payment is sent here), so retries are harmless.
    @task
    def poll() -> dict:
        from payouts.orchestration import tasks

        return tasks.poll_payments()

    poll()


poll_payments()
