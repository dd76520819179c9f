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


class Onboarding(models.Model):
    """A channel the issuer's staff asked for in the back office, provisioned in the background
    (``tenants.run_onboarding``): what was asked, how far it got, and the channel once it exists."""

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        PROVISIONING = "provisioning", "Provisioning"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    code = models.CharField(max_length=31, validators=[channel_code_validator])
    name = models.CharField(max_length=200)
    hosts = models.JSONField(default=list, help_text="Host names; the first is the primary one.")
    settings = models.JSONField(default=dict, help_text="Price, limits and share for the new channel.")
    owner_email = models.EmailField()
    portal_url = models.CharField(max_length=300, help_text="Where the owner's invitation link points.")
    requested_by = models.CharField(max_length=150)
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    step = models.CharField(max_length=200, blank=True)
    error = models.TextField(blank=True)
    channel = models.ForeignKey(Channel, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-created_at",)
        constraints = [
            models.UniqueConstraint(
                fields=["code"],
                condition=models.Q(state__in=["queued", "provisioning"]),
                name="one_onboarding_in_progress_per_code",
            )
        ]

    def __str__(self) -> str:
        return f"onboarding of {self.code} ({self.state})"
