"""Per-channel data lives in the channel's schema (this app is a TENANT_APP)."""

from django.db import models


class Customer(models.Model):
    """An end user of one channel's storefront."""

    external_ref = models.CharField(max_length=100, unique=True, help_text="The channel's own id for this customer.")
    name = models.CharField(max_length=200)
    email = models.EmailField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("id",)

    def __str__(self) -> str:
        return self.name
