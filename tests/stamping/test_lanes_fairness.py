"""A surge on one channel cannot bury another: the broker holds lane tokens, not one message per job."""

from __future__ import annotations

import pytest

from gateway.stamping import admission, lanes

pytestmark = pytest.mark.django_db


@pytest.fixture
def published(monkeypatch):
    sent: list[str] = []
    monkeypatch.setattr(lanes, "_publish", lambda schema: sent.append(schema) or True)
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
