"""The webhook outbox: where a channel wants its events, and one row per event per endpoint.

The tables were created by the ``edge`` app (``edge_webhookendpoint``, ``edge_webhookdelivery``) and
keep their names: ``outbox.0001`` takes over the models' state without touching the database.
"""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q


class WebhookEndpoint(models.Model):
    """Where a channel wants to hear about its events. ``events`` lists event types; ``*`` means all."""

    url = models.URLField(max_length=500)
    secret = models.CharField(max_length=100, help_text="Signs every delivery (HMAC-SHA256); shown to the channel.")
    events = ArrayField(models.CharField(max_length=100), default=list, blank=True)
    active = models.BooleanField(default=True)
    description = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "edge_webhookendpoint"
        ordering = ("id",)

    def __str__(self) -> str:
        return self.url


class WebhookDelivery(models.Model):
    """One event for one endpoint: the outbox row. It is the source of truth; tasks only act on it.

    ``event_id`` is unique per endpoint (one event fans out to every subscribed endpoint, and each
    receiver deduplicates by the id it sees). ``attempts`` logs every attempt.
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.PROTECT, related_name="deliveries")
    event_id = models.CharField(max_length=40)
    event_type = models.CharField(max_length=100)
    payload = models.JSONField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempt_count = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    attempts = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    # A callback in the caller's own format (``enqueue_callback``): the payload is the body, no envelope.
    bare = models.BooleanField(default=False, db_default=False)  # (db_default: old code still inserts)

    class Meta:
        db_table = "edge_webhookdelivery"
        ordering = ("id",)
        constraints = [
            models.UniqueConstraint(fields=("endpoint", "event_id"), name="edge_webhook_event_once_per_endpoint"),
        ]
        indexes = [
            models.Index(fields=("next_attempt_at",), name="edge_webhook_due", condition=Q(status="pending")),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id} -> {self.endpoint_id} ({self.status})"
