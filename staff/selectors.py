"""Reading the audit log."""

from __future__ import annotations

from django.db.models import QuerySet

from staff.models import AuditEntry


def audit_entries(*, action: str = "", actor: str = "") -> QuerySet[AuditEntry]:
    """Newest first, optionally only one action (or action prefix ending in ``.``) or one actor."""
    entries = AuditEntry.objects.all()
    if action:
        entries = entries.filter(action__startswith=action) if action.endswith(".") else entries.filter(action=action)
    if actor:
        entries = entries.filter(actor=actor)
    return entries


def audit_actions() -> list[str]:
    return list(AuditEntry.objects.order_by("action").values_list("action", flat=True).distinct())
