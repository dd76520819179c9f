"""Bulkheads in the web tier: while channels share a process, one holds at most its share of the threads.

A web process (gunicorn ``gthread``) has ``WEB_THREADS`` threads. A surge on one channel sends more
requests than there are threads; without a limit they would take every thread, and another channel's
request would wait behind them. This middleware counts, per process, the storefront API requests
(``/api/``) of each channel in progress: a channel already holding ``ceil(WEB_THREADS *
WEB_CHANNEL_SHARE)`` threads of this process while another channel is being served here (a request in
progress or seen within ``ACTIVE_SECONDS``) is answered ``503 channel_busy`` with a short
``Retry-After`` at once, before its API key, its body or the database are touched (a few microseconds:
one lock and two dicts). The other threads stay free for the other channels, and for the issuer's
hosts, which are never limited here. A channel alone in a process may borrow all its threads but one:
the bulkhead never refuses work an idle server could do. Pages and static files are not counted (a
browser loads several at once, and they are not where a surge lands). Nor are payment providers'
webhooks (``/api/v1/payments/``): crediting money already paid ranks above any new work (docs/stamping.md,
"Overload priorities"), so a channel's surge never refuses them.

The count is per process on purpose: a thread is what a request occupies, and the lock is all it
costs. Across ``N`` processes a channel holds at most ``N`` times its per-process share. A sync worker
(one thread) cannot be shared, so with ``WEB_THREADS = 1`` the bulkhead lets every request through -
run the web tier with threads (``gateway/gunicorn_conf.py`` does).
"""

from __future__ import annotations

import math
import random
import threading
import time

from django.conf import settings

from gateway.http.problems import problem_response

_lock = threading.Lock()
_in_flight: dict[str, int] = {}
_last_seen: dict[str, float] = {}  # schema -> when this process last began one of its requests
PAYMENT_WEBHOOKS = "/api/v1/payments/"  # never refused here: money already paid is credited first
ACTIVE_SECONDS = 10.0  # a channel seen this recently counts as being served (a few requests a minute keep it so)


def channel_cap() -> int:
    """The most requests of one channel this process handles at once."""
    threads = max(1, int(settings.WEB_THREADS))
    if threads == 1:
        return 1_000_000  # nothing to share: see the module docstring
    return max(1, min(threads - 1, math.ceil(threads * settings.WEB_CHANNEL_SHARE)))


def in_flight(schema: str) -> int:
    return _in_flight.get(schema, 0)


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


class ChannelBulkheadMiddleware:
    """After ``TenantMiddleware``: requests on a channel's host count against that channel's share."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        tenant = getattr(request, "tenant", None)
        schema = getattr(tenant, "schema_name", "public")
        is_channel = schema != "public" and getattr(tenant, "kind", "channel") == "channel"
        if not is_channel or not request.path.startswith("/api/") or request.path.startswith(PAYMENT_WEBHOOKS):
            return self.get_response(request)
        cap = channel_cap()
        now = time.monotonic()
        with _lock:
            held = _in_flight.get(schema, 0)
            _last_seen[schema] = now
            borrow = max(cap, int(settings.WEB_THREADS) - 1)  # alone here, all threads but one
            if held >= cap and (held >= borrow or _others_active(schema, now)):
                refused = True
            else:
                refused = False
                _in_flight[schema] = held + 1
        if refused:
            retry_after = 1 + int(random.random() < 0.5)  # half come back a second later: no herd
            response = problem_response(
                request,
                status=503,
                code="channel_busy",
                title="Too many requests of this channel at once",
                detail=(
                    f"{tenant.name} already has {held} requests in progress on this server, its share. "
                    f"Nothing was done with this one. Try again in {retry_after} seconds."
                ),
                headers={"Retry-After": str(retry_after)},
            )
            response._has_been_logged = True  # load shed on purpose: not a server error to log
            return response
        try:
            return self.get_response(request)
        finally:
            with _lock:
                left = _in_flight.get(schema, 1) - 1
                if left > 0:
                    _in_flight[schema] = left
                else:
                    _in_flight.pop(schema, None)
