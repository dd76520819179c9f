"""Per-channel lanes: each channel's queued jobs wait in its own table, and the broker carries at most
``Channel.stamping_concurrency`` lane tokens per channel - never one message per job.

- ``wake(schema)`` (after a job is queued) publishes a ``drain_lane`` task if the channel has a free
  token; most requests in a burst find the lane already awake and publish nothing.
- A ``drain_lane`` task claims the channel's oldest claimable job (``FOR UPDATE SKIP LOCKED``),
  stamps it, and goes on for one time slice; then, if work remains, it re-publishes itself to the
  BACK of the broker queue. Workers therefore alternate between channels: a surge of 50,000 jobs on
  one channel holds at most its few tokens in the queue, and another channel's job waits for a
  slice, not for 50,000 jobs.
- Tokens are counted in Redis. A token whose task was lost (broker flushed) is reclaimed by the
  sweeper, which also takes back jobs whose worker died mid-way (lease expired) and wakes any
  lane with work but no token.
"""

from __future__ import annotations

import contextlib
import logging
import time
from datetime import timedelta

import redis
from django.db import connection, transaction
from django.utils import timezone

from gateway.stamping import admission
from gateway.stamping.models import StampJob

logger = logging.getLogger(__name__)

TIME_SLICE_SECONDS = 2.0
LEASE = timedelta(minutes=2)
TOKEN_TTL_SECONDS = 600

# KEYS[1] lane slots, KEYS[2] backlog counter; ARGV budget, slot TTL, jobs just queued.
_CLAIM_LANE_SLOT = """
if tonumber(ARGV[3]) > 0 then redis.call('INCRBY', KEYS[2], ARGV[3]) end
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n >= tonumber(ARGV[1]) then return 0 end
redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""
_claim_slot = None


def _token_key(schema: str) -> str:
    return admission._key("lane-tokens", schema)


def _budget(schema: str) -> int:
    from tenants.models import Channel

    budget = Channel.objects.filter(schema_name=schema).values_list("stamping_concurrency", flat=True).first()
    return max(1, budget or 1)


def wake(*, schema_name: str, budget: int | None = None, queued: int = 0) -> bool:
    """Make sure the lane of ``schema_name`` is being drained (and count ``queued`` new jobs on its
    backlog in the same Redis call). Returns True if a task was published."""
    global _claim_slot
    budget = budget or _budget(schema_name)
    try:
        if _claim_slot is None:
            _claim_slot = admission.client().register_script(_CLAIM_LANE_SLOT)
        keys = [_token_key(schema_name), admission._key("backlog", schema_name)]
        if not _claim_slot(keys=keys, args=[budget, TOKEN_TTL_SECONDS, queued]):
            return False  # the lane has all its drainers already; they will find this job
    except redis.RedisError:
        logger.warning("lane tokens unavailable; publishing anyway", exc_info=True)
    return _publish(schema_name)


def _publish(schema_name: str) -> bool:
    from gateway.stamping.tasks import drain_lane_task

    try:
        drain_lane_task.apply_async(args=[schema_name], queue="stamping")
        return True
    except Exception:  # noqa: BLE001 - the jobs are safe in the table; the sweeper wakes the lane
        release_token(schema_name=schema_name)
        logger.warning("could not publish a lane task; the sweeper will", exc_info=True)
        return False


def keep_token(*, schema_name: str) -> None:
    with contextlib.suppress(redis.RedisError):
        admission.client().expire(_token_key(schema_name), TOKEN_TTL_SECONDS)


def release_token(*, schema_name: str) -> None:
    try:
        client = admission.client()
        if client.decr(_token_key(schema_name)) < 0:
            client.set(_token_key(schema_name), 0, ex=TOKEN_TTL_SECONDS)
    except redis.RedisError:
        pass


def claim_next() -> str | None:
    """Claim the oldest claimable queued job of the current channel; None when there is none."""
    with transaction.atomic():
        job = (
            StampJob.objects.select_for_update(skip_locked=True)
            .filter(status=StampJob.Status.QUEUED, available_at__lte=timezone.now())
            .order_by("created_at")
            .only("pk")
            .first()
        )
        if job is None:
            return None
        StampJob.objects.filter(pk=job.pk).update(status=StampJob.Status.PROCESSING, claimed_at=timezone.now())
        return job.pk


def has_claimable_work() -> bool:
    return StampJob.objects.filter(status=StampJob.Status.QUEUED, available_at__lte=timezone.now()).exists()


def drain(*, channel, time_slice: float = TIME_SLICE_SECONDS) -> tuple[int, bool]:
    """Stamp the channel's jobs for one time slice. Returns (jobs run, more work waiting)."""
    from gateway.stamping.services import run_stamp_job

    deadline = time.monotonic() + time_slice
    done = 0
    while time.monotonic() < deadline:
        job_id = claim_next()
        if job_id is None:
            return done, False
        run_stamp_job(channel=channel, job_id=job_id)
        done += 1
    return done, has_claimable_work()


def recover(*, lease: timedelta = LEASE) -> int:
    """Sweeper: jobs whose worker vanished (processing past the lease) go back to the queue, and
    the lane is woken if it has work. Safe to run anywhere, any number of times."""
    stale = StampJob.objects.filter(status=StampJob.Status.PROCESSING, claimed_at__lt=timezone.now() - lease)
    taken_back = stale.update(status=StampJob.Status.QUEUED, available_at=timezone.now())
    if has_claimable_work():
        # Tokens of lost tasks would keep the lane asleep: start over from the tasks that exist.
        try:
            admission.client().delete(_token_key(connection.schema_name))
        except redis.RedisError:
            pass
        wake(schema_name=connection.schema_name)
    return taken_back
