"""A worker that stamps builds its stamping engine in each pool child as the child starts
(``gateway.celery``), not on the child's first stamp; a worker that does not stamp never loads a key."""

from __future__ import annotations

import time

from tests.live import private_broker, start_worker

READY = "stamping engine ready"


def _wait_for(worker, predicate, what: str, timeout: float = 90.0) -> str:
    deadline = time.monotonic() + timeout
    while not predicate(output := worker.output()):
        assert worker.proc.poll() is None, f"the worker exited before {what}:\n{output}"
        assert time.monotonic() < deadline, f"no {what} after {timeout:.0f} s:\n{output}"
        time.sleep(0.1)
    return output


def test_each_child_of_a_stamping_worker_builds_its_engine_before_any_task(tmp_path):
    env = private_broker(database=12)  # (no task is sent: nothing but the start-up is watched)
    stamping = start_worker(tmp_path, name="engine-stamping", queues="stamping,default", concurrency=2, env=env)
    other = start_worker(tmp_path, name="engine-other", queues="default", concurrency=1, env=env)
    try:
        output = _wait_for(stamping, lambda text: text.count(READY) >= 2, "engine built in both children")
        assert "ForkPoolWorker-1" in output and "ForkPoolWorker-2" in output
        idle = _wait_for(other, lambda text: " ready." in text, "ready worker")
        time.sleep(2.0)  # (a build would have been logged by now: the stamping worker's took far less)
        assert READY not in other.output(), idle
    finally:
        stamping.stop()
        other.stop()
