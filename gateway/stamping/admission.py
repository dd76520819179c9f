"""Admission control and fairness for stamping.

- **Drain rate**: every finished job is counted in Redis in 10-second buckets, per channel and in
  total; the rate over the last minute turns a queue position into an honest ETA.
- **Backlog limits**: a channel whose backlog passes its limit is answered ``503 overloaded`` with
  ``Retry-After`` (the time to drain what is queued), so a surge on one channel is refused at its
  own door before it can fill the workers' queue for everyone.
- **Per-channel concurrency**: see ``lanes`` - a channel has at most ``Channel.stamping_concurrency``
  drainers, so one channel can never occupy every worker.

Redis being down never blocks stamping: the counters are advisory and fall back to defaults.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from dataclasses import dataclass

import redis
from django.conf import settings

from gateway.stamping.models import StampJob

logger = logging.getLogger(__name__)

BUCKET_SECONDS = 10
WINDOW_BUCKETS = 6

_client: redis.Redis | None = None


def client() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=0.25, socket_connect_timeout=0.25)
    return _client


def _key(*parts: object) -> str:
    return ":".join(["stamping", settings.DATABASES["default"]["NAME"], *map(str, parts)])


def record_completion(*, channel_schema: str) -> None:
    """A job ended (stamped or failed): count it for the drain rate and take it off the backlog."""
    bucket = int(time.time()) // BUCKET_SECONDS
    try:
        pipe = client().pipeline(transaction=False)
        pipe.decr(_key("backlog", channel_schema))
        for scope in ("all", channel_schema):
            key = _key("done", scope, bucket)
            pipe.incr(key)
            pipe.expire(key, BUCKET_SECONDS * (WINDOW_BUCKETS + 2))
        pipe.execute()
    except redis.RedisError:
        logger.warning("could not count a finished stamp", exc_info=True)


def drain_rate(*, scope: str = "all") -> float:
    """Finished stamps per second over the last minute (0.0 when unknown)."""
    now = int(time.time()) // BUCKET_SECONDS
    try:
        values = client().mget([_key("done", scope, now - i) for i in range(1, WINDOW_BUCKETS + 1)])
    except redis.RedisError:
        return 0.0
    return sum(int(v) for v in values if v) / (BUCKET_SECONDS * WINDOW_BUCKETS)


def count_backlog() -> int:
    """Jobs of the current channel (schema) waiting or running, counted in the database (O(backlog))."""
    return StampJob.objects.filter(status__in=[StampJob.Status.QUEUED, StampJob.Status.PROCESSING]).count()


def backlog() -> int:
    """Jobs of the current channel waiting or running, from a Redis counter (O(1) on the request path).

    The counter goes up when a job is queued and down when it ends; the stale-job sweeper resets it
    to the database's count every minute, so a crash can skew it for a minute at most. Without Redis
    (or before the first count) the database is asked.
    """
    from django.db import connection

    key = _key("backlog", connection.schema_name)
    try:
        value = client().get(key)
    except redis.RedisError:
        return count_backlog()
    if value is None:
        return resync_backlog()
    return max(0, int(value))


def resync_backlog() -> int:
    from django.db import connection

    actual = count_backlog()
    with contextlib.suppress(redis.RedisError):
        client().set(_key("backlog", connection.schema_name), actual, ex=600)
    return actual


def eta_seconds(position: int, *, rate: float | None = None) -> int:
    """Seconds until the job at 0-based ``position`` is done, at the measured (or assumed) drain rate."""
    rate = (drain_rate() if rate is None else rate) or settings.STAMPING_ASSUMED_RATE
    return max(1, math.ceil((position + 1) / rate))


@dataclass(frozen=True)
class QueueState:
    waiting: int  # jobs of this channel queued or running
    rate: float  # stamps finished per second over the last minute (0.0 when unknown)

    def eta_seconds(self, position: int) -> int:
        return eta_seconds(position, rate=self.rate)


def state_reads() -> tuple:
    """The Redis commands behind :func:`queue_state`, for a caller that sends them with its own round
    trip (the stamp request sends them with its rate-limit check)."""
    from django.db import connection

    now = int(time.time()) // BUCKET_SECONDS
    return (
        ("GET", _key("backlog", connection.schema_name)),
        ("MGET", *[_key("done", "all", now - i) for i in range(1, WINDOW_BUCKETS + 1)]),
    )


def queue_state(answers: list | None = None) -> QueueState:
    """Backlog and drain rate: from ``answers`` to :func:`state_reads` when the caller has them, else in
    one Redis round trip of its own."""
    if answers is None:
        try:
            pipe = client().pipeline(transaction=False)
            for command in state_reads():
                pipe.execute_command(*command)
            answers = pipe.execute()
        except redis.RedisError:
            return QueueState(waiting=count_backlog(), rate=0.0)
    value, buckets = answers
    waiting = resync_backlog() if value is None else max(0, int(value))
    return QueueState(waiting=waiting, rate=sum(int(v) for v in buckets if v) / (BUCKET_SECONDS * WINDOW_BUCKETS))


def admit(*, channel, new_jobs: int = 1, answers: list | None = None) -> QueueState:
    """Refuse with 503 when the channel's backlog is past its limit; else return the queue ahead.
    ``answers``: the caller's answers to :func:`state_reads`, if it has them."""
    from gateway.stamping.errors import Overloaded

    state = queue_state(answers)
    waiting = state.waiting
    if waiting + new_jobs > settings.STAMPING_CHANNEL_BACKLOG_LIMIT:
        retry_after = state.eta_seconds(waiting)
        error = Overloaded(
            f"{channel.name} has {waiting} documents waiting to be stamped, the most it queues at once. "
            f"Nothing was charged. Try again in about {retry_after} seconds.",
            extra={"queue_depth": waiting, "retry_after": retry_after},
        )
        error.headers = {"Retry-After": str(retry_after)}
        raise error
    return state
