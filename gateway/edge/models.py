"""Per-channel edge data (channel schema): idempotency records. (The webhook outbox is ``outbox``.)"""

from __future__ import annotations

from django.db import models


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
