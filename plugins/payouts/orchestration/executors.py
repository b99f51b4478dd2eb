"""Airflow's LocalExecutor, reporting a try's end only when its last worker ends.

A Human-in-the-loop task runs twice under one try: a worker writes the request and parks the
task (awaiting_input), and after the answer a second worker resumes it in execute_complete.
Both workloads have the same TaskInstanceKey. When the answer comes quickly, the first
worker can end only after the second one has started. Airflow 3.3's LocalExecutor reports
each worker's end under that key, so the scheduler reads the parking worker's end as the
end of the resumed try, finds the task instance queued or running, takes it for a task
killed externally and fails the approval the person has just given ("reported that the task
instance ... finished with state success, but the task instance's state attribute is
queued"). The CeleryExecutor follows only the newest workload of a key and is not affected.

This executor counts the workloads in flight per key and reports a try's end once the last
of them has ended; the superseded worker's result is dropped.
"""

from __future__ import annotations

from collections import Counter

from airflow.executors.local_executor import LocalExecutor
from airflow.models.taskinstancekey import TaskInstanceKey
from airflow.utils.state import TaskInstanceState

_ENDED = (TaskInstanceState.SUCCESS, TaskInstanceState.FAILED)


class ResumeSafeLocalExecutor(LocalExecutor):
    def start(self) -> None:
        super().start()
        self._in_flight: Counter[TaskInstanceKey] = Counter()

    def _process_workloads(self, workload_list) -> None:
        for workload in workload_list:
            if isinstance(workload.key, TaskInstanceKey):
                self._in_flight[workload.key] += 1
        super()._process_workloads(workload_list)

    def _read_results(self) -> None:
        while not self.result_queue.empty():
            key, state, _exc = self.result_queue.get()
            if isinstance(key, TaskInstanceKey) and state in _ENDED and self._in_flight[key] > 0:
                self._in_flight[key] -= 1
                if self._in_flight[key] > 0:  # another worker of this try still runs: it reports the end
                    continue
                del self._in_flight[key]
            self.change_state(key, state)
