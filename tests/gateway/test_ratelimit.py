"""Rate limits per API key and per channel, against the real Redis (and a Redis that is not there)."""

from __future__ import annotations

import logging
import uuid

import pytest
import redis

from gateway import ratelimit
from gateway.ratelimit import LocalLimiter, Policy, bucket_keys, check_rate_limit, policies_for

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.gateway.urls_edge")]

UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1


@pytest.fixture(autouse=True)
def _own_buckets(settings):
    """Every test gets buckets of its own (a fresh namespace) and a limiter with no outage memory."""
    settings.RATE_LIMIT_NAMESPACE = f"test-{uuid.uuid4().hex}"
    ratelimit.reset_fallback_state()
    yield
    ratelimit.reset_fallback_state()


@pytest.fixture
def limits(channels):
    """``limits("alpha", per_key=.., per_channel=.., burst=..)`` sets a channel's limits for this test."""

    def set_limits(code: str, **values):
        fields = {f"rate_limit_{name}": value for name, value in values.items()}
        channels[code].__class__.objects.filter(pk=channels[code].pk).update(**fields)
        for name, value in fields.items():
            setattr(channels[code], name, value)
        return channels[code]

    return set_limits


@pytest.fixture
def raw_redis(settings):
    client = redis.Redis.from_url(settings.REDIS_URL)
    yield client
    client.close()


def parse_ratelimit(value: str) -> dict[str, tuple[int, int]]:
    """``'"key";r=2;t=1, "channel";r=9;t=1'`` -> ``{"key": (2, 1), "channel": (9, 1)}``"""
    parsed = {}
    for member in value.split(", "):
        name, r, t = member.split(";")
        parsed[name.strip('"')] = (int(r.removeprefix("r=")), int(t.removeprefix("t=")))
    return parsed


def bucket_values(raw_redis, channel, api_key_id):
    return [raw_redis.get(k) for k in bucket_keys(channel=channel, api_key_id=api_key_id)]


def test_every_authenticated_response_carries_ratelimit_headers(client_for):
    response = client_for("alpha").get("/edge/echo")
    assert response.status_code == 200
    # Defaults: 50/s per key with a burst of 100; 200/s per channel (burst max(100, 200)).
    assert response["RateLimit-Policy"] == '"key";q=100;w=2, "channel";q=200;w=1'
    assert response["RateLimit"] == '"key";r=99;t=1, "channel";r=199;t=1'
    assert "Retry-After" not in response


def test_requests_past_the_burst_get_a_429_problem_and_charge_nothing(client_for, limits, channel_keys, raw_redis):
    from gateway.models import ApiKey

    # The channel bucket (4 at 4/s) keeps room after 3 requests.
    alpha = limits("alpha", per_key=1, per_channel=4, burst=3)
    key_id = ApiKey.objects.get(prefix=channel_keys["alpha"].split("_")[1]).pk
    client = client_for("alpha")
    answers = [parse_ratelimit(client.get("/edge/echo")["RateLimit"]) for _ in range(3)]
    # (#15: an empty bucket's t is when the next request fits, no longer when it is full: was (0, 3))
    assert [a["key"] for a in answers] == [(2, 1), (1, 2), (0, 1)]
    assert answers[-1]["channel"][0] >= 1
    before = bucket_values(raw_redis, alpha, key_id)

    refused = client.get("/edge/echo")

    assert refused.status_code == 429
    assert refused["Content-Type"] == "application/problem+json"
    body = refused.json()
    assert body["code"] == "rate_limited"
    assert body["request_id"] == refused["X-Request-Id"]
    assert refused["Retry-After"] == "1"
    assert refused["RateLimit-Policy"] == '"key";q=3;w=3, "channel";q=4;w=1'
    assert parse_ratelimit(refused["RateLimit"])["key"] == (0, 1)  # agrees with Retry-After (#15: was t=3)
    # Neither bucket was charged: each TAT is as it was (or already expired, as a full bucket does).
    after = bucket_values(raw_redis, alpha, key_id)
    assert all(now is None or now == then for now, then in zip(after, before, strict=True))
    assert after[0] == before[0]  # the key's bucket lives 3 s: it is still there


def test_the_channel_limit_is_shared_by_all_its_keys(client_for, limits):
    from gateway.apikeys import issue_api_key

    alpha = limits("alpha", per_key=100, per_channel=1, burst=2)
    second_key = issue_api_key(channel=alpha, name="second terminal").plaintext
    first = client_for("alpha")
    assert [first.get("/edge/echo").status_code for _ in range(2)] == [200, 200]

    refused = client_for("alpha", key=second_key).get("/edge/echo")

    assert refused.status_code == 429
    state = parse_ratelimit(refused["RateLimit"])
    assert state["key"] == (2, 0)  # the second key's own bucket is untouched (full: resets now)
    assert state["channel"] == (0, 1)  # 2 requests at 1/s: the next fits in 1 s (#15: was t=2, full again)
    assert refused["Retry-After"] == "1"


def test_a_refusal_by_the_key_bucket_does_not_charge_the_channel_bucket(channels, limits):
    alpha = limits("alpha", per_key=1, per_channel=10, burst=1)
    assert check_rate_limit(channel=alpha, api_key_id=1).allowed
    for _ in range(5):
        assert not check_rate_limit(channel=alpha, api_key_id=1).allowed
    other_key = check_rate_limit(channel=alpha, api_key_id=2)
    assert other_key.allowed
    # 10 - key 1's one request - key 2's one request (9 if 100 ms passed); charged refusals would leave <= 4
    assert other_key.buckets[1].remaining >= 8


def test_one_channel_exhausted_leaves_another_alone(client_for, limits):
    limits("alpha", per_key=1, burst=1)
    alpha = client_for("alpha")
    assert [alpha.get("/edge/echo").status_code for _ in range(2)] == [200, 429]
    assert client_for("beta").get("/edge/echo").status_code == 200


def test_unauthenticated_requests_are_refused_before_any_bucket_is_touched(client_for, channels, raw_redis):
    response = client_for("alpha", key=None).get("/edge/echo")
    assert response.status_code == 401
    assert "RateLimit" not in response
    assert raw_redis.get(bucket_keys(channel=channels["alpha"], api_key_id=0)[1]) is None


def test_the_script_is_loaded_again_after_redis_forgets_it(channels, raw_redis):
    assert check_rate_limit(channel=channels["alpha"], api_key_id=7).source == "redis"
    raw_redis.script_flush()  # as after a Redis restart or failover: EVALSHA answers NOSCRIPT
    decision = check_rate_limit(channel=channels["alpha"], api_key_id=7)
    assert decision.source == "redis"
    assert decision.buckets[0].remaining == 98


def test_an_unreachable_redis_falls_back_to_a_bounded_local_limiter(client_for, limits, settings, caplog):
    limits("alpha", per_key=1, burst=3)
    settings.REDIS_URL = UNREACHABLE_REDIS
    client = client_for("alpha")
    with caplog.at_level(logging.WARNING, logger="gateway.ratelimit"):
        statuses = [client.get("/edge/echo").status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]  # open for the API, never unbounded
    warnings = [r for r in caplog.records if r.name == "gateway.ratelimit"]
    assert len(warnings) == 1  # one warning per outage, not one per request
    assert "fallback" in warnings[0].getMessage()


def test_the_limiter_goes_back_to_redis_when_it_answers_again(channels, settings, monkeypatch, caplog):
    monkeypatch.setattr(ratelimit, "REDIS_RETRY_SECONDS", 0.0)  # try Redis again on every call
    real_redis = settings.REDIS_URL
    settings.REDIS_URL = UNREACHABLE_REDIS
    assert check_rate_limit(channel=channels["alpha"], api_key_id=3).source == "local"
    settings.REDIS_URL = real_redis
    with caplog.at_level(logging.WARNING, logger="gateway.ratelimit"):
        decision = check_rate_limit(channel=channels["alpha"], api_key_id=3)
    assert decision.source == "redis"
    assert any("reachable again" in r.getMessage() for r in caplog.records)


def test_the_local_limiter_never_grows_past_its_bound():
    limiter = LocalLimiter(max_buckets=10)
    policies = (Policy("key", rate=1, burst=5), Policy("channel", rate=1000, burst=1000))
    for n in range(100):
        limiter.check((f"k{n}", "c"), policies)
    assert len(limiter._tats) <= 10


def test_the_local_limiter_refuses_without_charging():
    limiter = LocalLimiter()
    policies = (Policy("key", rate=1, burst=1), Policy("channel", rate=1, burst=5))
    assert limiter.check(("k", "c"), policies)[0] == 1
    channel_tat = limiter._tats["c"]
    assert limiter.check(("k", "c"), policies)[0] == 0
    assert limiter._tats["c"] == channel_tat


@pytest.mark.parametrize(
    ("per_key", "per_channel", "burst", "expected"),
    [
        (50, 200, 100, ((50, 100, 2), (200, 200, 1))),
        (3, 5, 10, ((3, 10, 4), (5, 10, 2))),
        (0, 0, 0, ((1, 1, 1), (1, 1, 1))),  # zeros never divide by zero and never mean "unlimited"
    ],
)
def test_policies_come_from_the_channel_row(channels, per_key, per_channel, burst, expected):
    alpha = channels["alpha"]
    alpha.rate_limit_per_key, alpha.rate_limit_per_channel, alpha.rate_limit_burst = per_key, per_channel, burst
    assert tuple((p.rate, p.burst, p.window) for p in policies_for(alpha)) == expected


def test_reads_ride_along_in_the_same_round_trip(channels, raw_redis):
    raw_redis.set("ride-along", b"42")
    decision = check_rate_limit(
        channel=channels["alpha"], api_key_id=11, reads=(("GET", "ride-along"), ("MGET", "ride-along", "absent"))
    )
    assert decision.allowed and decision.source == "redis"
    assert decision.reads == [b"42", [b"42", None]]


def test_reads_survive_redis_forgetting_the_script(channels, raw_redis):
    raw_redis.set("ride-along", b"7")
    raw_redis.script_flush()
    decision = check_rate_limit(channel=channels["alpha"], api_key_id=12, reads=(("GET", "ride-along"),))
    assert decision.source == "redis" and decision.reads == [b"7"]
    assert decision.buckets[0].remaining == 99  # charged once, not twice, across the reload


def test_reads_are_none_when_redis_is_unreachable(channels, settings):
    settings.REDIS_URL = UNREACHABLE_REDIS
    decision = check_rate_limit(channel=channels["alpha"], api_key_id=13, reads=(("GET", "ride-along"),))
    assert decision.source == "local" and decision.reads is None


def test_a_connection_redis_closed_is_replaced_not_reused(channels, raw_redis):
    """The limiter talks on its pool's connections directly: one the server dropped between requests
    must be reconnected, and one that failed mid-reply must not go back to the pool."""
    assert check_rate_limit(channel=channels["alpha"], api_key_id=14).source == "redis"
    raw_redis.client_kill_filter(_type="normal", skipme=True)  # every other client, the limiter's included
    decision = check_rate_limit(channel=channels["alpha"], api_key_id=14, reads=(("GET", "ride-along"),))
    assert decision.source == "redis" and decision.buckets[0].remaining == 98

    client, _ = ratelimit._client_and_script(ratelimit.settings.REDIS_URL)
    pool = client.connection_pool
    conn = pool.get_connection()
    pool.release(conn)
    with pytest.raises(redis.exceptions.TimeoutError):
        # a reply that never comes (BLPOP on an empty list outlives the socket timeout)
        ratelimit._round_trip(client, [("BLPOP", f"never-{uuid.uuid4().hex}", 0)])
    assert conn._sock is None  # closed, so the next user reconnects instead of reading BLPOP's reply
    assert check_rate_limit(channel=channels["alpha"], api_key_id=14).source == "redis"
    assert ratelimit._round_trip(client, [("PING",)]) == [b"PONG"]  # in step: not BLPOP's late reply


def test_an_error_reply_is_returned_in_its_place_and_the_rest_still_read(channels, raw_redis):
    raw_redis.hset("a-hash", "f", "v")
    raw_redis.set("a-string", b"s")
    client, _ = ratelimit._client_and_script(ratelimit.settings.REDIS_URL)
    replies = ratelimit._round_trip(client, [("GET", "a-hash"), ("GET", "a-string")])
    assert isinstance(replies[0], redis.exceptions.ResponseError) and "WRONGTYPE" in str(replies[0])
    assert replies[1] == b"s"
    assert ratelimit._round_trip(client, [("GET", "a-string")]) == [b"s"]  # the connection is in step


@pytest.mark.parametrize(("per_key", "per_channel", "burst"), [(1, 4, 3), (100, 1, 2), (2, 2, 5), (1, 1, 1)])
def test_on_a_429_retry_after_is_the_t_of_the_empty_buckets(client_for, limits, per_key, per_channel, burst):
    limits("alpha", per_key=per_key, per_channel=per_channel, burst=burst)
    client = client_for("alpha")
    refused = next(r for r in (client.get("/edge/echo") for _ in range(burst + 2)) if r.status_code == 429)

    state = parse_ratelimit(refused["RateLimit"])

    empty = [t for r, t in state.values() if r == 0]
    assert empty, state
    assert refused["Retry-After"] == str(max(empty))


def test_a_costly_refused_request_says_the_same_wait_in_both_headers():
    from gateway.ratelimit import BucketState, Decision, Policy

    key, channel = Policy("client", rate=1, burst=3), Policy("public", rate=100, burst=100)
    # the client's bucket holds 2.5 s of requests; the next costs 3: it fits in 2.5 s
    decision = Decision(
        allowed=False,
        buckets=(BucketState(key, 0, 2.5), BucketState(channel, 99, 0.01)),
        retry_after=2.5,
        source="local",
        cost=3,
    )

    headers = decision.headers()

    assert headers["RateLimit"] == '"client";r=0;t=3, "public";r=99;t=1'
    assert headers["Retry-After"] == "3"
