"""The channel tenant and its domains (public schema)."""

from __future__ import annotations

from django.core.validators import RegexValidator
from django.db import models
from django_tenants.models import DomainMixin, TenantMixin

channel_code_validator = RegexValidator(
    r"^[a-z][a-z0-9_]{1,30}$",
    "A channel code is 2-31 characters: lower-case letters, digits and underscores, starting with a letter.",
)


class Channel(TenantMixin):
    """A distribution channel (a tenant with its own schema), or the issuer itself (``public``)."""

    class Kind(models.TextChoices):
        ISSUER = "issuer", "Issuer"
        CHANNEL = "channel", "Channel"

    code = models.CharField(max_length=31, unique=True, validators=[channel_code_validator])
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.CHANNEL)
    is_active = models.BooleanField(default=True)
    # Limits the issuer sets per channel (requests per second, sustained; burst allows short peaks).
    rate_limit_per_key = models.PositiveIntegerField(default=50)
    rate_limit_per_channel = models.PositiveIntegerField(default=200)
    rate_limit_burst = models.PositiveIntegerField(default=100)
    stamping_concurrency = models.PositiveIntegerField(default=4)
    low_stock_threshold = models.PositiveIntegerField(default=100)
    # Retail price of one unit = the stamp duty (face value) + this channel's service fee.
    service_fee_rupiah = models.PositiveIntegerField(default=1_000)
    order_ttl_minutes = models.PositiveIntegerField(default=30)
    refund_window_days = models.PositiveIntegerField(default=45)
    refund_fee_rupiah = models.PositiveIntegerField(default=2_500)
    created_at = models.DateTimeField(auto_now_add=True)

    auto_create_schema = True
    auto_drop_schema = False

    class Meta:
        ordering = ("code",)

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"

    @property
    def is_issuer(self) -> bool:
        return self.kind == self.Kind.ISSUER


class Domain(DomainMixin):
    class Meta:
        ordering = ("domain",)

    def __str__(self) -> str:
        return self.domain
