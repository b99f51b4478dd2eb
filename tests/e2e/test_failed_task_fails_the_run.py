"""A payout_run whose task failed ends failed in Airflow, with the summary still written.

`finish` runs whatever happened upstream (all_done), so the run's state comes from the
`any_task_failed` leaf. Here the quality gate refuses the run (a verdict, no retry): no
money moves, finish records the run, and the DAG run is failed, not green.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e

# The runner with the gate's verdict replaced by a refusal (its tasks run in its process or in children
# forked from it: both see the patch).
RUNNER = """
import sys
from payouts.orchestration import tasks

def refused(run_id):
    raise tasks.GateFailed(f"run {run_id}: the data-quality gate failed (test)")

tasks.quality_gate = refused
from payouts_tooling.airflow_runner import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_failed_gate_fails_the_dag_run_and_finish_still_records_it(airflow_runner):
    from payouts_tooling import seed
    from payouts.warehouse import connect

    with connect(airflow_runner.warehouse_url, autocommit=True) as conn:
        seed.load(conn, 30, seed=3)
    done = airflow_runner.run(RUNNER, ["payout_run"])
    assert done.steps["payout_run"] == "failed", done.output[-3000:]
    assert done.returncode == 1
    with connect(airflow_runner.warehouse_url) as conn:
        summary, = conn.execute("SELECT summary FROM payouts.runs WHERE conf ->> 'trigger' = 'test'").fetchone()
        attempts, = conn.execute("SELECT count(*) FROM payouts.attempts").fetchone()
        moved, = conn.execute("SELECT count(*) FROM payouts.payout_items WHERE status <> 'snapshotted'").fetchone()
    assert summary is not None, "finish did not run"
    assert attempts == 0 and moved == 0, "a refused run moved items or sent payments"
