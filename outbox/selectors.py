"""Reads of a channel's webhook endpoints and deliveries (current schema)."""

from __future__ import annotations

from django.db.models import QuerySet

from outbox.models import WebhookDelivery, WebhookEndpoint


def endpoints() -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.order_by("id")


def deliveries(*, status: str = "") -> QuerySet[WebhookDelivery]:
    """Deliveries with their endpoints, newest first; only ``status``'s when it is one."""
    found = WebhookDelivery.objects.select_related("endpoint").order_by("-id")
    if status in WebhookDelivery.Status.values:
        found = found.filter(status=status)
    return found
