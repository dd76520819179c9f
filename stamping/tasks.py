"""Stamping tasks. Each takes the channel's schema name, and refuses to run without one."""

from __future__ import annotations

import logging
import time

from celery import shared_task
from django.db import InterfaceError, OperationalError
from django_tenants.utils import schema_context

from stamping import admission, lanes, services
from tenants.models import Channel

logger = logging.getLogger(__name__)


def _channel(schema_name: str) -> Channel | None:
    if not schema_name or schema_name == "public":
        logger.error("stamping task without a channel schema refused", extra={"schema": schema_name})
        return None
    return Channel.objects.filter(schema_name=schema_name).first()


@shared_task(
    name=lanes.DRAIN_LANE_TASK,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def drain_lane_task(
    schema_name: str,
    published_at: float | None = None,
    fresh: bool = False,
    ticket: str | None = None,
    outage: int = 0,
    generation: str | None = None,
) -> int:
    """Stamp one channel's queued jobs for a time slice, then yield: re-queue at the back if work remains.

    The slice ends early, after the job in hand, when another lane's drainer waits for a worker: the
    workers pass from lane to lane job by job under contention, and a quiet channel's job waits for
    one job of the surge, not a slice of it. The task holds one of the channel's lane tokens for its
    whole life (and its re-publications); the token is released only when the lane is empty, so the
    channel's concurrency never exceeds its budget. Each slice reports its worker time per job and, for
    a fresh wake, its wait for a worker: the lane model's measurements (``admission``).

    When the database goes away under the slice (a restart, a failover, a cut connection), the task
    does not fail and drop its token, which left the lane asleep until the sweeper started its tokens
    over (up to a minute after a PostgreSQL restart in ``bench/surge.py --faults``): it publishes itself
    again, token kept, after a short backoff (``outage``: how many times in a row; 0.5 s, doubling, at
    most 5 s). A job it had claimed is taken back by the sweeper (its owner lock went with the
    connection) or by the next claim after the restart (the claim was never flushed).

    A drainer of an older ``generation`` than the lane's (the sweeper started its tokens over after
    this one was published) retires after its slice: the lane's current drainers hold its tokens.
    """
    global _previous_end
    began = time.monotonic()
    # Back to back with this process's previous task: the time between them (its bookkeeping, the
    # broker, the pool handing over the next task) is worker time each job costs too.
    gap = began - _previous_end if _previous_end is not None else BUSY_GAP_SECONDS
    overhead = gap if 0 <= gap < BUSY_GAP_SECONDS else 0.0
    try:
        return _drain_slice(schema_name, published_at, fresh, ticket, began, overhead, generation)
    except (OperationalError, InterfaceError):
        delay = min(OUTAGE_RETRY_MAX_SECONDS, OUTAGE_RETRY_FIRST_SECONDS * 2**outage)
        logger.warning("database unavailable: lane %s drains again in %.1f s", schema_name, delay, exc_info=True)
        queue = (drain_lane_task.request.delivery_info or {}).get("routing_key") or "stamping"
        lanes.publish_later(schema_name, countdown=delay, outage=outage + 1, queue=queue, generation=generation)
        return 0
    finally:
        _previous_end = time.monotonic()


_previous_end: float | None = None
BUSY_GAP_SECONDS = 0.25  # a gap shorter than this between two tasks of a process is overhead, not idleness
OUTAGE_RETRY_FIRST_SECONDS = 0.5  # a drainer that lost the database comes back after this, doubling ...
OUTAGE_RETRY_MAX_SECONDS = 5.0  # ... up to this


def _drain_slice(schema_name, published_at, fresh, ticket, began, overhead, generation) -> int:
    lanes.started(ticket)
    channel = _channel(schema_name)
    if channel is None:
        return 0
    waited = max(0.0, time.time() - published_at) if (fresh and published_at) else None
    with schema_context(schema_name):
        timings: dict = {}
        done, more = services.drain(
            channel=channel, should_yield=lambda: lanes.others_waiting(schema_name), timings=timings
        )
        seconds = time.monotonic() - began + overhead
        first = timings["first"] - began if "first" in timings else None
        admission.record_slice(channel_schema=schema_name, jobs=done, seconds=seconds, dispatch=waited, first=first)
        if not lanes.is_current(schema_name=schema_name, generation=generation):
            return done  # the lane's tokens were started over: newer drainers hold them, this one retires
        if more:
            lanes.keep_token(schema_name=schema_name)  # a long surge must not outlive its token's TTL
            lanes._publish(schema_name)  # keeps the token, goes to the back of the queue
            return done
        lanes.release_token(schema_name=schema_name)
        if lanes.has_claimable_work():  # a job that arrived while we were giving the token back
            lanes.wake(schema_name=schema_name, budget=channel.stamping_concurrency)
    return done


@shared_task(name="gateway.stamping.resume_stale", ignore_result=True)
def resume_stale_jobs_task() -> int:
    """Sweeps every channel's lane (``services.resume_stale_jobs``). A channel that cannot be swept
    (its schema broken, a statement of its own failing) is logged and skipped, and the channels after
    it are still swept; the database gone ends the sweep (every channel would fail alike). When Redis
    has started again and some lane was not swept, the next sweep is told of the restart again
    (``lanes.restart_unfinished``), so the lanes this one missed have their tokens started over then,
    not at the once-a-minute reset."""
    resumed, skipped, finished = 0, [], False
    restarted = lanes.redis_restarted()
    if restarted:
        logger.warning("Redis started again: every lane with work starts its drainers over")
    try:
        for channel in Channel.objects.filter(kind=Channel.Kind.CHANNEL).exclude(schema_name="public"):
            try:
                with schema_context(channel.schema_name):
                    resumed += services.resume_stale_jobs(redis_restarted=restarted)
            except (OperationalError, InterfaceError):
                raise  # the database is gone: every channel would fail alike
            except Exception:
                skipped.append(channel.schema_name)
                logger.exception("the sweep of lane %s failed; the other lanes are swept", channel.schema_name)
        finished = not skipped
    finally:
        if restarted and not finished:
            lanes.restart_unfinished()
    admission.prune_workers()
    return resumed


@shared_task(name="stamping.retention_sweep", ignore_result=True)
def retention_sweep_task() -> dict:
    """Deletes the stamped documents and uploads past their retention (``stamping.retention``)."""
    from stamping import retention

    result = retention.sweep()
    if any(result.values()):
        logger.info("retention sweep", extra=result)
    return result
