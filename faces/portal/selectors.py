"""Reads for the channel portal. Everything runs in the current channel's schema, except the
ledger and API keys (public schema), which are always filtered by the channel's id."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import Count, Q
from django.db.models.functions import TruncDay, TruncHour
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy

from gateway.models import ApiKey
from kernel.errors import NotFound
from stamping.models import Batch, StampJob


def customer_quotas(*, channel_id: int, customer_ids: list[int]) -> dict[int, dict[str, int]]:
    """``{customer_id: {"available", "held", "used"}}`` for the given customers, in two queries."""
    quotas = {cid: {"available": 0, "held": 0, "used": 0} for cid in customer_ids}
    if not customer_ids:
        return quotas
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT customer_id, credits_posted - debits_posted - debits_pending, debits_pending"
            " FROM ledger_account WHERE kind = 'wallet' AND channel_id = %s AND customer_id = ANY(%s)",
            [channel_id, customer_ids],
        )
        for customer_id, available, held in cursor.fetchall():
            quotas[customer_id].update(available=available, held=held)
        cursor.execute(
            "SELECT a.customer_id, coalesce(sum(t.amount), 0)::bigint FROM ledger_transfer t"
            " JOIN ledger_account a ON a.id = t.debit_account_id"
            " WHERE a.kind = 'wallet' AND a.channel_id = %s AND a.customer_id = ANY(%s) AND t.kind = 'commit'"
            " GROUP BY a.customer_id",
            [channel_id, customer_ids],
        )
        for customer_id, used in cursor.fetchall():
            quotas[customer_id]["used"] = used
    return quotas


@dataclass(frozen=True)
class ActivityRange:
    key: str
    label: str
    count: int
    step: timedelta
    fmt: str  # Django's date format of a bucket's label (month names in the page's language)


RANGES = {
    "48h": ActivityRange("48h", gettext_lazy("Last 48 hours, per hour"), 48, timedelta(hours=1), "H:00"),
    "30d": ActivityRange("30d", gettext_lazy("Last 30 days, per day"), 30, timedelta(days=1), "d M"),
}


def activity_range(key: str | None) -> ActivityRange:
    return RANGES.get(key or "", RANGES["48h"])


def stamp_activity(window: ActivityRange, now: datetime | None = None) -> tuple[list[datetime], list[int], list[int]]:
    """Finished stamping jobs of this channel per hour or day: (bucket starts, stamped, failed)."""
    now = timezone.localtime(now or timezone.now())
    if window.step == timedelta(days=1):
        last = now.replace(hour=0, minute=0, second=0, microsecond=0)
        trunc = TruncDay("finished_at")
    else:
        last = now.replace(minute=0, second=0, microsecond=0)
        trunc = TruncHour("finished_at")
    starts = [last - window.step * (window.count - 1 - i) for i in range(window.count)]
    rows = (
        StampJob.objects.filter(
            finished_at__gte=starts[0], status__in=[StampJob.Status.STAMPED, StampJob.Status.FAILED]
        )
        .annotate(bucket=trunc)
        .values("bucket")
        .annotate(
            stamped=Count("id", filter=Q(status=StampJob.Status.STAMPED)),
            failed=Count("id", filter=Q(status=StampJob.Status.FAILED)),
        )
    )
    index = {start: i for i, start in enumerate(starts)}
    stamped, failed = [0] * len(starts), [0] * len(starts)
    for row in rows:
        i = index.get(timezone.localtime(row["bucket"]))
        if i is not None:
            stamped[i], failed[i] = row["stamped"], row["failed"]
    return starts, stamped, failed


def batch_progress(limit: int = 5) -> list[dict]:
    """The latest batches with how many of their jobs are done."""
    batches = Batch.objects.annotate(
        total=Count("jobs"),
        stamped=Count("jobs", filter=Q(jobs__status=StampJob.Status.STAMPED)),
        failed=Count("jobs", filter=Q(jobs__status=StampJob.Status.FAILED)),
    ).order_by("-created_at")[:limit]
    return [
        {
            "batch": b,
            "total": b.total,
            "stamped": b.stamped,
            "failed": b.failed,
            "done": b.stamped + b.failed,
            "percent": round(100 * (b.stamped + b.failed) / b.total) if b.total else 100,
        }
        for b in batches
    ]


def api_keys_for(*, channel) -> list[ApiKey]:
    return list(ApiKey.objects.filter(channel_id=channel.pk).order_by("revoked_at", "-created_at"))


def api_key_get_for(*, channel, key_id: int) -> ApiKey:
    """The channel's own key ``key_id``; another channel's key is as unknown as a missing one."""
    key = ApiKey.objects.filter(channel_id=channel.pk, pk=key_id).first()
    if key is None:
        raise NotFound(gettext("This channel has no such API key."))
    return key
