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
  lane with work but no token. Starting a lane's tokens over begins a new *generation* of its
  drainers: each drainer carries the generation it was published in, and one of an older generation
  retires at the end of its slice (no re-publication, its token neither kept nor given back). Without
  that, the drainers that were not lost lived on beside the new ones: every reset (each worker crash,
  and every minute of a long surge) added up to a budget's worth, and a surging lane held ever more
  places in the broker's queue ahead of a quiet one.
- The stamp request does not wait for the wake: after its commit it hands the lane to this
  process's *waker* thread (:func:`wake_soon`), which folds what accumulated (a burst of requests
  on one channel is one Redis call) and wakes each lane within milliseconds - or, for a lane whose
  drainers were all running at its last wake, counts its new jobs every 50 ms. A process that dies
  with wakes pending leaves committed jobs for the sweeper (within a minute), as any crash does.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

import redis
from celery import current_app
from django.db import connection
from django.utils import timezone

from kernel.db import raw_cursor
from stamping import admission
from stamping.models import StampJob

logger = logging.getLogger(__name__)

DRAIN_LANE_TASK = "gateway.stamping.drain_lane"  # (published by name: lanes never import the tasks)
TIME_SLICE_SECONDS = 2.0
LEASE = timedelta(minutes=2)
TOKEN_TTL_SECONDS = 600
WAKE_GATHER_SECONDS = 0.005  # how long the waker lets wakes gather before one Redis call
SATURATED_GATHER_SECONDS = 0.05  # the same, for a lane whose drainers were all running at its last wake

# KEYS[1] lane slots, KEYS[2] backlog counter, KEYS[3] the lanes hash (schema -> "drainers:expires");
# ARGV budget, slot TTL, jobs just queued, schema, now (epoch seconds).
# Takes one free slot per job just queued (at least one), up to the budget; returns how many it took.
_CLAIM_LANE_SLOT = """
local queued = tonumber(ARGV[3])
if queued > 0 then redis.call('INCRBY', KEYS[2], queued) end
local free = tonumber(ARGV[1]) - tonumber(redis.call('GET', KEYS[1]) or '0')
if free <= 0 then return 0 end
local take = math.min(free, math.max(queued, 1))
local now = redis.call('INCRBY', KEYS[1], take)
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[4], now .. ':' .. (tonumber(ARGV[5]) + tonumber(ARGV[2])))
return take
"""
# KEYS[1] lane slots, KEYS[2] the lanes hash; ARGV schema, slot TTL, now, change (-1: a drainer ends,
# 0: it goes on). Keeps the lanes hash in step with the slots, for the lane model (``admission``).
_UPDATE_LANE_SLOTS = """
local n = tonumber(redis.call('GET', KEYS[1]) or '0') + tonumber(ARGV[4])
if n <= 0 then
  redis.call('SET', KEYS[1], 0, 'EX', ARGV[2])
  redis.call('HDEL', KEYS[2], ARGV[1])
  return 0
end
redis.call('SET', KEYS[1], n, 'EX', ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], n .. ':' .. (tonumber(ARGV[3]) + tonumber(ARGV[2])))
return n
"""
_update_slots = None
WAITING_STALE_SECONDS = 60  # a published drainer not started after this long is presumed lost
GENERATION_TTL_SECONDS = 86_400  # far longer than any drainer lives
_claim_slot = None


def _token_key(schema: str) -> str:
    return admission._key("lane-tokens", schema)


def _budget(schema: str) -> int:
    return max(1, admission._budget(schema))


def wake(*, schema_name: str, budget: int | None = None, queued: int = 0) -> bool:
    """Make sure the lane of ``schema_name`` is being drained (and count ``queued`` new jobs on its
    backlog in the same Redis call): one drainer per new job while the budget has room. Returns True
    if a task was published."""
    global _claim_slot
    budget = budget or _budget(schema_name)
    taken = 1
    try:
        if _claim_slot is None:
            _claim_slot = admission.client().register_script(_CLAIM_LANE_SLOT)
        keys = [_token_key(schema_name), admission._key("backlog", schema_name), admission._key("lanes")]
        args = [budget, TOKEN_TTL_SECONDS, queued, schema_name, int(time.time())]
        taken = int(_claim_slot(keys=keys, args=args))
        if not taken:
            return False  # the lane has all its drainers already; they will find this job
    except redis.RedisError:
        logger.warning("lane tokens unavailable; publishing anyway", exc_info=True)
    return sum(_publish(schema_name, fresh=True) for _ in range(taken)) > 0


class Waker:
    """One thread per process that wakes lanes off the request path (see the module docstring).

    A lane found with all its drainers running (no task published) is *saturated*: its drainers will
    claim new jobs on their own, and a wake only adds the new jobs to the backlog counter. Its next
    wakes gather for ``SATURATED_GATHER_SECONDS`` instead of ``WAKE_GATHER_SECONDS``, so a surge
    costs each process a few Redis calls a second, not one per request or two; other lanes are
    woken as promptly as ever."""

    def __init__(self):
        self._lock = threading.Lock()
        self._pending: dict[str, list[int]] = {}  # schema -> [budget, jobs queued since the last wake]
        self._deferred: dict[str, float] = {}  # schema -> monotonic time before which it is not woken
        self._signalled = False  # the thread has been told of due work and has not taken it yet
        self._work = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._thread: threading.Thread | None = None
        self._pid = 0
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        """In a forked child: the parent's waker thread is not here, and its lock may have been held."""
        self._lock = threading.Lock()
        self._pending = {}
        self._deferred = {}
        self._signalled = False
        self._work = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._thread = None

    def note(self, *, schema_name: str, budget: int, queued: int) -> None:
        with self._lock:
            # Signal for due work the thread has not been told of. A deferred lane is picked up by the
            # thread's timed wait - unless nothing was pending, when the thread may wait untimed.
            due = self._deferred.get(schema_name, 0.0) <= time.monotonic()
            signal = not self._signalled and (due or not self._pending)
            entry = self._pending.setdefault(schema_name, [budget, 0])
            entry[0] = budget
            entry[1] += queued
            self._idle.clear()
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._pid = os.getpid()  # (a forked child has the object but not the thread)
                self._thread = threading.Thread(target=self._run, name="lane-waker", daemon=True)
                self._thread.start()
                signal = True  # a new thread must be told about whatever is pending
            if signal:
                self._signalled = True
        if signal:
            self._work.set()

    def _next_deadline(self) -> float | None:
        """Seconds until the earliest pending deferred lane is due (None: nothing pending). Lock held."""
        if not self._pending:
            return None
        now = time.monotonic()
        return max(0.0, min(self._deferred.get(schema, 0.0) - now for schema in self._pending))

    def _run(self) -> None:
        while True:
            with self._lock:
                timeout = self._next_deadline()
            self._work.wait(timeout)
            self._work.clear()
            # Let the wakes of a burst gather: under load one Redis call then carries many jobs, and
            # the request threads find the batch open and signal nobody.
            time.sleep(WAKE_GATHER_SECONDS)
            now = time.monotonic()
            with self._lock:
                self._signalled = False
                batch = {s: e for s, e in self._pending.items() if self._deferred.get(s, 0.0) <= now}
                for schema_name in batch:
                    del self._pending[schema_name]
            for schema_name, (budget, queued) in batch.items():
                try:
                    started = wake(schema_name=schema_name, budget=budget, queued=queued)
                except Exception:  # noqa: BLE001 - the jobs are committed; the sweeper wakes the lane
                    logger.exception("could not wake a lane", extra={"schema": schema_name})
                    started = False
                with self._lock:
                    if started:
                        self._deferred.pop(schema_name, None)
                    else:  # saturated (or the broker refused): its drainers find new jobs themselves
                        self._deferred[schema_name] = time.monotonic() + SATURATED_GATHER_SECONDS
            with self._lock:
                if not self._pending:
                    self._idle.set()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every noted wake is done (tests; process exit). False if it took too long."""
        return self._idle.wait(timeout)


_waker = Waker()
atexit.register(_waker.flush, 2.0)


def wake_soon(*, schema_name: str, budget: int, queued: int = 0) -> None:
    """:func:`wake`, by this process's waker thread, without waiting for it."""
    _waker.note(schema_name=schema_name, budget=budget, queued=queued)


def flush_wakes(timeout: float = 10.0) -> bool:
    return _waker.flush(timeout)


def _waiting_key() -> str:
    return admission._key("drainers-waiting")


def _publish(schema_name: str, *, fresh: bool = False) -> bool:
    """Publish one ``drain_lane`` task for the lane. ``fresh``: a lane being woken (its wait for a
    worker is measured), not a drainer going to the back of the queue after its slice.

    The task is noted in the *waiting* set until a worker starts it: a drainer that sees another
    lane's task waiting ends its slice after the job in hand (:func:`others_waiting`)."""
    now = time.time()
    ticket = f"{schema_name}|{uuid.uuid4().hex}"
    generation = None  # unknown (no Redis): the drainer is never taken for an older generation's
    with contextlib.suppress(redis.RedisError):
        pipe = admission.client().pipeline(transaction=False)
        pipe.zadd(_waiting_key(), {ticket: now})
        pipe.publish(_waiting_key(), schema_name)  # to the drainers watching (:func:`others_waiting`)
        pipe.zremrangebyscore(_waiting_key(), "-inf", now - 10 * WAITING_STALE_SECONDS)
        pipe.get(_generation_key(schema_name))
        generation = _generation(pipe.execute()[-1])
    kwargs = {"published_at": now, "fresh": fresh, "ticket": ticket, "generation": generation}
    return _send(schema_name, kwargs, ticket=ticket)


def _send(schema_name: str, kwargs: dict, *, queue: str = "stamping", countdown=None, ticket=None) -> bool:
    """Send one drainer task; if the broker cannot take it, give its token back (the jobs are safe in
    their table; the sweeper wakes the lane)."""
    try:
        current_app.send_task(DRAIN_LANE_TASK, args=[schema_name], kwargs=kwargs, queue=queue, countdown=countdown)
        return True
    except Exception:  # noqa: BLE001 - whatever the broker raised, the lane must not keep a dead token
        if ticket:  # it will not wait for a worker: it was never sent
            with contextlib.suppress(redis.RedisError):
                admission.client().zrem(_waiting_key(), ticket)
        release_token(schema_name=schema_name)
        logger.warning("could not publish a lane task; the sweeper will", exc_info=True)
        return False


def _generation_key(schema: str) -> str:
    return admission._key("lane-generation", schema)


def _generation(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value or "0")


def is_current(*, schema_name: str, generation: str | None) -> bool:
    """Is a drainer of ``generation`` one of the lane's current drainers? (Unknown: yes.)"""
    if generation is None:
        return True
    try:
        return _generation(admission.client().get(_generation_key(schema_name))) == generation
    except redis.RedisError:
        return True


def publish_later(
    schema_name: str, *, countdown: float, outage: int, queue: str = "stamping", generation: str | None = None
) -> bool:
    """Publish the lane's drainer again in ``countdown`` seconds, on ``queue`` (the one it came from),
    keeping its token: a drainer whose database went away (``stamping.tasks.drain_lane_task``). Not
    noted as waiting: it is not ready yet. If the broker cannot take it either, the token is given
    back and the sweeper wakes the lane."""
    keep_token(schema_name=schema_name)  # a long outage must not outlive the token's TTL
    return _send(schema_name, {"outage": outage, "generation": generation}, queue=queue, countdown=countdown)


def started(ticket: str | None) -> None:
    """In the worker: a drainer task was taken: it no longer waits, and this worker counts as stamping
    from now on, not only once its slice has ended (a worker whose entry has run out, after an idle
    spell or an outage, would otherwise be missing from the lane model for a whole slice)."""
    with contextlib.suppress(redis.RedisError):
        pipe = admission.client().pipeline(transaction=False)
        if ticket:
            pipe.zrem(_waiting_key(), ticket)
        admission.note_worker(pipe)
        pipe.execute()


def others_waiting(schema_name: str) -> bool:
    """Is a drainer of ANOTHER lane waiting for a worker? (Then this one yields after its job.)

    Asked after every job of a slice. The waiting set is read (one Redis round trip) only when it may
    have changed in a way that matters: the first time in this process, after a wait was seen, and
    when another lane has published a drainer since the last read (:func:`_publish` announces each
    one on a Redis channel this process listens to; reading what arrived costs no round trip).
    Without that the read was a round trip per stamp: 7.7 % of a worker's busy samples in
    ``bench/surge.py``'s hold. A drainer of the lane's own does not make it yield, so its
    announcements are skipped. The set is still read every ``REREAD_SECONDS`` (0.5 s), whatever was
    heard, so a subscription that silently stopped hearing costs a waiting lane half a second at most."""
    quiet = _watch.nothing_new_from_others(schema_name)
    if quiet is None:  # Redis cannot be reached: nothing to yield to that anyone could see
        return False
    return False if quiet else _read_waiting(schema_name)


def _read_waiting(schema_name: str) -> bool:
    try:
        tickets = admission.client().zrangebyscore(_waiting_key(), time.time() - WAITING_STALE_SECONDS, "+inf")
    except redis.RedisError:
        _watch.forget()
        return False
    prefix = f"{schema_name}|".encode()
    waiting = any(not ticket.startswith(prefix) for ticket in tickets)
    if waiting:
        _watch.forget()  # read again next time: the ticket leaves the set when a worker starts it
    return waiting


class _WaitingWatch:
    """This process's subscription to the drainers' announcements (:func:`others_waiting`).

    Trusted only while it holds: the set was read after subscribing (so nothing published before the
    read is missed) and the connection never failed since. Anything else answers "something may be
    new", and the caller reads the set."""

    def __init__(self):
        self._pubsub = None
        self._pid = None
        self._fresh = False  # the set was read since the subscription began and nothing failed since
        self._for = None  # ... for this lane's question (another lane's drainers count for it)
        self._read_at = 0.0  # when (monotonic) the set was last read for it

    def forget(self) -> None:
        self._fresh = False

    def _subscribed(self):
        if self._pubsub is None or self._pid != os.getpid():  # (a forked pool child listens on its own)
            self._pubsub, self._pid, self._fresh = None, os.getpid(), False
            pubsub = admission.client().pubsub()
            pubsub.subscribe(_waiting_key())
            # Subscribed once the server says so: a drainer announced before that would be missed.
            deadline = time.monotonic() + 1.0
            while (confirmed := pubsub.get_message(timeout=0.25)) is None or confirmed.get("type") != "subscribe":
                if time.monotonic() > deadline:
                    pubsub.close()
                    raise redis.TimeoutError("no confirmation of the subscription")
            self._pubsub = pubsub
        return self._pubsub

    def nothing_new_from_others(self, schema_name: str) -> bool | None:
        """True when no other lane's drainer was announced since the set was last read; False when one
        was, or when that cannot be known (then the set is to be read, and the watch trusts the read);
        None when Redis cannot be reached."""
        now = time.monotonic()
        try:
            pubsub = self._subscribed()
            # Read at least every REREAD_SECONDS whatever was heard: a subscription that went quiet
            # without an error (a connection cut without a word) must not keep a lane from yielding.
            was_fresh = self._fresh and self._for == schema_name and now - self._read_at < REREAD_SECONDS
            news = False
            while (message := pubsub.get_message(timeout=0.0)) is not None:
                if message.get("type") == "message" and message.get("data") != schema_name.encode():
                    news = True
        except (redis.RedisError, OSError, ValueError):
            self._drop()
            return None
        quiet = was_fresh and not news
        if not quiet:  # the caller reads the set now: that read covers everything heard before it
            self._fresh, self._for, self._read_at = True, schema_name, now
        return quiet

    def _drop(self) -> None:
        pubsub, self._pubsub, self._fresh = self._pubsub, None, False
        if pubsub is not None:
            with contextlib.suppress(Exception):
                pubsub.close()


REREAD_SECONDS = 0.5  # the waiting set is read at least this often by a drainer asking after each job
_watch = _WaitingWatch()


def _update_slots_by(schema_name: str, change: int) -> None:
    global _update_slots
    try:
        client = admission.client()
        if _update_slots is None:
            _update_slots = client.register_script(_UPDATE_LANE_SLOTS)
        _update_slots(
            keys=[_token_key(schema_name), admission._key("lanes")],
            args=[schema_name, TOKEN_TTL_SECONDS, int(time.time()), change],
        )
    except redis.RedisError:
        pass


def keep_token(*, schema_name: str) -> None:
    _update_slots_by(schema_name, 0)


def release_token(*, schema_name: str) -> None:
    _update_slots_by(schema_name, -1)


def forget_tokens(*, schema_name: str) -> None:
    """Start the lane's slots over (their tasks may be lost): the sweeper, before it wakes the lane.
    The drainers still alive belong to the generation this ends; they retire after their slice."""
    with contextlib.suppress(redis.RedisError):
        pipe = admission.client().pipeline(transaction=False)
        pipe.delete(_token_key(schema_name))
        pipe.hdel(admission._key("lanes"), schema_name)
        pipe.incr(_generation_key(schema_name))
        pipe.expire(_generation_key(schema_name), GENERATION_TTL_SECONDS)
        pipe.execute()


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    """A job this connection claimed (status ``processing``, attempt counted, owner lock held), with
    its document: everything the stamp needs, read in the claim's one round trip."""

    job: StampJob
    original: bytes
    sealed_password: bytes | None
    facts: str | None = None  # the intake's inspection of ``original``, sealed (``issuer.facts``)


_JOB_COLUMNS = tuple(field.column for field in StampJob._meta.concrete_fields)
_JOB_ATTNAMES = tuple(field.attname for field in StampJob._meta.concrete_fields)

# One statement, its own transaction: take the oldest claimable job, mark it processing, count the
# attempt, take its owner lock (a session advisory lock: held while this connection lives, so a
# dead worker or a restarted server drops it) and return the job with its document, in binary.
# Run on its own (autocommit), the claim's commit does not wait for its WAL flush (set_config(...,
# true) lasts to the end of the statement's transaction): a claim lost in a crash only leaves the job
# queued, and the stamp's own commit, which does wait, flushes the claim with it. Inside a caller's
# transaction the setting would outlive the claim, so there the claim commits as everything does.
# The next job is picked by a scalar subquery (an InitPlan: evaluated exactly once per statement). As
# a subquery joined in FROM, nothing but the plan the planner happened to choose kept it from being
# evaluated again for another row and claiming a second job, which ``claim_job`` would not have run.
_CLAIM = """
UPDATE {schema}.stamping_stampjob AS j
SET status = 'processing', attempts = j.attempts + 1, started_at = coalesce(j.started_at, clock_timestamp()),
    claimed_at = clock_timestamp()
FROM {schema}.stamping_jobdocument AS d
WHERE j.id = (
    SELECT id FROM {schema}.stamping_stampjob
    WHERE status = 'queued' AND available_at <= clock_timestamp()
    ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED
) AND d.job_id = j.id
RETURNING {columns}, d.original, d.sealed_password, d.facts,
    pg_try_advisory_lock(hashtextextended(%s::text || j.id, 0)) AS owned{async_claim}
"""
_ASYNC_CLAIM = ", set_config('synchronous_commit', 'off', true) AS async_claim"


def owner_lock_prefix(schema_name: str) -> str:
    """The text before a job id in its owner lock's key (advisory locks are per database)."""
    return f"stamping.job:{schema_name}:"


@functools.lru_cache(maxsize=256)
def _claim_sql(schema: str, *, asynchronous: bool) -> str:
    """The claim statement for a channel's schema (built once: a stamp's claim is on the hot path)."""
    quote = connection.ops.quote_name
    columns = ", ".join(f"j.{quote(c)}" for c in _JOB_COLUMNS)
    return _CLAIM.format(schema=quote(schema), columns=columns, async_claim=_ASYNC_CLAIM if asynchronous else "")


def claim_job() -> ClaimedJob | None:
    """Claim the oldest claimable queued job of the current channel; None when there is none.

    The owner lock stays held after the job is finished (released with all others when the drain
    ends, :func:`release_owner_locks`): only ``processing`` jobs are ever judged by it."""
    schema = connection.schema_name
    sql = _claim_sql(schema, asynchronous=not connection.in_atomic_block)
    with raw_cursor() as cursor:  # (prepared: parsing and planning it cost more than running it)
        cursor.execute(sql, [owner_lock_prefix(schema)], binary=True, prepare=True)
        rows = cursor.fetchall()
    if not rows:
        return None
    row = rows[0]
    count = len(_JOB_COLUMNS)
    if len(rows) > 1:  # never, by the statement's shape; were it to happen, no job is left claimed unrun
        _give_back([extra[_JOB_ATTNAMES.index("id")] for extra in rows[1:]])
    job = StampJob.from_db(connection.alias, _JOB_ATTNAMES, row[:count])
    return ClaimedJob(job=job, original=row[count], sealed_password=row[count + 1], facts=row[count + 2])


def _give_back(job_ids: list[str]) -> None:
    """Jobs claimed but not to be run by this connection: queued again, attempt uncounted, lock freed."""
    logger.error("a claim took more than one job; giving back", extra={"jobs": job_ids})
    prefix = owner_lock_prefix(connection.schema_name)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE stamping_stampjob SET status = 'queued', attempts = attempts - 1"
            " WHERE id = ANY(%s) AND status = 'processing'",
            [job_ids],
        )
        for job_id in job_ids:
            cursor.execute("SELECT pg_advisory_unlock(hashtextextended(%s::text || %s, 0))", [prefix, job_id])


def claim_next() -> str | None:
    """:func:`claim_job`, for callers that want only the id."""
    claimed = claim_job()
    return None if claimed is None else claimed.job.pk


def release_owner_locks() -> None:
    """Give up every owner lock this connection holds (its jobs are finished or given back)."""
    if connection.connection is None:
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_unlock_all()")


def has_claimable_work() -> bool:
    return StampJob.objects.filter(status=StampJob.Status.QUEUED, available_at__lte=timezone.now()).exists()


# Processing jobs whose owner is gone: the owner lock is free (the claiming connection ended: the
# worker died, or the server restarted), or, as a backstop, the lease ran out. The sweeper's own try
# of the lock is released when its statement's transaction ends.
_TAKE_BACK = """
UPDATE {schema}.stamping_stampjob SET status = 'queued', available_at = clock_timestamp()
WHERE status = 'processing'
  AND (claimed_at < clock_timestamp() - %s OR pg_try_advisory_xact_lock(hashtextextended(%s::text || id, 0)))
"""
TOKEN_RESET_SECONDS = 60  # how often, at most, the sweeper starts a lane's tokens over without cause


def recover(*, lease: timedelta = LEASE, redis_restarted: bool = False) -> int:
    """Sweeper: jobs whose worker vanished (its owner lock free, or processing past the lease) go
    back to the queue, and the lane is woken if it has work. Cheap enough to run every few seconds;
    safe to run anywhere, any number of times. ``redis_restarted`` (:func:`redis_restarted`): the
    lane's tokens are started over now, not when the once-a-minute reset comes round."""
    schema = connection.schema_name
    with connection.cursor() as cursor:
        cursor.execute(_TAKE_BACK.format(schema=connection.ops.quote_name(schema)), [lease, owner_lock_prefix(schema)])
        taken_back = cursor.rowcount
    if has_claimable_work():
        if taken_back or redis_restarted or _token_reset_due(schema):
            # Tokens of lost tasks (a dead worker's among them) would keep the lane asleep: start over
            # from the tasks that exist. (Not on every sweep: tasks waiting in the broker hold tokens
            # too, and each reset may add up to the budget's worth of drainers.)
            forget_tokens(schema_name=schema)
        wake(schema_name=schema)  # (publishes only if the lane has a free token)
    return taken_back


def _run_id_key() -> str:
    """Where the sweep notes the ``run_id`` of the Redis it last saw."""
    return admission._key("redis-run-id")


def redis_restarted() -> bool:
    """Has Redis started again since the last sweep that asked? (Its ``run_id``, which every start of the
    server draws anew, against the one noted in Redis by that sweep.)

    A drainer that ends its slice while Redis is down can neither publish its next slice nor give its
    token back, and its task is gone (``bench/surge.py --faults redis``: both pool processes logged
    "could not publish a lane task" within 20 ms of the kill). Redis, back from its append-only file,
    still counts the token, so the lane ran on the drainers that happened to survive, its other places
    held by tasks that no longer exist, until the once-a-minute reset (``TOKEN_RESET_SECONDS``; its own
    key came back from the file too). The sweeper (every 5 s) now starts every lane with work over as
    soon as it sees the new ``run_id``. A Redis that lost its data entirely has no tokens to start over
    and no noted ``run_id``: nothing to do, False."""
    try:
        client = admission.client()
        run_id = client.info("server").get("run_id")
        if not run_id:
            return False
        seen = client.getset(_run_id_key(), run_id)
    except redis.RedisError:
        return False
    if seen is None:
        return False
    return (seen.decode() if isinstance(seen, bytes) else seen) != run_id


def restart_unfinished() -> None:
    """A sweep told of a restart (:func:`redis_restarted`) did not sweep every lane: the next sweep is
    told of it again (the noted run id becomes one no server has)."""
    with contextlib.suppress(redis.RedisError):
        admission.client().set(_run_id_key(), "unfinished-sweep")


def _token_reset_due(schema_name: str) -> bool:
    """True at most once per ``TOKEN_RESET_SECONDS`` per lane (and whenever Redis cannot say)."""
    try:
        return bool(
            admission.client().set(admission._key("lane-reset", schema_name), 1, nx=True, ex=TOKEN_RESET_SECONDS)
        )
    except redis.RedisError:
        return True
