"""`payouts run`'s runner runs ready task instances side by side, each in a forked process.

Two things a user relies on: the rails' submit batches really run at the same
time (proven by a rendezvous that only two processes inside submit at once can
pass), and a worker process that dies mid-task fails its task instance and the
DAG run instead of leaving the runner waiting forever.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e

# Each submit task instance waits inside submit until another process has entered
# it too, then submits for real; run one after another, the first one gives up.
RENDEZVOUS_RUNNER = """
import os, sys, time
from pathlib import Path
from payouts.orchestration import tasks

real_submit = tasks.submit
here = Path(os.environ["RENDEZVOUS_DIR"])

def submit(batch):
    (here / str(os.getpid())).touch()
    deadline = time.monotonic() + 60
    while len({p.name for p in here.iterdir()}) < 2:
        if time.monotonic() > deadline:
            raise RuntimeError("no other submit task instance ran alongside this one")
        time.sleep(0.05)
    return real_submit(batch)

tasks.submit = submit
from payouts_tooling.airflow_runner import main
sys.exit(main(sys.argv[1:]))
"""

# The process running check_items is killed outright (as the OOM killer would).
KILLED_RUNNER = """
import os, signal, sys
from payouts.orchestration import tasks

tasks.check_items = lambda run_id: os.kill(os.getpid(), signal.SIGKILL)
from payouts_tooling.airflow_runner import main
sys.exit(main(sys.argv[1:]))
"""


def test_submit_batches_of_different_rails_run_at_the_same_time(airflow_runner, tmp_path):
    from payouts_tooling import seed
    from payouts_sandbox.process import start_sandbox
    from payouts.warehouse import connect

    with connect(airflow_runner.warehouse_url, autocommit=True) as conn:
        seed.load(conn, 300, seed=5)
    rendezvous = tmp_path / "rendezvous"
    rendezvous.mkdir()
    with start_sandbox(tmp_path / "sandbox") as sandbox:
        done = airflow_runner.run(RENDEZVOUS_RUNNER, ["payout_run"], sandbox_url=sandbox.url, workers=2,
                                  extra_env={"RENDEZVOUS_DIR": str(rendezvous)})
    assert done.steps["payout_run"] == "success", done.output[-4000:]
    assert len(list(rendezvous.iterdir())) >= 2  # as many processes as submit task instances
    with connect(airflow_runner.warehouse_url) as conn:
        rails, accepted = conn.execute(
            "SELECT count(DISTINCT rail), count(*) FILTER (WHERE status = 'accepted') FROM payouts.payout_items"
            " WHERE rail IS NOT NULL").fetchone()
        sent_twice, = conn.execute("SELECT count(*) FROM payouts.attempts WHERE sends > 1").fetchone()
    assert rails >= 2 and accepted > 0
    assert sent_twice == 0


def test_a_killed_worker_process_fails_its_task_and_the_run(airflow_runner):
    import psycopg

    from payouts_tooling import seed
    from payouts.warehouse import connect

    with connect(airflow_runner.warehouse_url, autocommit=True) as conn:
        seed.load(conn, 30, seed=3)
    done = airflow_runner.run(KILLED_RUNNER, ["payout_run"], workers=2, timeout=300)
    assert done.steps["payout_run"] == "failed", done.output[-4000:]
    assert done.returncode == 1
    assert "the process running check_items (map index -1) ended with status -9: marked failed" in done.output
    with psycopg.connect(airflow_runner.metadata_url) as conn:
        state, = conn.execute("SELECT state FROM task_instance WHERE task_id = 'check_items'").fetchone()
    assert state == "failed"
    with connect(airflow_runner.warehouse_url) as conn:
        attempts, = conn.execute("SELECT count(*) FROM payouts.attempts").fetchone()
    assert attempts == 0, "payments were sent after the checks died"
