"""payout_run on the distributed shape while things break, then re-run: nothing is paid twice.

One payout run through the api-server, on Celery workers by rail queue, with the
provider's faults on (transient, ambiguous, reject, instant unreachable) and a
provider that takes a second per request. While the submit batches are in flight:

- a rail worker is SIGKILLed three times, all its processes at once, each time in the
  middle of a batch (its write-ahead committed, part of its payments already at the
  provider, the answers not yet recorded), and started again; the scheduler finds the
  task instances without a heartbeat within seconds and Airflow retries them;
- the warehouse PostgreSQL (a server of the test's own) is restarted once, in the
  middle of a batch: every open connection breaks, and the tasks that held one fail
  and are retried by Airflow.

Afterwards: the run succeeded; the provider executed no EndToEndId twice, and exactly
the items the warehouse says were paid; every item is at rest (final, accepted, or
parked with a reason); the ledger balances. Then the whole DAG run is cleared and runs
again (and the warehouse restarts once more, under its quality gate, which Airflow must
retry), and single task instances (submit map indexes, approve, finish) are cleared and
run again: the provider's executions, the ledger and every item's status stay as they were.

Two `payouts run`s back to back on one warehouse (the second pays only what became
payable since) are proven by tests/e2e/test_payout_run_e2e.py, also marked chaos.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field

import psycopg
import pytest

from payouts.core.routing import RAILS
from tests_support import items_not_at_rest, ledger_problems, parked_without_reason

from chaos_support import differences, picture

pytestmark = [pytest.mark.chaos, pytest.mark.cluster]

DAG_ID = "payout_run"
RUN_TIMEOUT_S = 600
RERUN_TIMEOUT_S = 300
# In order: what to break, each in the middle of a submit batch.
FAULT_PLAN = ("kill_worker", "restart_warehouse", "kill_worker", "kill_worker")
# A task instance is hit by at most this many injected faults, so it keeps tries of its
# own for the provider's faults (submit tasks have 4 tries, the others 3).
MAX_HITS_PER_TASK = 2
POLL_S = 0.2
# Tasks with retries=0 (the approval steps: any failure is taken as a verdict): the
# warehouse is not restarted under them.
NO_RETRY_TASKS = {"auto_approve", "record_approval"}


@dataclass
class Injection:
    kind: str
    target: str
    at_s: float
    hit: list[tuple[str, int, int]]  # (task_id, map_index, try_number) running at that moment
    batch: tuple[str, int, int]      # the submit batch it broke: (rail, batch_no, wave)
    in_flight: int = 0               # that batch's items written ahead and not answered yet
    at_provider: int = 0             # of those, how many the provider already holds
    detail: dict = field(default_factory=dict)


class FaultInjector:
    """Watches the run and breaks things at the planned moments (see FAULT_PLAN).

    The moment is the middle of a submit batch: a submit task instance running on a
    live worker, its items written ahead (status submitted), the provider holding some
    of them but not all, and more arriving since the last look.
    """

    def __init__(self, platform: dict, run_id: str):
        self.cluster = platform["cluster"]
        self.book = platform["book"]
        self.pg = platform["pg"]
        self.warehouse_url = platform["warehouse_url"]
        self.run_id = run_id
        rail_queues = {r.queue for r in RAILS.values()}
        self.rail_workers = [w for w in self.cluster.workers if set(w.queues) & rail_queues]
        self.hits: Counter[tuple[str, int]] = Counter()
        # Task instance tries whose worker was killed: the API says "running" until
        # the scheduler notices; they are not in the middle of anything any more.
        self.dead: set[tuple[str, int, int]] = set()
        # Task instance tries running when the warehouse restarted: left alone until they fail
        # by themselves (their retry is the evidence the restart was survived).
        self.broken: set[tuple[str, int, int]] = set()
        self.seen_at_provider: dict[tuple[str, int, int], int] = {}
        self.batches: dict[str, list[dict]] = {}
        self.injections: list[Injection] = []
        self.started = time.monotonic()
        self.last_target: str | None = None

    def batch_of(self, ti: dict) -> dict | None:
        """The batch descriptor a mapped submit task instance was expanded with (its XCom input)."""
        task_id = ti["task_id"]
        source = (task_id.replace("submit_fallback_", "fallback_batches_", 1) if task_id.startswith("submit_fallback_")
                  else task_id.replace("submit_", "batches_", 1))
        if source not in self.batches:
            try:
                entry = self.cluster.api("GET", f"/dags/{DAG_ID}/dagRuns/{self.run_id}/taskInstances/{source}"
                                                "/xcomEntries/return_value")
            except RuntimeError:
                return None
            value = entry["value"]
            self.batches[source] = json.loads(value) if isinstance(value, str) else value
        batches = self.batches[source]
        return batches[ti["map_index"]] if 0 <= ti["map_index"] < len(batches) else None

    def in_flight(self, batch: dict) -> list[str]:
        """The batch's items written ahead (status submitted) and not answered yet."""
        with psycopg.connect(self.warehouse_url, connect_timeout=5) as conn:
            return [r[0] for r in conn.execute(
                "SELECT item_id FROM payouts.payout_items WHERE run_id = %s AND rail = %s AND batch_no = %s"
                " AND status = 'submitted'", (batch["run_id"], batch["rail"], batch["batch_no"])).fetchall()]

    def running_on(self, worker, tis: list[dict]) -> list[dict]:
        return [ti for ti in tis if ti["state"] == "running" and ti["hostname"] == worker.name
                and (ti["task_id"], ti["map_index"], ti["try_number"]) not in self.dead]

    def mid_batch(self, worker, tis: list[dict]) -> tuple[list[dict], dict, int, int] | None:
        """(running task instances, the batch, its in-flight items, how many the provider holds)
        when `worker` is in the middle of a submit batch; else None."""
        running = self.running_on(worker, tis)
        if any(self.hits[(ti["task_id"], ti["map_index"])] >= MAX_HITS_PER_TASK
               or (ti["task_id"], ti["map_index"], ti["try_number"]) in self.broken for ti in running):
            return None
        # With a free process and tasks queued for it, the worker may hold a message it has
        # not started: killed then, that task would wait for task_queued_timeout. Not now.
        queued = [ti for ti in tis if ti["state"] == "queued" and ti["queue"] in worker.queues]
        if queued and len(running) < worker.concurrency:
            return None
        for ti in running:
            if not ti["task_id"].startswith("submit_") or (batch := self.batch_of(ti)) is None:
                continue
            items = self.in_flight(batch)
            at_provider = self.book.received(items, [batch["rail"]])
            key = (ti["task_id"], ti["map_index"], ti["try_number"])
            growing = at_provider > self.seen_at_provider.get(key, 0)
            self.seen_at_provider[key] = at_provider
            if growing and 0 < at_provider < len(items):
                return running, batch, len(items), at_provider
        return None

    def step(self, kind: str, tis: list[dict]) -> bool:
        """Inject `kind` if now is the moment; True when it was injected."""
        # Take turns between the rail workers when both are in the middle of a batch.
        for worker in sorted(self.rail_workers, key=lambda w: w.name == self.last_target):
            found = self.mid_batch(worker, tis)
            if found is None:
                continue
            running, batch, in_flight, at_provider = found
            if kind == "kill_worker":
                hit = running
                pids = self.cluster.kill_worker(worker.name)
                self.cluster.restart_worker(worker.name)
                self.dead |= {(ti["task_id"], ti["map_index"], ti["try_number"]) for ti in hit}
                detail = {"processes_killed": len(pids)}
                target = worker.name
            else:
                hit = [ti for w in self.cluster.workers for ti in self.running_on(w, tis)]
                if any(ti["task_id"] in NO_RETRY_TASKS for ti in hit) or any(
                        self.hits[(ti["task_id"], ti["map_index"])] >= MAX_HITS_PER_TASK for ti in hit):
                    return False
                down_s = self.pg.restart("immediate")
                self.broken |= {(ti["task_id"], ti["map_index"], ti["try_number"]) for ti in hit}
                detail = {"down_s": round(down_s, 2)}
                target = "warehouse"
            self.last_target = worker.name
            for ti in hit:
                self.hits[(ti["task_id"], ti["map_index"])] += 1
            self.injections.append(Injection(
                kind, target, round(time.monotonic() - self.started, 1),
                [(ti["task_id"], ti["map_index"], ti["try_number"]) for ti in hit],
                (batch["rail"], batch["batch_no"], batch.get("wave", 1)), in_flight, at_provider, detail))
            return True
        return False

    def run(self, deadline: float) -> str | None:
        """Inject the plan; return the run's state if it ended before the plan was done."""
        plan = list(FAULT_PLAN)
        while plan:
            state = self.cluster.api("GET", f"/dags/{DAG_ID}/dagRuns/{self.run_id}")["state"]
            if state in ("success", "failed"):
                return state
            if time.monotonic() > deadline:
                raise TimeoutError(f"faults left to inject: {plan}; injected: {self.injections}")
            self.cluster.check_alive()
            if self.step(plan[0], self.cluster.task_instances(DAG_ID, self.run_id)):
                plan.pop(0)
            else:
                time.sleep(POLL_S)
        return None


def _worker_of(cluster, submit_task_id: str) -> str:
    queue = RAILS[submit_task_id.removeprefix("submit_fallback_").removeprefix("submit_")].queue
    return next(w.name for w in cluster.workers if queue in w.queues)


def _final_tries(cluster, run_id: str) -> dict[tuple[str, int], dict]:
    return {(ti["task_id"], ti["map_index"]): ti for ti in cluster.task_instances(DAG_ID, run_id)}


def _unfinished(cluster, run_id: str) -> dict[str, str]:
    """Task instances that neither succeeded nor were skipped by the approval branch.

    Checked besides the run's state: the run's only leaf, finish, runs on all_done, so
    a run whose quality gate or submits failed still ends 'success'.
    """
    return {f"{task}[{index}]": ti["state"] for (task, index), ti in _final_tries(cluster, run_id).items()
            if ti["state"] not in ("success", "skipped")}


@pytest.fixture(scope="module")
def chaos_run(chaos_platform):
    """The payout run with its faults injected; its id, the injections and its final state."""
    cluster = chaos_platform["cluster"]
    step = time.perf_counter()
    run_id = cluster.trigger(DAG_ID, {"trigger": "api"})
    injector = FaultInjector(chaos_platform, run_id)
    deadline = time.monotonic() + RUN_TIMEOUT_S
    ended_early = injector.run(deadline)
    state = ended_early or cluster.wait_for_run(DAG_ID, run_id, timeout_s=max(30.0, deadline - time.monotonic()))
    chaos_platform["timings"]["payout_run_with_faults"] = time.perf_counter() - step
    with psycopg.connect(chaos_platform["warehouse_url"]) as conn:
        payout_run_id = conn.execute("SELECT run_id FROM payouts.runs WHERE dag_run_id = %s", (run_id,)).fetchone()
    return {"run_id": run_id, "payout_run_id": payout_run_id and payout_run_id[0], "state": state,
            "injections": injector.injections, "ended_early": ended_early is not None}


def test_the_run_survives_three_worker_kills_and_a_warehouse_restart(chaos_platform, chaos_run):
    cluster = chaos_platform["cluster"]
    injections = chaos_run["injections"]
    print("\ninjected:\n" + "\n".join(f"  {i.at_s:6.1f}s {i.kind} {i.target} in batch {i.batch}:"
                                      f" {i.at_provider} of {i.in_flight} in flight at the provider,"
                                      f" {i.detail}, hit {i.hit}" for i in injections))
    assert not chaos_run["ended_early"], f"the run ended before every fault was injected: {injections}"
    assert [i.kind for i in injections] == list(FAULT_PLAN)
    assert chaos_run["state"] == "success", (
        f"payout_run ended {chaos_run['state']}: {cluster.task_states(DAG_ID, chaos_run['run_id'])}")
    assert _unfinished(cluster, chaos_run["run_id"]) == {}
    # Every fault landed in the middle of a batch: written ahead, partly at the provider, unanswered.
    for injection in injections:
        assert 0 < injection.at_provider < injection.in_flight, injection

    final = _final_tries(cluster, chaos_run["run_id"])
    killed = {(task, index): tries for i in injections if i.kind == "kill_worker" for task, index, tries in i.hit}
    for (task, index), tries in killed.items():
        ti = final[(task, index)]
        assert ti["state"] == "success" and ti["try_number"] > tries, (
            f"{task}[{index}] was killed in try {tries}; now {ti['state']} in try {ti['try_number']}")
    # Airflow noticed the dead workers by their missing heartbeats (not by anything the test did).
    events = cluster.api("GET", "/eventLogs", params={"dag_id": DAG_ID, "run_id": chaos_run["run_id"],
                                                      "event": "heartbeat timeout", "limit": 100})
    timed_out = {(e["task_id"], e["map_index"]) for e in events["event_logs"]}
    assert set(killed) <= timed_out, f"killed {sorted(killed)}, heartbeat timeouts {sorted(timed_out)}"
    # The warehouse restart broke the connection of a running task, and Airflow retried it.
    restart = next(i for i in injections if i.kind == "restart_warehouse")
    retried = [(task, index) for task, index, tries in restart.hit if final[(task, index)]["try_number"] > tries]
    assert retried, f"no task running during the restart was retried: {restart.hit}"


def test_no_end_to_end_id_was_executed_twice(chaos_platform, chaos_run):
    book = chaos_platform["book"]
    counts = book.counts()
    assert counts["executed"] > 0, counts
    assert counts["duplicates"] == 0, counts
    with psycopg.connect(chaos_platform["warehouse_url"]) as conn:
        paid = {r[0] for r in conn.execute(
            "SELECT item_id FROM payouts.payout_items WHERE status IN ('accepted', 'settled', 'returned')").fetchall()}
    executed = book.executed_ids()
    # The provider executed exactly what the warehouse recorded as paid: nothing lost in a crash.
    assert executed == paid, {"executed, not recorded": sorted(executed - paid)[:20],
                              "recorded, not executed": sorted(paid - executed)[:20]}


def test_every_item_is_at_rest_and_the_ledger_balances(chaos_platform, chaos_run):
    with psycopg.connect(chaos_platform["warehouse_url"]) as conn:
        assert items_not_at_rest(conn) == {}
        assert parked_without_reason(conn) == 0
        assert ledger_problems(conn) == []
        statuses = dict(conn.execute(
            "SELECT status, count(*) FROM payouts.payout_items WHERE run_id = %s GROUP BY 1",
            (chaos_run["payout_run_id"],)).fetchall())
        resent = conn.execute("SELECT count(*) FROM payouts.attempts WHERE sends > 1").fetchone()[0]
    assert statuses.get("accepted", 0) > 0, statuses
    print(f"\nitems: {statuses}; attempts sent more than once (same key): {resent}")
    assert resent > 0, "the killed and broken batches should have been sent again under the same keys"
    chaos_platform["after_run"] = picture(chaos_platform["warehouse_url"], chaos_platform["book"])


def restart_while_the_gate_reads(platform: dict, run_id: str, deadline_s: float = 180.0) -> int:
    """Restart the warehouse while the re-run's quality_gate is in the middle of its queries.

    Once snapshot has run again, an exclusive lock on payouts.payout_items makes the
    gate's first query on it wait (nothing else runs beside the gate then); when that
    query is seen waiting, the server restarts. Returns the gate's try number then.
    """
    cluster, pg = platform["cluster"], platform["pg"]
    deadline = time.monotonic() + deadline_s
    tries = _final_tries(cluster, run_id)
    snapshot_try = tries[("snapshot", -1)]["try_number"]
    while True:  # the cleared snapshot has run again
        tries = _final_tries(cluster, run_id)
        if tries[("snapshot", -1)]["state"] == "success" and tries[("snapshot", -1)]["try_number"] > snapshot_try:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"snapshot did not run again: {cluster.task_states(DAG_ID, run_id)}")
        time.sleep(POLL_S)
    locker = psycopg.connect(platform["warehouse_url"])
    watcher = psycopg.connect(platform["warehouse_url"], autocommit=True)
    try:
        locker.execute("LOCK TABLE payouts.payout_items IN ACCESS EXCLUSIVE MODE")
        while not watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> %s",
                (locker.info.backend_pid,)).fetchone()[0]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the gate never queried payout_items: {cluster.task_states(DAG_ID, run_id)}")
            time.sleep(POLL_S)
        gate = _final_tries(cluster, run_id)[("quality_gate", -1)]
        assert gate["state"] == "running", gate
        pg.restart("immediate")
    finally:
        for conn in (locker, watcher):
            try:
                conn.close()
            except psycopg.Error:
                pass
    return gate["try_number"]


def test_clearing_the_whole_dag_run_changes_nothing(chaos_platform, chaos_run):
    """The whole run again, with the warehouse restarting under its quality gate: it finds its work done."""
    if "after_run" not in chaos_platform:
        pytest.skip("the faulty run did not end at rest")
    cluster = chaos_platform["cluster"]
    step = time.perf_counter()
    run = cluster.clear_dag_run(DAG_ID, chaos_run["run_id"])
    assert run["state"] in ("queued", "running"), run
    gate_try = restart_while_the_gate_reads(chaos_platform, chaos_run["run_id"])
    state = cluster.wait_for_run(DAG_ID, chaos_run["run_id"], timeout_s=RERUN_TIMEOUT_S)
    chaos_platform["timings"]["rerun_whole_dag_run"] = time.perf_counter() - step
    assert state == "success", f"the re-run ended {state}: {cluster.task_states(DAG_ID, chaos_run['run_id'])}"
    assert _unfinished(cluster, chaos_run["run_id"]) == {}
    gate = _final_tries(cluster, chaos_run["run_id"])[("quality_gate", -1)]
    assert gate["try_number"] > gate_try, f"the gate broken in try {gate_try} was not retried: {gate}"
    after = picture(chaos_platform["warehouse_url"], chaos_platform["book"])
    assert differences(chaos_platform["after_run"], after) == {}


def test_clearing_single_tasks_changes_nothing(chaos_platform, chaos_run):
    if "after_run" not in chaos_platform:
        pytest.skip("the faulty run did not end at rest")
    cluster = chaos_platform["cluster"]
    # A submit map index that was killed, one of the other rail worker, approve and finish.
    killed = next((task, index) for i in chaos_run["injections"] if i.kind == "kill_worker"
                  for task, index, _ in i.hit if task.startswith("submit_"))
    other = next((ti["task_id"], ti["map_index"]) for ti in cluster.task_instances(DAG_ID, chaos_run["run_id"])
                 if ti["task_id"].startswith("submit_") and ti["state"] == "success"
                 and _worker_of(cluster, ti["task_id"]) != _worker_of(cluster, killed[0]))
    tasks: list = [killed, other, "approve", "finish"]
    keys = [(t, -1) if isinstance(t, str) else t for t in tasks]
    before = _final_tries(cluster, chaos_run["run_id"])
    step = time.perf_counter()
    cleared = cluster.clear_task_instances(DAG_ID, chaos_run["run_id"], tasks)
    assert {(ti["task_id"], ti["map_index"]) for ti in cleared} == set(keys), cleared
    state = cluster.wait_for_run(DAG_ID, chaos_run["run_id"], timeout_s=RERUN_TIMEOUT_S)
    chaos_platform["timings"]["rerun_single_tasks"] = time.perf_counter() - step
    assert state == "success", f"the re-run ended {state}: {cluster.task_states(DAG_ID, chaos_run['run_id'])}"
    assert _unfinished(cluster, chaos_run["run_id"]) == {}
    final = _final_tries(cluster, chaos_run["run_id"])
    for key in keys:  # each ran again, in a new try, and succeeded
        assert final[key]["state"] == "success", (key, final[key])
        assert final[key]["try_number"] > before[key]["try_number"], (key, before[key], final[key])
    after = picture(chaos_platform["warehouse_url"], chaos_platform["book"])
    assert differences(chaos_platform["after_run"], after) == {}
    print(f"\ncleared and re-ran {tasks}")


def test_everything_it_started_is_stopped(chaos_platform):
    cluster, sandbox, pg = chaos_platform["cluster"], chaos_platform["sandbox"], chaos_platform["pg"]
    step = time.perf_counter()
    cluster.stop()
    sandbox.stop()
    pg.stop("fast")
    chaos_platform["timings"]["stop"] = time.perf_counter() - step
    assert cluster.leftover_pids() == []
    assert not sandbox.alive()
    assert not pg.running()
    print("\nchaos timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in chaos_platform["timings"].items()))
