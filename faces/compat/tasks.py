"""Periodic work of the facade (Celery beat): safe to run twice, on several workers at once."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django_tenants.utils import schema_context

from faces.compat.accounts import purge_old_uploads
from tenants.models import Channel


@shared_task(name="compat.purge_uploads", ignore_result=True)
def purge_uploads() -> int:
    """Per channel: uploads older than a reservation's lifetime (they can no longer be stamped)."""
    older_than = timedelta(seconds=settings.COMPAT_RESERVATION_SECONDS)
    deleted = 0
    for schema_name in Channel.objects.filter(kind=Channel.Kind.CHANNEL).exclude(schema_name="public").values_list(
        "schema_name", flat=True
    ):
        with schema_context(schema_name):
            deleted += purge_old_uploads(older_than=older_than)
    return deleted
