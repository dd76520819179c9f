"""Database helpers every domain may use."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from django.db import transaction


def each_locked(queryset, *, limit: int, handle: Callable[[object], bool]) -> int:
    """For sweepers: ``handle(row)`` for each row of ``queryset`` (up to ``limit``), each in a
    transaction of its own with the row locked. Returns how many calls returned True.

    The ids are listed first; then each row is locked with ``FOR UPDATE SKIP LOCKED`` and the
    queryset's filter checked again under the lock, so a row another sweeper (or a webhook) holds,
    or that changed state meanwhile, is skipped rather than waited for or handled twice. What
    ``handle`` does for a row commits with it; if it raises, that row's work rolls back and the
    error propagates (the rows before it stay done).
    """
    done = 0
    for pk in queryset.values_list("pk", flat=True)[:limit]:
        with transaction.atomic():
            row = queryset.select_for_update(skip_locked=True).filter(pk=pk).first()
            if row is not None and handle(row):
                done += 1
    return done


def narrowed(
    queryset,
    *,
    customer_id: int | None = None,
    status: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
):
    """The filters every API list offers, newest first: a customer, a status and a ``[since, until)``
    window of creation times (rows with ``customer_id``, ``status`` and ``created_at``)."""
    if customer_id is not None:
        queryset = queryset.filter(customer_id=customer_id)
    if status:
        queryset = queryset.filter(status=status)
    if since is not None:
        queryset = queryset.filter(created_at__gte=since)
    if until is not None:
        queryset = queryset.filter(created_at__lt=until)
    return queryset.order_by("-created_at", "-id")
