"""Writing the audit log. Domains call :func:`record` inside the transaction of the action itself, so
an action and its audit entry are committed (or rolled back) together."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.utils import timezone

from kernel.context import client_address_var, request_id_var
from staff.models import AuditEntry

SYSTEM_ACTOR = "system"


def actor_name(actor: Any) -> str:
    """A user's username; a string (a command's name) as given; ``system`` for None."""
    if actor is None:
        return SYSTEM_ACTOR
    if isinstance(actor, str):
        return actor
    return actor.get_username()


def target_name(target: Any) -> str:
    """``<app_label.model>:<pk>`` for a model instance, else ``str(target)``."""
    if isinstance(target, models.Model):
        return f"{target._meta.label_lower}:{target.pk}"
    return "" if target is None else str(target)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, models.Model):
        return target_name(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def record(actor: Any, action: str, target: Any = None, **details: Any) -> AuditEntry:
    """Append one entry: ``actor`` (a user, a command's name, or None for the system) did ``action``
    (``<thing>.<verb>``, e.g. ``deposit.confirmed``) to ``target`` (a model instance or a name), with
    ``details`` (JSON-able; dates become ISO strings). The request id and client address come from the
    request context when there is one (``kernel.context``)."""
    return AuditEntry.objects.create(
        at=timezone.now(),
        actor_id=None if actor is None or isinstance(actor, str) else actor.pk,
        actor=actor_name(actor)[:150],
        action=action,
        target=target_name(target)[:200],
        details=_jsonable(details),
        request_id=request_id_var.get() or "",
        client_address=(client_address_var.get() or "")[:64],
    )
