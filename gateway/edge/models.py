"""Per-channel edge data (channel schema): idempotency records, webhook endpoints and deliveries."""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q


class IdempotencyRecord(models.Model):
    """The first answer to a POST sent with an ``Idempotency-Key``, kept 24 hours.

    ``(api_key_id, key)`` is unique: the database, not a check-then-insert, decides which of two
    concurrent requests with one key runs. ``api_key_id`` points at ``gateway.ApiKey`` in the public
    schema; it is a plain column because the key table lives in another schema.
    """

    class State(models.TextChoices):
        IN_PROGRESS = "in_progress"
        COMPLETED = "completed"

    api_key_id = models.BigIntegerField()
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of method, path, body and API key.")
    request_method = models.CharField(max_length=10)
    request_path = models.CharField(max_length=2000)
    state = models.CharField(max_length=16, choices=State.choices, default=State.IN_PROGRESS)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.BinaryField(null=True, blank=True)
    response_headers = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    locked_at = models.DateTimeField(help_text="When the request now in flight took the key.")
    completed_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ("id",)
        constraints = [
            models.UniqueConstraint(fields=("api_key_id", "key"), name="edge_idempotency_key_unique_per_api_key"),
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.state})"


class WebhookEndpoint(models.Model):
    """Where a channel wants to hear about its events. ``events`` lists event types; ``*`` means all."""

    url = models.URLField(max_length=500)
    secret = models.CharField(max_length=100, help_text="Signs every delivery (HMAC-SHA256); shown to the channel.")
    events = ArrayField(models.CharField(max_length=100), default=list, blank=True)
    active = models.BooleanField(default=True)
    description = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
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

    class Meta:
        ordering = ("id",)
        constraints = [
            models.UniqueConstraint(fields=("endpoint", "event_id"), name="edge_webhook_event_once_per_endpoint"),
        ]
        indexes = [
            models.Index(fields=("next_attempt_at",), name="edge_webhook_due", condition=Q(status="pending")),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id} -> {self.endpoint_id} ({self.status})"
