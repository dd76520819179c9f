"""Admission control, ETAs and fairness for stamping.

- **The lane model** (:class:`LaneModel`): a job's ETA comes from what will actually run it - the
  stamping workers alive (each worker process notes itself in Redis), the lanes sharing them and
  their drainers (``lanes`` keeps that count), this lane's measured worker time per stamp and its
  measured wait for a worker (both smoothed, reported by every drainer slice). It is updated as a
  surge evolves: a slice's figures count within seconds, not after a minute's look-back.
- **Admission from capacity**: a channel is refused ``503 overloaded`` when its lane could not
  finish one more job within ``STAMPING_MAX_WAIT_SECONDS`` at the rate the model gives it (or holds
  ``STAMPING_CHANNEL_BACKLOG_LIMIT`` jobs) - a limit derived from what the workers measurably do,
  not a constant. The refusal costs two Redis round trips and no body or database work.
- **Intake pace**: once a lane holds ``STAMPING_MIN_BACKLOG`` jobs, it takes new ones at most
  ``STAMPING_INTAKE_PACE`` times as fast as the model says it stamps them (a generic cell rate in
  Redis, a burst of ``PACE_BURST_SECONDS`` of it allowed); faster, a request is refused ``503
  overloaded`` with its own retry slot. Taking a document costs the web tier CPU that stamping then
  lacks: unpaced, a surge's first seconds took jobs five times faster than they were stamped, and the
  promises made then came true at half the speed.
- **Lower classes first** (:func:`admit_lower`, docs/stamping.md "Overload priorities"): new purchases
  and new customers are refused ``503 purchases_overloaded`` / ``registrations_overloaded`` once the
  lane passes a share of the same limits (``STAMPING_CLASS_SHARES``: 3/4 for purchases, 1/2 for new
  customers), so whenever a stamp request is refused ``overloaded`` they already are.
- **Spread retries**: each refused client gets its own retry slot, one lane-job apart, so fifty
  clients refused together do not come back together (``Retry-After``).
- **Drain rate**: finished jobs are also counted in 10-second buckets for the back office's figures.
- **Per-channel concurrency**: see ``lanes`` - a channel has at most ``Channel.stamping_concurrency``
  drainers, so one channel can never occupy every worker.

Redis being down never blocks stamping: the counters are advisory and fall back to assumed figures.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import socket
import threading
import time
from dataclasses import dataclass, field

import redis
from django.conf import settings
from django.db import connection

from stamping.errors import LOWER_CLASS_OVERLOADED, Overloaded
from stamping.models import StampJob
from tenants.models import Channel

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
    """A job ended (stamped or failed): count it for the drain rate and take it off the backlog.

    Inside :func:`completions_batched` (a drainer's slice) the count is sent with the others of the
    last ``COMPLETION_FLUSH_SECONDS``, in one round trip; elsewhere at once."""
    pending = _batched.pending
    if pending is None:
        _send_completions({channel_schema: 1})
        return
    pending[channel_schema] = pending.get(channel_schema, 0) + 1
    now = time.monotonic()
    if _batched.since is None:
        _batched.since = now
    elif now - _batched.since >= COMPLETION_FLUSH_SECONDS:
        _send_completions(pending)
        pending.clear()
        _batched.since = None


COMPLETION_FLUSH_SECONDS = 0.1  # a count waits at most this long (plus one stamp) in a drainer's slice


class _Batched(threading.local):
    pending: dict[str, int] | None = None
    since: float | None = None


_batched = _Batched()


@contextlib.contextmanager
def completions_batched():
    """Count the jobs that end inside in this process and send them to Redis together (every
    ``COMPLETION_FLUSH_SECONDS``, and on the way out): a Redis round trip per stamp cost a drainer
    about 7 % of its CPU (``bench/pipeline.py --profile``). A process killed inside loses at most that
    tenth of a second's counts, which the sweeper's backlog resync (every minute) corrects, as it does
    for a process killed between a job's commit and its count."""
    outer = _batched.pending is not None
    if not outer:
        _batched.pending, _batched.since = {}, None
    try:
        yield
    finally:
        if not outer:
            pending, _batched.pending, _batched.since = _batched.pending, None, None
            if pending:
                _send_completions(pending)


def _send_completions(counts: dict[str, int]) -> None:
    bucket = int(time.time()) // BUCKET_SECONDS
    try:
        pipe = client().pipeline(transaction=False)
        for channel_schema, jobs in counts.items():
            pipe.decrby(_key("backlog", channel_schema), jobs)
            pipe.incrby(_key("done", channel_schema, bucket), jobs)
            pipe.expire(_key("done", channel_schema, bucket), BUCKET_SECONDS * (WINDOW_BUCKETS + 2))
        pipe.incrby(_key("done", "all", bucket), sum(counts.values()))
        pipe.expire(_key("done", "all", bucket), BUCKET_SECONDS * (WINDOW_BUCKETS + 2))
        pipe.execute()
    except redis.RedisError:
        logger.warning("could not count %d finished stamp(s)", sum(counts.values()), exc_info=True)


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
    key = _key("backlog", connection.schema_name)
    try:
        value = client().get(key)
    except redis.RedisError:
        return count_backlog()
    if value is None:
        return resync_backlog()
    return max(0, int(value))


def resync_backlog() -> int:
    actual = count_backlog()
    with contextlib.suppress(redis.RedisError):
        client().set(_key("backlog", connection.schema_name), actual, ex=600)
    return actual


def eta_seconds(position: int, *, budget: int | None = None) -> int:
    """Whole seconds until the job at 0-based ``position`` of the current channel is done (at least 1),
    from the lane model of :func:`queue_state`."""
    return queue_state(budget=budget).eta_seconds(position)


# --------------------------------------------------------------------------- the lane model


@dataclass(frozen=True)
class LaneModel:
    """What decides when a channel's next job is done: the stamping workers alive, the lanes that
    share them (their drainers, and how much worker time each really used of late), this lane's
    budget, and two measured costs.

    The broker hands the workers to drainer tasks in turn, one job each while other lanes wait
    (``services.drain``). A lane is therefore guaranteed ``workers * drainers / all drainers`` of the
    workers (its *fair* share), and gets more when the other lanes use less than theirs: a channel
    that sends a few documents a second holds a drainer but uses a sliver of a worker. So a lane's
    share is the larger of its fair share and what the others leave (``workers`` minus their measured
    use), never more than its own drainers. Its first job waits ``dispatch`` seconds for a worker if
    no drainer of the lane runs yet (publish, the broker, a worker's pick-up: measured) and takes
    ``cost``; each job after it, ``cost / share``."""

    schema: str
    workers: int
    drainers: dict  # schema -> drainers running, for every lane with work
    budget: int  # this lane's most drainers (``Channel.stamping_concurrency``)
    cost: float  # seconds of worker time per stamp in this lane (measured, smoothed)
    dispatch: float  # seconds from a lane's wake to its first job starting (measured, smoothed)
    usage: dict = field(default_factory=dict)  # schema -> worker-seconds per second used of late
    cost_long: float = 0.0  # the same cost over the last seconds, weighted by jobs (0: as ``cost``)
    first: float = 0.0  # seconds from a drainer's start to its first job done (measured; 0: as ``cost``)
    measured: bool = True  # False: this lane's own cost is not in Redis (a restart, a new lane)

    def __post_init__(self):
        if not self.cost_long:
            object.__setattr__(self, "cost_long", self.cost)
        if not self.first:
            object.__setattr__(self, "first", self.cost)

    def share(self, waiting: int) -> float:
        """Workers this lane gets while ``waiting`` of its jobs are queued or running."""
        running = self.drainers.get(self.schema, 0)
        mine = max(running, min(self.budget, max(1, waiting)))
        others = [schema for schema in self.drainers if schema != self.schema]
        total = sum(self.drainers[schema] for schema in others) + mine
        fair = float(mine) if total <= self.workers else self.workers * mine / total
        left = self.workers - sum(self.usage.get(schema, 0.0) for schema in others)
        return max(fair, min(float(mine), left))

    def seconds_until_done(self, position: int) -> float:
        """Seconds until the job with ``position`` jobs of this lane ahead of it (0: none) is done."""
        pickup = 0.0 if self.drainers.get(self.schema, 0) else self.dispatch
        return pickup + self.first + position * self.cost_over(position) / self.share(position + 1)

    def cost_over(self, jobs: int) -> float:
        """The cost per job to expect over the next ``jobs`` jobs: the recent figure for a few, the
        long-run one for many (a handful of scans moves the recent figure; it averages out over
        hundreds)."""
        weight = min(1.0, jobs / LONG_RUN_JOBS)
        return (1 - weight) * self.cost + weight * self.cost_long

    def seconds_per_job(self, waiting: int) -> float:
        """How often this lane finishes a job while ``waiting`` of its jobs are in it."""
        return self.cost / self.share(waiting)


def _float(value, default: float) -> float:
    try:
        return float(value) if value is not None else default
    except (TypeError, ValueError):
        return default


def _pairs(flat) -> dict:
    """A raw HGETALL answer (flat list, or the dict redis-py's parser makes) as {str: str}."""
    if isinstance(flat, dict):
        items = flat.items()
    else:
        items = zip(flat[0::2], flat[1::2], strict=True)
    return {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v) for k, v in items}


def _model(
    schema: str, budget: int, lanes_raw, workers_raw, costs_raw, usage_raw=None, *, now: float | None = None
) -> LaneModel:
    now = time.time() if now is None else now
    drainers = {}
    for name, value in _pairs(lanes_raw or []).items():
        count, _, expires = value.partition(":")
        if _float(expires, now + 1) > now and int(_float(count, 0)) > 0:
            drainers[name] = int(_float(count, 0))
    alive = sum(1 for expires in _pairs(workers_raw or []).values() if _float(expires, 0) > now)
    cost, dispatch, cost_all, cost_long, first = (list(costs_raw or []) + [None] * 5)[:5]
    assumed_cost = 1.0 / settings.STAMPING_ASSUMED_RATE
    return LaneModel(
        schema=schema,
        workers=alive or settings.STAMPING_WORKER_SLOTS,
        drainers=drainers,
        budget=max(1, budget),
        cost=max(0.001, _float(cost, _float(cost_all, assumed_cost))),
        cost_long=max(0.001, _float(cost_long, _float(cost, _float(cost_all, assumed_cost)))),
        dispatch=max(0.0, _float(dispatch, settings.STAMPING_ASSUMED_DISPATCH_SECONDS)),
        first=max(0.0, _float(first, 0.0)),
        usage={name: _float(used, 0.0) / USAGE_BUCKET_SECONDS for name, used in _pairs(usage_raw or []).items()},
        measured=_float(cost, -1.0) > 0,
    )


@dataclass(frozen=True)
class QueueState:
    waiting: int  # jobs of this channel queued or running (the ones ahead of a new job)
    model: LaneModel

    def seconds_until_done(self, position: int) -> float:
        return self.model.seconds_until_done(position)

    def eta_seconds(self, position: int) -> int:
        return max(1, math.ceil(self.seconds_until_done(position)))

    def eta_ms(self, position: int) -> int:
        return max(1, math.ceil(self.seconds_until_done(position) * 1000))


def state_reads(schema_name: str | None = None) -> tuple:
    """The Redis commands behind :func:`queue_state`, for a caller that sends them with its own round
    trip (the stamp request sends them with its rate-limit check)."""
    schema = schema_name or connection.schema_name
    return (
        ("GET", _key("backlog", schema)),
        ("HGETALL", _key("lanes")),
        ("HGETALL", _key("workers")),
        (
            "HMGET",
            _key("costs"),
            f"{schema}:cost",
            f"{schema}:dispatch",
            "all:cost",
            f"{schema}:cost-long",
            f"{schema}:first",
        ),
        ("HGETALL", _usage_key(int(time.time()) // USAGE_BUCKET_SECONDS - 1)),
    )


def _budget(schema: str) -> int:
    budget = Channel.objects.filter(schema_name=schema).values_list("stamping_concurrency", flat=True).first()
    return budget or 1


def queue_state(answers: list | None = None, *, budget: int | None = None) -> QueueState:
    """Backlog and lane model: from ``answers`` to :func:`state_reads` when the caller has them, else in
    one Redis round trip of its own. Without Redis: the database's count and the assumed figures."""
    schema = connection.schema_name
    budget = _budget(schema) if budget is None else budget
    if answers is None:
        try:
            pipe = client().pipeline(transaction=False)
            for command in state_reads(schema):
                pipe.execute_command(*command)
            answers = pipe.execute()
        except redis.RedisError:
            return QueueState(waiting=count_backlog(), model=_model(schema, budget, None, None, None))
    value, lanes_raw, workers_raw, costs_raw, usage_raw = answers
    waiting = resync_backlog() if value is None else max(0, int(value))
    return QueueState(waiting=waiting, model=_model(schema, budget, lanes_raw, workers_raw, costs_raw, usage_raw))


# --------------------------------------------------------------------------- measurements (workers)

# KEYS[1] the costs hash; ARGV: (field, sample, weight) triples. Moves each field toward its sample by
# ``weight`` (an exponentially weighted moving average); a field not yet there takes the sample.
_SMOOTH = """
for i = 1, #ARGV, 3 do
  local old = tonumber(redis.call('HGET', KEYS[1], ARGV[i]))
  local sample = tonumber(ARGV[i + 1])
  local value = sample
  if old then value = old + tonumber(ARGV[i + 2]) * (sample - old) end
  redis.call('HSET', KEYS[1], ARGV[i], tostring(value))
end
return 1
"""
_smooth = None
# KEYS[1] the costs hash; ARGV field, seconds, jobs, memory (s). The lane's long-run cost: worker seconds
# over jobs, both summed with every slice and both fading by exp(-age / memory), on the server's clock
# (``field:sec``, ``field:jobs``, ``field:at``); ``field`` gets their ratio.
_FADING_RATIO = """
local now = redis.call('TIME')
now = tonumber(now[1]) + tonumber(now[2]) / 1000000
local at = tonumber(redis.call('HGET', KEYS[1], ARGV[1] .. ':at') or '0')
local fade = math.exp(-math.max(0, now - at) / tonumber(ARGV[4]))
local seconds = tonumber(redis.call('HGET', KEYS[1], ARGV[1] .. ':sec') or '0') * fade + tonumber(ARGV[2])
local jobs = tonumber(redis.call('HGET', KEYS[1], ARGV[1] .. ':jobs') or '0') * fade + tonumber(ARGV[3])
redis.call('HSET', KEYS[1], ARGV[1] .. ':sec', tostring(seconds), ARGV[1] .. ':jobs', tostring(jobs),
           ARGV[1] .. ':at', tostring(now))
if jobs > 0 then redis.call('HSET', KEYS[1], ARGV[1], tostring(seconds / jobs)) end
return 1
"""
_fading_ratio = None
COST_WEIGHT = 0.05  # of each job in the smoothed per-stamp cost (a slice of n jobs: 1 - 0.95**n)
DISPATCH_WEIGHT = 0.3  # of each fresh wake in the smoothed dispatch wait
# A worker process counts as alive this long after its last slice (three slices' time): one that is
# killed drops out of the lane model within seconds, not after a minute of promises made for a worker
# that no longer stamps (and of intake admitted for it). An idle one drops out too, and counts again
# with its first slice; with none counted, the model assumes ``STAMPING_WORKER_SLOTS``.
WORKER_TTL_SECONDS = 6.0
LONG_RUN_JOBS = 200  # a promise with this many jobs ahead, or more, uses the long-run cost alone
COST_MEMORY_SECONDS = 10.0  # the long-run cost forgets a slice's seconds and jobs by exp(-age / this)
USAGE_BUCKET_SECONDS = 5  # each lane's worker time is summed per 5 s; the model reads the last whole one


def _usage_key(bucket: int) -> str:
    return _key("usage", bucket)


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def note_worker(pipe) -> None:
    """This worker process is stamping: counted for ``WORKER_TTL_SECONDS`` from now (``pipe``: the
    caller's Redis pipeline). Noted when a slice starts and when it ends."""
    pipe.hset(_key("workers"), worker_id(), f"{time.time() + WORKER_TTL_SECONDS:.3f}")


# KEYS[1] the workers hash; ARGV now. Removes the entries of workers past their time (each worker
# process adds one; over restarts they would pile up in a hash every stamp request reads).
_PRUNE_WORKERS = """
local fields = redis.call('HGETALL', KEYS[1])
local removed = 0
for i = 1, #fields, 2 do
  if tonumber(fields[i + 1]) == nil or tonumber(fields[i + 1]) < tonumber(ARGV[1]) then
    redis.call('HDEL', KEYS[1], fields[i])
    removed = removed + 1
  end
end
return removed
"""


_prune_workers = None


def prune_workers() -> int:
    """Sweeper: forget the worker processes past their time. Returns how many."""
    global _prune_workers
    try:
        if _prune_workers is None:
            _prune_workers = client().register_script(_PRUNE_WORKERS)
        return int(_prune_workers(keys=[_key("workers")], args=[f"{time.time():.3f}"]))
    except redis.RedisError:
        return 0


def record_slice(
    *, channel_schema: str, jobs: int, seconds: float, dispatch: float | None = None, first: float | None = None
) -> None:
    """A drainer of ``channel_schema`` ran ``jobs`` jobs in ``seconds`` of its worker's time, after
    waiting ``dispatch`` seconds for a worker (None: it was a continuation, not a fresh wake); its first
    job was done ``first`` seconds after it started (None: no job)."""
    global _smooth, _fading_ratio
    args: list = []
    if first is not None:
        # A lane's next job is done this long after a drainer starts: a slice's average per job also
        # carries its end (an empty claim, the token given back), which a lone job does not wait for.
        args += [f"{channel_schema}:first", f"{max(0.0, first):.6f}", DISPATCH_WEIGHT]
    if jobs > 0:
        per_job = seconds / jobs
        weight = f"{1 - (1 - COST_WEIGHT) ** jobs:.6f}"
        args += [f"{channel_schema}:cost", f"{per_job:.6f}", weight, "all:cost", f"{per_job:.6f}", weight]
    if dispatch is not None:
        args += [f"{channel_schema}:dispatch", f"{max(0.0, dispatch):.6f}", DISPATCH_WEIGHT]
    try:
        if _smooth is None:
            _smooth = client().register_script(_SMOOTH)
        pipe = client().pipeline(transaction=False)
        note_worker(pipe)
        usage = _usage_key(int(time.time()) // USAGE_BUCKET_SECONDS)
        pipe.hincrbyfloat(usage, channel_schema, round(seconds, 6))
        pipe.expire(usage, USAGE_BUCKET_SECONDS * 4)
        if args:
            _smooth(keys=[_key("costs")], args=args, client=pipe)
        if _fading_ratio is None:
            _fading_ratio = client().register_script(_FADING_RATIO)
        # Every slice counts here, an empty one too: its seconds are the lane's worker time as well.
        _fading_ratio(
            keys=[_key("costs")],
            args=[f"{channel_schema}:cost-long", f"{seconds:.6f}", jobs, COST_MEMORY_SECONDS],
            client=pipe,
        )
        pipe.execute()
    except redis.RedisError:
        logger.warning("could not record a stamping slice", exc_info=True)


# --------------------------------------------------------------------------- admission

# KEYS[1] the channel's next retry slot (epoch seconds); ARGV now, spacing, earliest, latest, horizon.
# Hands out retry times one ``spacing`` apart (the time the lane takes to free one place), so refused
# clients come back spread over time instead of all at once. A slot more than ``horizon`` past this
# refusal's earliest time was handed out from an estimate the lane model has since dropped (a rate
# just after a restart): the queue starts over from the earliest time instead of sending every later
# client behind it.
_NEXT_SLOT = """
local now = tonumber(ARGV[1])
local slot = tonumber(redis.call('GET', KEYS[1]) or '0')
local earliest = now + tonumber(ARGV[3])
if slot < earliest or slot > earliest + tonumber(ARGV[5]) then slot = earliest end
slot = slot + tonumber(ARGV[2])
if slot > now + tonumber(ARGV[4]) then slot = now + tonumber(ARGV[4]) end
redis.call('SET', KEYS[1], tostring(slot), 'EX', math.ceil(tonumber(ARGV[4])) + 1)
return tostring(slot - now)
"""
_next_slot = None
MAX_RETRY_AFTER_SECONDS = 120
# How far past its earliest time a refused client may be queued behind others: this, or 64 clients'
# spacing on a slow lane, whichever is longer.
RETRY_HORIZON_SECONDS = 5.0
RETRY_HORIZON_CLIENTS = 64
# A lane refused for its wait while its own cost is not measured (Redis restarted, a new lane) is told
# to come back this soon at the latest, not at the wait the assumed rate gives: the first
# drainer slice (``lanes.TIME_SLICE_SECONDS``, 2 s) measures the real cost again, and the assumed rate is
# a floor far below what a worker stamps (``STAMPING_ASSUMED_RATE``), which told refused clients of
# ``bench/surge.py --faults all`` to wait 31-76 s after a 4 s Redis outage.
UNMEASURED_RETRY_SECONDS = 4.0


def retry_slot(*, schema: str, spacing: float, earliest: float) -> float:
    """Seconds until this refused client's turn to retry; without Redis, a random spread."""
    global _next_slot
    try:
        if _next_slot is None:
            _next_slot = client().register_script(_NEXT_SLOT)
        horizon = max(RETRY_HORIZON_SECONDS, RETRY_HORIZON_CLIENTS * spacing)
        args = [f"{time.time():.6f}", f"{spacing:.6f}", f"{earliest:.6f}", MAX_RETRY_AFTER_SECONDS, f"{horizon:.6f}"]
        return float(_next_slot(keys=[_key("retry-slot", schema)], args=args))
    except redis.RedisError:
        return earliest + random.uniform(0, 1) * max(1.0, spacing * 10)


# KEYS[1] the channel's intake pace (a generic cell rate: the time by which every job taken so far
# has "paid" for itself); ARGV now, interval (seconds a job), burst (jobs), jobs, take (1: take them;
# 0: only look). Returns 0 when ``jobs`` more fit now (taken when asked), else the seconds until they do.
_PACE = """
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local jobs = tonumber(ARGV[4])
local paid = tonumber(redis.call('GET', KEYS[1]) or '0')
if paid < now then paid = now end
local after = paid + interval * jobs
-- A batch larger than the burst fits once the burst is whole, and pays for all its jobs.
local fits_at = paid + interval * (math.min(jobs, burst) - burst)
if fits_at > now then return tostring(fits_at - now) end
if ARGV[5] == '1' then
  redis.call('SET', KEYS[1], tostring(after), 'PX', math.ceil((after - now) * 1000) + 1000)
end
return '0'
"""
_pace = None
PACE_BURST_SECONDS = 2.0  # of the paced rate taken at once before pacing bites (at least STAMPING_MIN_BACKLOG)


def _pace_wait(*, channel, state: QueueState, new_jobs: int, take: bool) -> float:
    """Seconds until the channel's lane may take ``new_jobs`` more jobs at its intake pace: 0 when they
    fit now (taken from the pace when ``take``). The pace is ``STAMPING_INTAKE_PACE`` times the rate the
    lane model says this lane stamps at; it applies only once the lane holds ``STAMPING_MIN_BACKLOG``
    jobs. Without Redis, or with the pace off, nothing is paced."""
    global _pace
    factor = settings.STAMPING_INTAKE_PACE
    if factor <= 0 or state.waiting + new_jobs - 1 < settings.STAMPING_MIN_BACKLOG:
        return 0.0
    interval = state.model.seconds_per_job(state.waiting) / factor
    burst = max(float(settings.STAMPING_MIN_BACKLOG), PACE_BURST_SECONDS / interval)
    try:
        if _pace is None:
            _pace = client().register_script(_PACE)
        args = [f"{time.time():.6f}", f"{interval:.6f}", f"{burst:.3f}", new_jobs, "1" if take else "0"]
        return float(_pace(keys=[_key("pace", channel.schema_name)], args=args))
    except redis.RedisError:
        return 0.0


def admit(*, channel, new_jobs: int = 1, answers: list | None = None) -> QueueState:
    """Refuse with 503 when the channel's lane cannot stamp one more job within the promise the
    gateway makes (``STAMPING_MAX_WAIT_SECONDS``, from the lane model and what it measured) or holds
    ``STAMPING_CHANNEL_BACKLOG_LIMIT`` jobs, or when it is taking new jobs faster than its intake pace
    (:func:`_pace_wait`: ``STAMPING_INTAKE_PACE`` times the rate it stamps at, once it has a backlog);
    else return the queue ahead. ``answers``: the caller's answers to :func:`state_reads`, if it has them.

    The pace is what keeps a surge's first seconds honest: taking documents costs the web tier CPU
    that stamping then lacks, so a channel accepting jobs several times faster than it stamps them
    slows its own stamping down and breaks the promises it has just made (docs/stamping.md, "Intake
    pace")."""
    state = queue_state(answers, budget=channel.stamping_concurrency)
    waiting = state.waiting
    last = waiting + new_jobs - 1  # the position of the last new job
    wait = state.seconds_until_done(last)
    too_long = wait > settings.STAMPING_MAX_WAIT_SECONDS and last >= settings.STAMPING_MIN_BACKLOG
    too_many = waiting + new_jobs > settings.STAMPING_CHANNEL_BACKLOG_LIMIT
    paced = 0.0 if too_long or too_many else _pace_wait(channel=channel, state=state, new_jobs=new_jobs, take=True)
    per_job = state.model.seconds_per_job(waiting)
    if paced > 0:
        rate = settings.STAMPING_INTAKE_PACE / per_job
        _refuse(
            channel,
            waiting,
            spacing=per_job / settings.STAMPING_INTAKE_PACE * new_jobs,
            earliest=paced,
            why=f"is taking new documents faster than it can stamp them: {waiting} are waiting, and new ones "
            f"are taken at about {rate:.0f} a second, so that the waiting ones are stamped when promised",
        )
    if too_long or too_many:
        earliest = (
            _past_the_promise(state, wait, settings.STAMPING_MAX_WAIT_SECONDS) if too_long else per_job * new_jobs
        )
        why = (
            f"has {waiting} documents waiting to be stamped, about {math.ceil(wait)} seconds of work: "
            "the most it queues at once"
        )
        if too_long and not state.model.measured:
            why = (
                f"has {waiting} documents waiting to be stamped, and its stamping rate is being measured again "
                "(until it is, the gateway assumes a slow one)"
            )
        _refuse(channel, waiting, spacing=per_job * new_jobs, earliest=earliest, why=why)
    return state


def _past_the_promise(state: QueueState, wait: float, promise: float) -> float:
    """Seconds until a lane refused for its wait has room: the wait past the promise. While no cost is
    measured that wait is a guess from the assumed rate, and the real figure comes with the next
    slice: at most ``UNMEASURED_RETRY_SECONDS`` then."""
    past = max(0.0, wait - promise)
    return past if state.model.measured else min(past, UNMEASURED_RETRY_SECONDS)


def _refuse(channel, waiting: int, *, spacing: float, earliest: float, why: str) -> None:
    """Raise ``503 overloaded`` with this client's own retry slot (``earliest`` seconds from now at
    the soonest, ``spacing`` after the previous refused client's)."""
    retry_after = max(1, math.ceil(retry_slot(schema=channel.schema_name, spacing=spacing, earliest=earliest)))
    error = Overloaded(
        f"{channel.name} {why}. This request was not taken and nothing was charged for it (a request "
        f"already accepted under the same Idempotency-Key keeps its place). Try again in {retry_after} seconds.",
        extra={"queue_depth": waiting, "retry_after": retry_after},
    )
    error.headers = {"Retry-After": str(retry_after)}
    raise error


def class_share(kind: str) -> float:
    """The share of the stamping limits at which new work of a lower ``kind`` is refused (1.0: as stamps)."""
    return min(1.0, max(0.0, float(settings.STAMPING_CLASS_SHARES.get(kind, 1.0))))


def admit_lower(*, channel, kind: str) -> QueueState | None:
    """New purchases and new customers rank below new stamp requests: refuse them ``503
    <kind>_overloaded`` when the channel's lane is past ``class_share(kind)`` of the limits that refuse a
    stamp request (the wait a new job would have, the backlog), so they are refused before and while a
    stamp request is. One Redis round trip; nothing else is read. Returns the queue state (None: the
    class has no share below stamps)."""
    share = class_share(kind)
    if kind not in LOWER_CLASS_OVERLOADED or share >= 1.0:
        return None
    state = queue_state(budget=channel.stamping_concurrency)
    waiting = state.waiting
    wait = state.seconds_until_done(waiting)  # a new job at the back of the lane
    max_wait = settings.STAMPING_MAX_WAIT_SECONDS * share
    too_long = wait > max_wait and waiting >= settings.STAMPING_MIN_BACKLOG * share
    fits = not too_long and waiting + 1 <= settings.STAMPING_CHANNEL_BACKLOG_LIMIT * share
    # While new stamp requests are being paced, the lower classes wait as well (they only look).
    if fits and not _pace_wait(channel=channel, state=state, new_jobs=1, take=False):
        return state
    spacing = state.model.seconds_per_job(waiting)
    earliest = _past_the_promise(state, wait, max_wait) if too_long else spacing
    retry_after = max(
        1, math.ceil(retry_slot(schema=f"{channel.schema_name}:{kind}", spacing=spacing, earliest=earliest))
    )
    what = "new purchases" if kind == "purchases" else "new customers"
    error = LOWER_CLASS_OVERLOADED[kind](
        f"{channel.name} has {waiting} documents waiting to be stamped, about {math.ceil(wait)} seconds of "
        f"work: {what} wait until it drains, so that the stamps come first. Nothing was done. Try again in "
        f"{retry_after} seconds.",
        extra={"queue_depth": waiting, "retry_after": retry_after, "class": kind},
    )
    error.headers = {"Retry-After": str(retry_after)}
    raise error
