"""payouts.orchestration.executors: a HITL try answered quickly ends once, when its last worker ends."""

from __future__ import annotations

from queue import SimpleQueue
from types import SimpleNamespace

import pytest

from airflow.models.taskinstancekey import TaskInstanceKey
from airflow.utils.state import TaskInstanceState

from payouts.orchestration.executors import ResumeSafeLocalExecutor

APPROVAL = TaskInstanceKey("payout_run", "human_approval", "console__file__1", 1, -1)
SNAPSHOT = TaskInstanceKey("payout_run", "snapshot", "console__file__1", 1, -1)


@pytest.fixture()
def executor(monkeypatch):
    """The executor's bookkeeping without worker processes: workloads go to a plain queue."""
    executor = ResumeSafeLocalExecutor(parallelism=2)
    monkeypatch.setattr(ResumeSafeLocalExecutor, "_check_workers", lambda self: None)
    monkeypatch.setattr(ResumeSafeLocalExecutor, "_spawn_workers_with_gc_freeze", lambda self, n: None)
    executor.start()
    return executor


def send(executor, key):
    """What the scheduler does to run a workload: queue it, then hand it to a worker."""
    executor.queued_tasks[key] = SimpleNamespace(key=key)
    executor._process_workloads([SimpleNamespace(key=key)])


def worker_ends(executor, key, state=TaskInstanceState.SUCCESS):
    executor.result_queue.put((key, state, None))
    executor.sync()


def test_the_parking_workers_end_after_the_resume_is_not_the_tries_end(executor):
    send(executor, APPROVAL)                  # writes the request, parks in awaiting_input
    send(executor, APPROVAL)                  # answered at once: resumed before the first worker ended
    worker_ends(executor, APPROVAL)           # the parking worker ends late
    assert APPROVAL not in executor.event_buffer  # the scheduler is not told the try ended
    worker_ends(executor, APPROVAL)           # the resumed worker ends: now the try has ended
    assert executor.event_buffer.pop(APPROVAL)[0] == TaskInstanceState.SUCCESS


def test_a_parking_worker_that_ended_before_the_answer_reports_as_before(executor):
    send(executor, APPROVAL)
    worker_ends(executor, APPROVAL)
    assert executor.event_buffer.pop(APPROVAL)[0] == TaskInstanceState.SUCCESS
    send(executor, APPROVAL)
    worker_ends(executor, APPROVAL, TaskInstanceState.FAILED)
    assert executor.event_buffer.pop(APPROVAL)[0] == TaskInstanceState.FAILED


def test_other_tasks_end_with_their_one_worker(executor):
    send(executor, SNAPSHOT)
    worker_ends(executor, SNAPSHOT, TaskInstanceState.FAILED)
    assert executor.event_buffer.pop(SNAPSHOT)[0] == TaskInstanceState.FAILED
