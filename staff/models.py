"""The staff audit log (public schema): one row per action an issuer staff member (or an operator's
command) took."""

from __future__ import annotations

from django.db import models


class AuditEntry(models.Model):
    """Who did what to which thing, when, from where. Written in the action's own transaction, never
    changed afterwards."""

    at = models.DateTimeField(db_index=True)
    actor_id = models.IntegerField(null=True, blank=True, help_text="The user's id in the public schema, if any.")
    actor = models.CharField(max_length=150, help_text="The username, or the command that acted.")
    action = models.CharField(max_length=64, db_index=True)
    target = models.CharField(max_length=200, blank=True, help_text="``<model label>:<id>`` or a name.")
    details = models.JSONField(default=dict, blank=True)
    request_id = models.CharField(max_length=128, blank=True)
    client_address = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ("-at", "-id")

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.target}"
