"""A surge on one channel cannot bury another: the broker holds lane tokens, not one message per job."""

from __future__ import annotations

import pytest

from stamping import admission, lanes

pytestmark = pytest.mark.django_db


@pytest.fixture
def published(monkeypatch):
    sent: list[str] = []
    monkeypatch.setattr(lanes, "_publish", lambda schema, **_: sent.append(schema) or True)
    for schema in ("alpha", "beta"):
        admission.client().delete(lanes._token_key(schema), admission._key("backlog", schema))
    yield sent
    for schema in ("alpha", "beta"):
        admission.client().delete(lanes._token_key(schema), admission._key("backlog", schema))


def test_five_hundred_jobs_on_one_channel_put_only_its_budget_in_the_queue(published):
    for _ in range(500):
        lanes.wake(schema_name="alpha", budget=2, queued=1)
    lanes.wake(schema_name="beta", budget=2, queued=1)
    # The broker sees two alpha drainers and one beta drainer: beta's job waits for at most one
    # time slice of each alpha drainer, not for 500 alpha jobs.
    assert published == ["alpha", "alpha", "beta"]
    assert int(admission.client().get(admission._key("backlog", "alpha"))) == 500


def test_a_released_token_lets_the_lane_wake_again(published):
    assert lanes.wake(schema_name="alpha", budget=1, queued=1)
    assert not lanes.wake(schema_name="alpha", budget=1, queued=1)
    lanes.release_token(schema_name="alpha")
    assert lanes.wake(schema_name="alpha", budget=1, queued=1)
    assert published == ["alpha", "alpha"]


def test_the_waker_counts_every_job_and_wakes_within_the_budget(published):
    """Requests hand their wakes to the process's waker thread; however it folds them, every queued
    job is counted once and the lane gets no more drainers than its budget."""
    for _ in range(300):
        lanes.wake_soon(schema_name="alpha", budget=2, queued=1)
    lanes.wake_soon(schema_name="beta", budget=2, queued=3)
    assert lanes.flush_wakes()
    assert int(admission.client().get(admission._key("backlog", "alpha"))) == 300
    assert int(admission.client().get(admission._key("backlog", "beta"))) == 3
    assert sorted(published) == ["alpha", "alpha", "beta", "beta"]  # each lane's budget, however folded


def test_one_wake_for_several_jobs_starts_a_drainer_per_job_up_to_the_budget(published):
    assert lanes.wake(schema_name="alpha", budget=3, queued=2)
    assert published == ["alpha", "alpha"]
    assert lanes.wake(schema_name="alpha", budget=3, queued=5)
    assert published == ["alpha", "alpha", "alpha"]  # one slot was left
    assert not lanes.wake(schema_name="alpha", budget=3, queued=1)


def test_the_waker_runs_in_a_forked_process(published):
    """gunicorn forks its workers: a child has the waker object but not its thread, and starts its own."""
    import os

    lanes.wake_soon(schema_name="beta", budget=1, queued=1)  # the parent's thread exists now
    assert lanes.flush_wakes()
    pid = os.fork()
    if pid == 0:  # the child: no pytest here, only an exit code
        code = 1
        try:
            lanes.wake_soon(schema_name="alpha", budget=1, queued=2)
            code = 0 if lanes.flush_wakes(timeout=10) else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert int(admission.client().get(admission._key("backlog", "alpha"))) == 2


def test_wakes_noted_from_many_threads_are_each_counted_once(published):
    import threading

    def burst():
        for _ in range(50):
            lanes.wake_soon(schema_name="alpha", budget=2, queued=1)

    threads = [threading.Thread(target=burst) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert lanes.flush_wakes()
    assert int(admission.client().get(admission._key("backlog", "alpha"))) == 400
    assert published == ["alpha", "alpha"]


def test_a_waker_whose_thread_died_with_wakes_pending_delivers_them_on_the_next_note(published):
    """Only the first note of a batch signals the thread; a thread started afresh must be signalled too."""
    import os
    import threading

    waker = lanes.Waker()
    dead = threading.Thread(target=lambda: None)
    dead.start()
    dead.join()
    with waker._lock:  # as if the thread had died after a note and before taking the batch
        waker._pending = {"alpha": [2, 5]}
        waker._idle.clear()
        waker._thread, waker._pid = dead, os.getpid()
    waker.note(schema_name="alpha", budget=2, queued=1)
    assert waker.flush(timeout=10)
    assert int(admission.client().get(admission._key("backlog", "alpha"))) == 6


class _Wakes:
    """Stands in for ``lanes.wake``: records each call; ``saturated`` lanes start no drainer."""

    def __init__(self, saturated=()):
        import threading

        self.calls: list[tuple[str, int]] = []
        self.saturated = set(saturated)
        self.changed = threading.Condition()

    def __call__(self, *, schema_name, budget, queued):
        with self.changed:
            self.calls.append((schema_name, queued))
            self.changed.notify_all()
        return schema_name not in self.saturated

    def wait_for(self, predicate, timeout=10.0) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: predicate(self.calls), timeout)


def test_a_saturated_lane_gathers_its_wakes_while_other_lanes_are_woken_at_once(monkeypatch):
    """A lane whose drainers are all running needs its new jobs counted, not a wake per request: its
    notes are folded for SATURATED_GATHER_SECONDS. Another channel's job is not held up by that."""
    wakes = _Wakes(saturated={"alpha"})
    monkeypatch.setattr(lanes, "wake", wakes)
    monkeypatch.setattr(lanes, "SATURATED_GATHER_SECONDS", 3.0)  # far longer than the notes below take
    waker = lanes.Waker()
    waker.note(schema_name="alpha", budget=2, queued=1)
    assert waker.flush(timeout=10)
    assert wakes.calls == [("alpha", 1)]  # found saturated: deferred from now on
    for _ in range(40):
        waker.note(schema_name="alpha", budget=2, queued=1)
    waker.note(schema_name="beta", budget=2, queued=1)
    assert wakes.wait_for(lambda calls: ("beta", 1) in calls)
    assert ("alpha", 40) not in wakes.calls  # beta was woken while alpha's notes still gathered
    assert waker.flush(timeout=10)  # and the deferred notes are delivered, all in one wake
    assert wakes.calls == [("alpha", 1), ("beta", 1), ("alpha", 40)]


def test_a_lane_that_started_a_drainer_is_not_deferred(monkeypatch):
    wakes = _Wakes()
    monkeypatch.setattr(lanes, "wake", wakes)
    monkeypatch.setattr(lanes, "SATURATED_GATHER_SECONDS", 3.0)
    waker = lanes.Waker()
    for expected in range(1, 4):
        waker.note(schema_name="alpha", budget=2, queued=1)
        assert waker.flush(timeout=10)
        assert len(wakes.calls) == expected  # each woken on its own: none was deferred
    assert waker._deferred == {}


def test_a_note_for_a_deferred_lane_reaches_a_thread_with_nothing_else_pending(monkeypatch):
    """The thread waits without a timeout when nothing is pending: a note for a deferred lane must
    still wake it, or the job would wait for the sweeper."""
    wakes = _Wakes(saturated={"alpha"})
    monkeypatch.setattr(lanes, "wake", wakes)
    monkeypatch.setattr(lanes, "SATURATED_GATHER_SECONDS", 0.2)
    waker = lanes.Waker()
    waker.note(schema_name="alpha", budget=1, queued=1)
    assert waker.flush(timeout=10)
    waker.note(schema_name="alpha", budget=1, queued=2)  # deferred, and the thread is idle
    assert waker.flush(timeout=10)
    assert wakes.calls == [("alpha", 1), ("alpha", 2)]


def test_after_the_tokens_are_started_over_a_drainer_of_the_old_generation_retires(published):
    """The sweeper starts a lane's tokens over when tasks may be lost (a worker died, and once a minute
    while the lane has work); the drainers that were not lost must not live on beside the new ones."""
    from django_tenants.utils import schema_context

    from stamping import services
    from stamping.models import StampJob
    from stamping.tasks import drain_lane_task

    with schema_context("alpha"):  # (inside this test's transaction: rolled back after it)
        for job in StampJob.objects.filter(status__in=[StampJob.Status.QUEUED, StampJob.Status.PROCESSING]):
            services._fail(job, code="abandoned", detail="left open by an earlier test")
    tokens = lanes._token_key("alpha")

    assert lanes.wake(schema_name="alpha", budget=1, queued=1)
    old = lanes._generation(admission.client().get(lanes._generation_key("alpha")))
    lanes.forget_tokens(schema_name="alpha")  # as the sweeper does ...
    assert lanes.wake(schema_name="alpha", budget=1)  # ... before it wakes the lane: a new drainer
    new = lanes._generation(admission.client().get(lanes._generation_key("alpha")))
    assert new != old and int(admission.client().get(tokens)) == 1

    # The old drainer ends its slice (the lane is empty): it gives back no token, the new one's is kept.
    drain_lane_task("alpha", generation=old)
    assert int(admission.client().get(tokens)) == 1
    assert published == ["alpha", "alpha"]  # and it published nothing

    drain_lane_task("alpha", generation=new)  # the current drainer gives its token back
    assert int(admission.client().get(tokens) or 0) == 0
