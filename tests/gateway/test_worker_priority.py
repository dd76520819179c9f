"""A real worker's pool processes run below request handling: ``SCHED_IDLE`` and ``WORKER_NICE``
(``gateway.celery``), so that a web thread that wakes takes the CPU from a stamp at once. The worker's
main process (it takes the tasks from the broker) keeps its priority."""

from __future__ import annotations

import os
import time

import psutil
import pytest

from tests.live import private_broker, start_worker


def _pool_processes(worker, count: int, deadline: float) -> list[int]:
    """The pool's ``count`` processes, once each has run its start-up (its nice value is set by then)."""
    main = psutil.Process(worker.proc.pid)
    while time.monotonic() < deadline:
        children = [child.pid for child in main.children()]
        if len(children) == count and all(os.getpriority(os.PRIO_PROCESS, pid) > 0 for pid in children):
            return children
        time.sleep(0.1)
    raise AssertionError("the pool never started:\n" + worker.output())


@pytest.mark.parametrize(
    ("sched_idle", "policy"), [("true", os.SCHED_IDLE), ("false", os.SCHED_OTHER)], ids=["idle", "nice-only"]
)
def test_pool_processes_run_below_the_web(tmp_path, sched_idle, policy):
    env = private_broker(database=11) | {"WORKER_SCHED_IDLE": sched_idle, "WORKER_NICE": "10"}
    worker = start_worker(tmp_path, name=f"priority-{sched_idle}", queues="priority-test", concurrency=2, env=env)
    try:
        pool = _pool_processes(worker, 2, time.monotonic() + 60)
        for pid in pool:
            assert os.sched_getscheduler(pid) == policy
            assert os.getpriority(os.PRIO_PROCESS, pid) == 10
        assert os.sched_getscheduler(worker.proc.pid) == os.SCHED_OTHER
        assert os.getpriority(os.PRIO_PROCESS, worker.proc.pid) == 0
    finally:
        worker.stop()
