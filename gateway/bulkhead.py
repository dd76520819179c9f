"""Bulkheads in the web tier: while channels share a process, one holds at most its share of the threads,
and within its share the lower classes of work are refused first.

A web process (gunicorn ``gthread``) has ``WEB_THREADS`` threads. A surge on one channel sends more
requests than there are threads; without a limit they would take every thread, and another channel's
request would wait behind them. This middleware counts, per process, the storefront API requests
(``/api/``, and the compat facade's ``/compat/``) of each channel in progress: a channel already
holding ``ceil(WEB_THREADS * WEB_CHANNEL_SHARE)`` threads of this process while another channel is
being served here (a request in progress or seen within ``ACTIVE_SECONDS``) is answered ``503`` with a
short ``Retry-After`` at once,
before its API key, its body or the database are touched (a few microseconds: one lock and a few
dicts). The other threads stay free for the other channels, and for the issuer's hosts, which are never
limited here. A channel alone in a process may borrow all its threads but one: the bulkhead never
refuses work an idle server could do. A channel under no pressure (none of its requests refused here
in the last ``SHED_MEMORY_SECONDS``) may go one stamp request or read over its share while two threads
are free
(:func:`_may_go_one_over`): a quiet channel's occasional overlapping requests are served, a surging
channel's are not. Pages and static files are not counted (a browser loads several at once, and they
are not where a surge lands).

A channel refused here within ``SHED_MEMORY_SECONDS`` (it wants more than its share) has the requests
it is given run at a lower CPU priority, ``WEB_BUSY_NICE`` added to the thread's nice value until the
answer leaves (``gateway.threadpriority``): on a busy machine the other channels' threads run first.

**Classes** (docs/stamping.md, "Overload priorities"). Each request is classified from its method and
path alone (:func:`classify`), highest first:

- ``accepted``: reads of work already accepted - ``GET`` of a stamp, its document, a batch, an order,
  a refund, and ``/api/v1/status``. Their cap is one thread above the share (never all threads but
  none): a channel's surge of new requests never keeps its clients from seeing their accepted jobs.
- payment providers' webhooks (``/api/v1/payments/``): never counted nor refused - crediting money
  already paid ranks above any new work.
- ``stamping``: new stamp requests, and every other API call (lists, balance, document types).
  Capped at the share. Refused ``503 channel_busy``.
- ``purchases`` (``POST /api/v1/orders``) and ``registrations`` (``POST /api/v1/customers``): while
  a higher class of the channel wants threads (one of its requests is in progress here, or was refused
  within ``SHED_MEMORY_SECONDS``), they get a smaller slice of the share - registrations the smallest
  (:func:`class_cap`); while it was refused within that time and other channels are being served, they
  are refused outright, so the freed thread goes to the higher class (strict priority: with one thread a
  channel, counts alone could not rank anything). Refused ``503 purchases_busy`` /
  ``registrations_busy``. Without a higher class wanting threads they may use the whole share.

Every refusal carries the class it shed (``class``). The caps only shrink with the class, so whenever a
higher class is refused every lower one is refused as well: nothing refuses a higher class while a
lower one is served.

The count is per process on purpose: a thread is what a request occupies, and the lock is all it
costs. Across ``N`` processes a channel holds at most ``N`` times its per-process share. A sync worker
(one thread) cannot be shared, so with ``WEB_THREADS = 1`` the bulkhead lets every request through -
run the web tier with threads (``gateway/gunicorn_conf.py`` does).
"""

from __future__ import annotations

import math
import random
import re
import threading
import time

from django.conf import settings

from gateway import threadpriority
from gateway.http.problems import problem_response
from kernel import metrics

ACCEPTED, STAMPING, PURCHASES, REGISTRATIONS = "accepted", "stamping", "purchases", "registrations"
CLASSES = (ACCEPTED, STAMPING, PURCHASES, REGISTRATIONS)  # highest first
RANK = {kind: i for i, kind in enumerate(CLASSES)}
WHAT = {
    ACCEPTED: "requests",
    STAMPING: "requests",
    PURCHASES: "new purchases",
    REGISTRATIONS: "new customers",
}

_lock = threading.Lock()
_in_flight: dict[str, int] = {}  # schema -> its requests in progress in this process (every class)
_class_in_flight: dict[tuple[str, str], int] = {}  # (schema, class) -> of them, this class's
_shed: dict[tuple[str, str], float] = {}  # (schema, class) -> when this process last refused one
_last_seen: dict[str, float] = {}  # schema -> when this process last began one of its requests
PAYMENT_WEBHOOKS = "/api/v1/payments/"  # never refused here: money already paid is credited first
# The storefront API and the compat facade (the issuer API's shapes, over the same services: its
# docSigningZ holds a thread while it waits for the stamp, the surest way for one channel to fill them).
COUNTED = ("/api/", "/compat/")
ACTIVE_SECONDS = 10.0  # a channel seen this recently counts as being served (a few requests a minute keep it so)
SHED_MEMORY_SECONDS = 2.0  # a refused request of a class wants threads this long (its Retry-After: 1 or 2 s)

_READ_METHODS = frozenset({"GET", "HEAD"})
# Reads of work already accepted: a stamp (not the preview), its document, a batch, an order, a refund.
_ACCEPTED_READ = re.compile(
    r"^/api/v1/(?:stamps/(?!preview/?$)[^/]+(?:/document)?|batches/[^/]+|orders/[^/]+|refunds/[^/]+|status)/?$"
)


def classify(method: str, path: str) -> str | None:
    """The class of a storefront API request, from its method and path alone (no body, no database);
    None for what the bulkhead never counts (payment providers' webhooks)."""
    if path.startswith(PAYMENT_WEBHOOKS):
        return None
    if method in _READ_METHODS:
        return ACCEPTED if _ACCEPTED_READ.match(path) else STAMPING
    if method == "POST":
        route = path.rstrip("/")
        if route == "/api/v1/orders":
            return PURCHASES
        if route == "/api/v1/customers":
            return REGISTRATIONS
    return STAMPING


def channel_cap() -> int:
    """The most requests of one channel this process handles at once (its share)."""
    threads = max(1, int(settings.WEB_THREADS))
    if threads == 1:
        return 1_000_000  # nothing to share: see the module docstring
    return max(1, min(threads - 1, math.ceil(threads * settings.WEB_CHANNEL_SHARE)))


def class_cap(kind: str, limit: int, *, threads: int, sharing: bool) -> int:
    """The most requests of a channel in progress (all classes together) at which one more of ``kind``
    is still taken, while a higher class wants threads. ``limit``: the channel's share (``sharing``:
    other channels are being served here) or what it may borrow alone. Never below 1 (a channel holding
    nothing is never refused by counts), and never larger for a lower class."""
    if kind == ACCEPTED:
        return max(limit, min(threads - 1, limit + 1)) if sharing else limit
    if kind == STAMPING:
        return limit
    step = max(1, limit // 4)
    purchases = max(1, limit - step)
    return purchases if kind == PURCHASES else max(1, purchases - step)


def in_flight(schema: str, kind: str | None = None) -> int:
    if kind is None:
        return _in_flight.get(schema, 0)
    return _class_in_flight.get((schema, kind), 0)


def reset() -> None:
    """Forget every count (tests)."""
    with _lock:
        _in_flight.clear()
        _class_in_flight.clear()
        _shed.clear()
        _last_seen.clear()


def _others_active(schema: str, now: float) -> bool:
    """Is another channel being served by this process (lock held)? Forgets channels long gone."""
    for other, seen in list(_last_seen.items()):
        if other == schema:
            continue
        if _in_flight.get(other, 0) or now - seen < ACTIVE_SECONDS:
            return True
        if now - seen > 60 * ACTIVE_SECONDS:
            del _last_seen[other]
    return False


def _refuses(schema: str, kind: str, held: int, now: float) -> bool:
    """Is a request of ``kind`` refused now (lock held)? See the module docstring."""
    threads = int(settings.WEB_THREADS)
    share = channel_cap()
    sharing = _others_active(schema, now)
    limit = share if sharing else max(share, threads - 1)  # alone here, all threads but one
    cap = class_cap(kind, limit, threads=threads, sharing=sharing)
    higher = CLASSES[: RANK[kind]]
    shed_recently = any(now - _shed.get((schema, h), -1e9) < SHED_MEMORY_SECONDS for h in higher)
    wanted = shed_recently or any(_class_in_flight.get((schema, h), 0) for h in higher)
    bound = cap if wanted else max(cap, limit)
    if held >= bound:
        extra = sharing and kind in (ACCEPTED, STAMPING) and held < bound + 1  # never for the lower classes
        return not (extra and _may_go_one_over(schema, threads, now))
    return sharing and shed_recently  # the next free thread goes to the class refused


def _pressed(schema: str, now: float) -> bool:
    """Has this process refused a request of ``schema`` (any class) within ``SHED_MEMORY_SECONDS``
    (lock held)? Such a channel wants more than its share: the requests it is given run at a lower CPU
    priority (``WEB_BUSY_NICE``)."""
    return any(now - _shed.get((schema, kind), -1e9) < SHED_MEMORY_SECONDS for kind in CLASSES)


def _may_go_one_over(schema: str, threads: int, now: float) -> bool:
    """A channel under no pressure (none of its requests refused here within ``SHED_MEMORY_SECONDS``)
    may take one thread over its share while two are free, so one stays free for the others. A quiet
    channel's requests overlap now and then (3 a second, each tens of milliseconds, three processes):
    with a one-thread share the second was refused although the process had threads to spare. A surging
    channel is refused all the time, so it never qualifies for more than one extra request in a row."""
    if threads - sum(_in_flight.values()) < 2:
        return False
    return not _pressed(schema, now)


class ChannelBulkheadMiddleware:
    """After ``TenantMiddleware``: requests on a channel's host count against that channel's share."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        tenant = getattr(request, "tenant", None)
        schema = getattr(tenant, "schema_name", "public")
        is_channel = schema != "public" and getattr(tenant, "kind", "channel") == "channel"
        if not is_channel or not request.path.startswith(COUNTED) or int(settings.WEB_THREADS) <= 1:
            return self.get_response(request)
        kind = classify(request.method, request.path)
        if kind is None:
            return self.get_response(request)
        now = time.monotonic()
        busy = False
        with _lock:
            held = _in_flight.get(schema, 0)
            _last_seen[schema] = now
            refused = _refuses(schema, kind, held, now)
            if refused:
                _shed[(schema, kind)] = now
            else:
                _in_flight[schema] = held + 1
                _class_in_flight[(schema, kind)] = _class_in_flight.get((schema, kind), 0) + 1
                busy = _pressed(schema, now)
        if refused:
            return self._refusal(request, tenant, kind, held)
        try:
            with threadpriority.lowered(int(settings.WEB_BUSY_NICE) if busy else 0) as lowered:
                if lowered:
                    metrics.WEB_LOWERED.labels(schema).inc()
                return self.get_response(request)
        finally:
            with _lock:
                left = _in_flight.get(schema, 1) - 1
                if left > 0:
                    _in_flight[schema] = left
                else:
                    _in_flight.pop(schema, None)
                left = _class_in_flight.get((schema, kind), 1) - 1
                if left > 0:
                    _class_in_flight[(schema, kind)] = left
                else:
                    _class_in_flight.pop((schema, kind), None)

    @staticmethod
    def _refusal(request, tenant, kind: str, held: int):
        retry_after = 1 + int(random.random() < 0.5)  # half come back a second later: no herd
        if kind in (PURCHASES, REGISTRATIONS):
            title = f"Too many requests of this channel at once: {WHAT[kind]} wait"
            why = (
                f"{tenant.name} has {held} requests in progress on this server, and its {WHAT[kind]} rank below "
                f'its stamps and the work it has already placed (docs/stamping.md, "Overload priorities").'
            )
        else:
            title = "Too many requests of this channel at once"
            why = f"{tenant.name} already has {held} requests in progress on this server, its share."
        answer = {
            "status": 503,
            "title": title,
            "detail": f"{why} Nothing was done with this one. Try again in {retry_after} seconds.",
            "headers": {"Retry-After": str(retry_after)},
            "class": kind,  # the class shed
        }
        if kind == PURCHASES:
            response = problem_response(request, code="purchases_busy", **answer)
        elif kind == REGISTRATIONS:
            response = problem_response(request, code="registrations_busy", **answer)
        else:
            response = problem_response(request, code="channel_busy", **answer)
        response._has_been_logged = True  # load shed on purpose: not a server error to log
        return response
