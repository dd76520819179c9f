"""Back-office writes that are the back office's own: incident notes for the public status page.

Deposits, reconciliation and the rest have their services in their own packages
(``billing.deposits``, ``billing.reconciliation``); the views call those directly.
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from issuer.models import IncidentNote
from kernel.errors import ApplicationError
from staff.audit import record

# The public status page's snapshot is cached for a few seconds (faces.backoffice.selectors.cached_status);
# a new or changed incident note drops it so the page shows the note at once.
STATUS_CACHE_KEY = "issuer:status:context"


def forget_cached_status() -> None:
    with contextlib.suppress(Exception):  # it expires by itself within seconds
        cache.delete(STATUS_CACHE_KEY)


class InvalidIncidentNote(ApplicationError):
    code = "invalid_incident_note"
    http_status = 400
    title = "Invalid incident note"
    what_to_do = "The incident note needs a title, a message and a valid severity; correct the form and save again."


def _check(*, title: str, started_at: datetime, resolved_at: datetime | None) -> None:
    if not title.strip():
        raise InvalidIncidentNote("An incident note needs a title.")
    if resolved_at is not None and resolved_at < started_at:
        raise InvalidIncidentNote("An incident cannot be resolved before it started.")


@transaction.atomic
def create_incident_note(
    *,
    title: str,
    body: str = "",
    severity: str,
    started_at: datetime | None = None,
    resolved_at=None,
    actor: Any = None,
) -> IncidentNote:
    started_at = started_at or timezone.now()
    _check(title=title, started_at=started_at, resolved_at=resolved_at)
    note = IncidentNote.objects.create(
        title=title.strip(), body=body.strip(), severity=severity, started_at=started_at, resolved_at=resolved_at
    )
    record(actor, "incident.created", note, title=note.title, severity=severity, resolved_at=resolved_at)
    transaction.on_commit(forget_cached_status)  # the status page shows it at once
    return note


@transaction.atomic
def update_incident_note(
    *,
    note_id: int,
    title: str,
    body: str,
    severity: str,
    started_at: datetime,
    resolved_at: datetime | None,
    actor: Any = None,
) -> IncidentNote:
    note = IncidentNote.objects.select_for_update().get(pk=note_id)
    _check(title=title, started_at=started_at, resolved_at=resolved_at)
    note.title, note.body, note.severity = title.strip(), body.strip(), severity
    note.started_at, note.resolved_at = started_at, resolved_at
    note.save()
    record(
        actor, "incident.updated", note,
        title=note.title, severity=severity, started_at=started_at, resolved_at=resolved_at,
    )  # fmt: skip
    transaction.on_commit(forget_cached_status)
    return note


@transaction.atomic
def resolve_incident_note(*, note_id: int, at: datetime | None = None, actor: Any = None) -> IncidentNote:
    """Mark the incident resolved now (idempotent: an already resolved note keeps its time)."""
    note = IncidentNote.objects.select_for_update().get(pk=note_id)
    if note.resolved_at is None:
        note.resolved_at = max(at or timezone.now(), note.started_at)
        note.save(update_fields=["resolved_at", "updated_at"])
        record(actor, "incident.resolved", note, title=note.title, resolved_at=note.resolved_at)
        transaction.on_commit(forget_cached_status)
    return note
