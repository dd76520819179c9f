"""A channel's portal team (channel schema, next to the channel's ``auth_user`` rows).

Every portal user is a Django user of the channel's schema with one :class:`Member` row giving its
role. One-time links (invitations, password resets) are stored as the SHA-256 of their token only.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    DEVELOPER = "developer", "Developer"
    FINANCE = "finance", "Finance"
    SUPPORT = "support", "Support"


class Member(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="membership")
    email = models.EmailField()
    role = models.CharField(max_length=16, choices=Role.choices)
    invited_by = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    joined_at = models.DateTimeField(null=True, blank=True, help_text="When the invitation was accepted.")
    removed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("email",)

    def __str__(self) -> str:
        return f"{self.email} ({self.role})"

    @property
    def is_current(self) -> bool:
        return self.removed_at is None


class OneTimeLink(models.Model):
    class Purpose(models.TextChoices):
        INVITATION = "invitation", "Invitation"
        PASSWORD_RESET = "password_reset", "Password reset"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    purpose = models.CharField(max_length=16, choices=Purpose.choices)
    digest = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the token (hex); never the token.")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"{self.purpose} link of user {self.user_id}"
