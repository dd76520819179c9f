"""The facade's own rows (channel schema): its users and their uploads. Everything else it touches
belongs to the domains (reservations and jobs: ``stamping``; units: ``billing``)."""

from __future__ import annotations

import secrets

from django.db import models


class CompatUser(models.Model):
    """A distributor client's login on the facade. It acts with the scopes and rate limits of
    ``api_key`` (a key of this channel) and spends the quota of ``customer``'s wallet. The password is
    stored with Django's hashers; ``token_epoch`` rises on a new password or deactivation, which
    ends every token issued before."""

    username = models.CharField(max_length=150, unique=True)
    email = models.EmailField(blank=True)
    password = models.CharField(max_length=128)
    customer = models.ForeignKey("portal.Customer", on_delete=models.PROTECT, related_name="compat_users")
    api_key = models.ForeignKey("gateway.ApiKey", on_delete=models.PROTECT, related_name="+", db_constraint=False)
    active = models.BooleanField(default=True)
    token_epoch = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    last_login_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("username",)

    def __str__(self) -> str:
        return self.username


def new_upload_id() -> str:
    return f"upl_{secrets.token_hex(10)}"


class CompatUpload(models.Model):
    """A document uploaded with ``/fileupload/uploaddoc2``, waiting for ``docSigningZ``."""

    id = models.CharField(max_length=32, primary_key=True, default=new_upload_id)
    user = models.ForeignKey(CompatUser, on_delete=models.CASCADE, related_name="uploads")
    name = models.CharField(max_length=255)
    data = models.BinaryField()
    size = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return self.id
