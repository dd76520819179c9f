"""The per-process API key cache: no database read for a known key, and never a stale answer.

Revoking a key elsewhere (another process) is simulated the way it reaches this one: the row changes
in the database and the channel's key epoch moves in Redis, with nothing said to this process.
"""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from gateway import apikeys, ratelimit
from gateway.apikeys import issue_api_key, revoke_api_key
from gateway.models import ApiKey

pytestmark = pytest.mark.django_db

URL = "/api/v1/document-types"
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"


@pytest.fixture(autouse=True)
def _fresh(settings):
    settings.RATE_LIMIT_NAMESPACE = f"test-{uuid.uuid4().hex}"
    ratelimit.reset_fallback_state()
    apikeys._cache.clear()
    yield
    ratelimit.reset_fallback_state()
    apikeys._cache.clear()


@pytest.fixture
def key(channels):
    return issue_api_key(channel=channels["alpha"], name="cache", scopes=("read",))


def key_reads(captured) -> int:
    return sum('FROM "gateway_apikey"' in q["sql"] for q in captured.captured_queries)


def test_a_known_key_is_not_read_from_the_database_again(client_for, key):
    client = client_for("alpha", key=key.plaintext)
    assert client.get(URL).status_code == 200
    with CaptureQueriesContext(connection) as captured:
        assert client.get(URL).status_code == 200
    assert key_reads(captured) == 0


def test_a_key_revoked_in_this_process_is_refused_on_the_next_request(client_for, key):
    client = client_for("alpha", key=key.plaintext)
    assert client.get(URL).status_code == 200
    revoke_api_key(api_key=key.api_key)
    response = client.get(URL)
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_api_key"


def test_a_key_revoked_by_another_process_is_refused_on_the_next_request(client_for, key, channels):
    client = client_for("alpha", key=key.plaintext)
    assert client.get(URL).status_code == 200  # cached here
    # Another process revokes: the row changes and the epoch moves; this process's cache is untouched.
    ApiKey.objects.filter(pk=key.api_key.pk).update(revoked_at=timezone.now())
    assert ratelimit.bump_keys_epoch(channel_id=channels["alpha"].pk)
    assert key.api_key.prefix in apikeys._cache
    with CaptureQueriesContext(connection) as captured:
        response = client.get(URL)
    assert response.status_code == 401
    assert key_reads(captured) == 1  # the moved epoch sent it back to the database


def test_without_the_epoch_moving_the_cache_would_answer(client_for, key):
    """The converse of the test above: what makes the cached answer stand is the unchanged epoch, so
    the test above fails if the epoch check is lost."""
    client = client_for("alpha", key=key.plaintext)
    assert client.get(URL).status_code == 200
    ApiKey.objects.filter(pk=key.api_key.pk).update(name="renamed")  # a change that needs no announcement
    with CaptureQueriesContext(connection) as captured:
        assert client.get(URL).status_code == 200
    assert key_reads(captured) == 0


def test_a_cached_entry_is_read_again_after_its_lifetime(client_for, key, monkeypatch):
    client = client_for("alpha", key=key.plaintext)
    assert client.get(URL).status_code == 200
    monkeypatch.setattr(apikeys, "CACHE_SECONDS", 0.0)  # every entry is past its lifetime
    ApiKey.objects.filter(pk=key.api_key.pk).update(revoked_at=timezone.now())  # a change never announced
    assert client.get(URL).status_code == 401


def test_the_wrong_secret_is_refused_even_with_the_prefix_cached(client_for, key):
    assert client_for("alpha", key=key.plaintext).get(URL).status_code == 200
    forged = key.plaintext[:-4] + ("AAAA" if not key.plaintext.endswith("AAAA") else "BBBB")
    assert client_for("alpha", key=forged).get(URL).status_code == 401


def test_a_cached_key_still_works_only_on_its_own_channel(client_for, key):
    assert client_for("alpha", key=key.plaintext).get(URL).status_code == 200
    assert client_for("beta", key=key.plaintext).get(URL).status_code == 401


def test_without_redis_nothing_is_cached_and_revocation_still_holds(client_for, key, settings):
    settings.REDIS_URL = UNREACHABLE_REDIS
    client = client_for("alpha", key=key.plaintext)
    assert client.get(URL).status_code == 200
    assert apikeys._cache == {}
    ApiKey.objects.filter(pk=key.api_key.pk).update(revoked_at=timezone.now())  # and Redis cannot be told
    assert client.get(URL).status_code == 401


def test_a_key_tried_on_another_channels_host_is_not_cached_against_that_channel(client_for, key, channels):
    """Otherwise it would carry beta's epoch, and a later, equal epoch of alpha could confirm it."""
    assert client_for("beta", key=key.plaintext).get(URL).status_code == 401
    assert key.api_key.prefix not in apikeys._cache


def test_a_view_that_skips_the_rate_limit_still_confirms_a_cached_key(client_for, key, channels, monkeypatch):
    from gateway.http.edge import EdgeMixin

    client = client_for("alpha", key=key.plaintext)
    assert client.get(URL).status_code == 200  # cached
    monkeypatch.setattr(EdgeMixin, "apply_rate_limit", lambda self, request: None)
    ApiKey.objects.filter(pk=key.api_key.pk).update(revoked_at=timezone.now())
    assert ratelimit.bump_keys_epoch(channel_id=channels["alpha"].pk)
    assert client.get(URL).status_code == 401  # the permission check confirmed it against the epoch
