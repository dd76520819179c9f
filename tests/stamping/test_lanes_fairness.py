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
