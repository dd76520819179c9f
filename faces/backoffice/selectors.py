"""Reads for the issuer's back office and the public status page.

Nothing here writes. Per-channel figures come from the ledger (``channel_balance``), the channel's
own schema (queue depth) and Redis (drain rate); time series from the serial registry (stamps) and
the ledger's transfers (stock).
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy
from django_tenants.utils import schema_context

from billing.ledger.selectors import channel_balance, stock_changes_per_bucket
from issuer.incidents import STATUS_CACHE_KEY, forget_cached_status  # noqa: F401 - used by the pages
from issuer.models import IncidentNote
from issuer.selectors import used_serials_per_bucket
from stamping import admission
from tenants.models import Channel

HEARTBEAT_KEY = "gateway:beat:last"  # written by gateway.tasks.heartbeat every 30 s
HEARTBEAT_OK_SECONDS = 90
HEARTBEAT_STALE_SECONDS = 300
STATUS_CACHE_SECONDS = 5


@dataclass(frozen=True)
class Window:
    key: str
    label: str
    span: timedelta
    bucket: timedelta

    @property
    def bucket_minutes(self) -> float:
        return self.bucket.total_seconds() / 60


WINDOWS = {
    "1h": Window("1h", gettext_lazy("Last hour"), timedelta(hours=1), timedelta(minutes=1)),
    "6h": Window("6h", gettext_lazy("Last 6 hours"), timedelta(hours=6), timedelta(minutes=5)),
    "24h": Window("24h", gettext_lazy("Last 24 hours"), timedelta(hours=24), timedelta(minutes=15)),
}


def chart_window(key: str | None) -> Window:
    return WINDOWS.get(key or "", WINDOWS["1h"])


def bucket_starts(window: Window, now: datetime | None = None) -> list[datetime]:
    """The start of each bucket of ``window``; the last bucket holds ``now``."""
    now = now or timezone.now()
    seconds = int(window.bucket.total_seconds())
    last = datetime.fromtimestamp(int(now.timestamp()) // seconds * seconds, tz=now.tzinfo)
    count = int(window.span / window.bucket)
    return [last - window.bucket * (count - 1 - i) for i in range(count)]


def _index(starts: list[datetime], bucket: timedelta, at: datetime) -> int | None:
    i = int((at - starts[0]) / bucket)
    return i if 0 <= i < len(starts) else None


def existing_schemas() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT nspname FROM pg_namespace")
        return {row[0] for row in cursor.fetchall()}


def channels() -> list[Channel]:
    return list(Channel.objects.filter(kind=Channel.Kind.CHANNEL).order_by("code"))


def queue_depth(channel: Channel, schemas: set[str] | None = None) -> int:
    """Stamping jobs of ``channel`` waiting or running (its schema's backlog)."""
    if schemas is not None and channel.schema_name not in schemas:
        return 0
    with schema_context(channel.schema_name):
        return admission.backlog()


def stamps_per_bucket(*, starts: list[datetime], bucket: timedelta) -> dict[int, list[int]]:
    """Used serials per channel per bucket (by ``used_at``)."""
    series: dict[int, list[int]] = {}
    for channel_id, bucket_start, count in used_serials_per_bucket(
        bucket=bucket, origin=starts[0], end=starts[-1] + bucket
    ):
        i = _index(starts, bucket, bucket_start)
        if i is not None:
            series.setdefault(channel_id, [0] * len(starts))[i] += count
    return series


def stock_per_bucket(
    *, starts: list[datetime], bucket: timedelta, available_now: dict[int, int]
) -> dict[int, list[int]]:
    """Each channel's available stock at the end of each bucket, walked back from ``available_now``
    through the transfers since ``starts[0]`` (only the window is read, never the whole history)."""
    deltas: dict[int, list[int]] = {}
    for channel_id, bucket_start, delta in stock_changes_per_bucket(bucket=bucket, origin=starts[0]):
        i = _index(starts, bucket, bucket_start)
        if i is None:
            i = len(starts) - 1  # written after the last bucket began (a clock edge): count it last
        deltas.setdefault(channel_id, [0] * len(starts))[i] += delta
    series = {}
    for channel_id, now_value in available_now.items():
        moves = deltas.get(channel_id, [0] * len(starts))
        values, level = [0] * len(starts), now_value
        for i in range(len(starts) - 1, -1, -1):
            values[i] = level
            level -= moves[i]
        series[channel_id] = values
    return series


def channel_overview(channel_list: list[Channel] | None = None) -> list[dict]:
    """Per channel: stock figures, low-stock flag, queue depth and drain rate."""
    schemas = existing_schemas()
    rows = []
    for channel in channel_list if channel_list is not None else channels():
        balance = channel_balance(channel_id=channel.pk)
        rows.append(
            {
                "channel": channel,
                "balance": balance,
                "low_stock": balance.available < channel.low_stock_threshold,
                "queue_depth": queue_depth(channel, schemas),
                "drain_per_minute": round(admission.drain_rate(scope=channel.schema_name) * 60, 1),
            }
        )
    return rows


# --------------------------------------------------------------------------- status


def format_wait(seconds: int | None) -> str:
    """A wait as people say it, in the language of the page that shows it: lazy, because the status
    page's figures are worked out once and shared by every visitor, whatever their language."""
    if seconds is None:
        return gettext_lazy("no wait")
    if seconds < 60:
        return gettext_lazy("under a minute")
    minutes = math.ceil(seconds / 60)
    if minutes < 60:
        return format_lazy(gettext_lazy("about {minutes} min"), minutes=minutes)
    hours, rest = divmod(minutes, 60)
    if rest:
        return format_lazy(gettext_lazy("about {hours} h {minutes} min"), hours=hours, minutes=rest)
    return format_lazy(gettext_lazy("about {hours} h"), hours=hours)


def channel_queues(channel_list: list[Channel] | None = None) -> list[dict]:
    """Per active channel: queue depth, measured drain rate and the ETA to clear the queue."""
    schemas = existing_schemas()
    overall = admission.drain_rate()
    rows = []
    for channel in channel_list if channel_list is not None else channels():
        if not channel.is_active:
            continue
        depth = queue_depth(channel, schemas)
        rate = admission.drain_rate(scope=channel.schema_name)
        if rate > 0:
            basis, used_rate = "measured", rate
        elif overall > 0:
            basis, used_rate = "all channels", overall
        else:
            basis, used_rate = "estimate", float(settings.STAMPING_ASSUMED_RATE)
        eta = math.ceil(depth / used_rate) if depth else None
        limit = settings.STAMPING_CHANNEL_BACKLOG_LIMIT
        rows.append(
            {
                "channel": channel,
                "queue_depth": depth,
                "drain_per_minute": round(rate * 60, 1),
                "eta_seconds": eta,
                "eta_text": format_wait(eta),
                "eta_basis": basis,
                "fill_percent": min(100, round(100 * depth / limit)) if limit else 0,
            }
        )
    return rows


def _probe(check) -> tuple[bool, float]:
    started = time.perf_counter()
    try:
        check()
    except Exception:  # noqa: BLE001 - a health probe reports any failure, it never raises
        return False, 0.0
    return True, round((time.perf_counter() - started) * 1000, 1)


def component_health(now: float | None = None) -> list[dict]:
    """PostgreSQL, Redis and the workers (their heartbeat), each operational / degraded / down."""
    from gateway.probes import CHECKS

    # Names and details are lazy: the status page shares these figures with every visitor (cached) and
    # each page shows them in its own language; ``key`` is what code compares.
    components = []
    for name, label in (
        ("postgres", gettext_lazy("Database (PostgreSQL)")),
        ("redis", gettext_lazy("Queues and rate limits (Redis)")),
    ):
        ok, ms = _probe(CHECKS[name])
        components.append(
            {
                "key": name,
                "name": label,
                "state": "operational" if ok else "down",
                "detail": format_lazy(gettext_lazy("answered in {ms} ms"), ms=ms)
                if ok
                else gettext_lazy("not answering"),
            }
        )
    try:
        beat = cache.get(HEARTBEAT_KEY)
    except Exception:  # noqa: BLE001 - Redis away: the workers' state is unknown
        beat = None
    now = time.time() if now is None else now
    if beat is None:
        state, detail = "down", gettext_lazy("no heartbeat from the workers")
    else:
        age = max(0, int(now - float(beat)))
        state = (
            "operational" if age <= HEARTBEAT_OK_SECONDS else "degraded" if age <= HEARTBEAT_STALE_SECONDS else "down"
        )
        detail = format_lazy(gettext_lazy("last heartbeat {age} s ago"), age=age)
    components.append({"key": "workers", "name": gettext_lazy("Stamping workers"), "state": state, "detail": detail})
    return components


def overall_state(components: list[dict], incidents: list[IncidentNote]) -> str:
    states = {c["state"] for c in components} | {
        {"major": "down", "minor": "degraded"}.get(i.severity, "operational") for i in incidents
    }
    return "down" if "down" in states else "degraded" if "degraded" in states else "operational"


def open_incidents() -> list[IncidentNote]:
    return list(IncidentNote.objects.filter(resolved_at__isnull=True).order_by("-started_at"))


def recent_incidents(days: int = 7) -> list[IncidentNote]:
    since = timezone.now() - timedelta(days=days)
    return list(IncidentNote.objects.filter(resolved_at__gte=since).order_by("-resolved_at")[:20])


def cached_status(build) -> dict:
    """``build()``'s status context, shared by every visitor for ``STATUS_CACHE_SECONDS``. Without
    Redis the page is worked out for each request (and says so through its Redis component)."""
    try:
        context = cache.get(STATUS_CACHE_KEY)
    except Exception:  # noqa: BLE001 - the cache is an optimisation; the page must still answer
        return build()
    if context is None:
        context = build()
        with contextlib.suppress(Exception):  # as above
            cache.set(STATUS_CACHE_KEY, context, timeout=STATUS_CACHE_SECONDS)
    return context
