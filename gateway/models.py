"""Edge data in the public schema: channel API keys."""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models


class ApiKey(models.Model):
    """A channel's storefront API key. Only a SHA-256 digest of the secret is stored.

    The full key reads ``emk_<env>_<prefix>_<secret>``: ``prefix`` (stored, shown in lists) lets a
    leaked key be recognised and looked up; ``secret`` (256 bits) is never stored. A fast digest is
    enough here because the secret is random and long; a slow password hash would only add latency.
    """

    class Scope(models.TextChoices):
        READ = "read"
        PURCHASE = "purchase"
        STAMP = "stamp"
        ADMIN = "admin"

    channel = models.ForeignKey("tenants.Channel", on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    secret_sha256 = models.CharField(max_length=64)
    scopes = ArrayField(models.CharField(max_length=16, choices=Scope.choices))
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("channel_id", "created_at")

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}...)"
