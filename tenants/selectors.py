"""Reads of channels (public schema)."""

from __future__ import annotations

from django.db.models import QuerySet

from tenants.models import Channel


def active_channels() -> QuerySet[Channel]:
    """The channels that are selling, with their hosts."""
    return Channel.objects.filter(kind=Channel.Kind.CHANNEL, is_active=True).prefetch_related("domains")
