"""Brownout changes: pause and resume a class of new work, by hand or automatically on backlog age.

Each change is one transaction in which the pause row, the audit entry and a ``service.paused`` /
``service.resumed`` webhook for every channel it touches are written together (the webhooks go out
after commit, from each channel's outbox).
"""

from __future__ import annotations

import logging
import math
import random
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_tenants.utils import schema_context

from kernel.timestamps import utc_timestamp
from outbox import webhooks
from staff import audit
from stamping import selectors as stamping_selectors
from stamping.brownout import selectors
from stamping.brownout.errors import PAUSED_ERRORS, InvalidBrownout
from stamping.brownout.models import Brownout
from tenants.models import Channel

logger = logging.getLogger(__name__)

AUTOMATIC_ACTOR = "automatic brownout"


def _channels(channel: Channel | None) -> list[Channel]:
    if channel is not None:
        return [channel]
    return list(Channel.objects.filter(kind=Channel.Kind.CHANNEL).exclude(schema_name="public").order_by("pk"))


def _announce(event_type: str, brownout: Brownout) -> None:
    """One webhook per channel the change touches, in this transaction."""
    for channel in _channels(brownout.channel):
        payload = {
            "service": {
                "class": brownout.kind,
                "scope": brownout.scope,
                "channel": channel.code,
                "reason": brownout.reason,
                "automatic": brownout.automatic,
                "since": utc_timestamp(brownout.started_at),
                "until": utc_timestamp(brownout.ended_at) if brownout.ended_at else None,
                "accepting": selectors.accepting(channel.pk, fresh=True),
            }
        }
        with schema_context(channel.schema_name):
            webhooks.enqueue_event(event_type=event_type, payload=payload)


def _check(kind: str) -> None:
    if kind not in Brownout.Kind.values:
        raise InvalidBrownout(f"{kind!r} is not a class that can be paused: {', '.join(Brownout.Kind.values)}.")


def pause(*, kind: str, channel: Channel | None, reason: str, actor, automatic: bool = False) -> Brownout:
    """Pause new work of ``kind`` for ``channel`` (None: every channel). Pausing what is already paused
    changes nothing and returns the pause in force."""
    _check(kind)
    reason = (reason or "").strip()
    if not reason:
        raise InvalidBrownout("Say why new work is paused: the reason is shown to channels and on the status page.")
    try:
        with transaction.atomic():
            brownout = Brownout.objects.create(
                kind=kind,
                channel=channel,
                reason=reason[:2000],
                automatic=automatic,
                started_at=timezone.now(),
                started_by=audit.actor_name(actor)[:150],
            )
            selectors.forget()
            audit.record(
                actor, "brownout.paused", brownout, kind=kind, scope=brownout.scope, reason=brownout.reason,
                automatic=automatic,
            )  # fmt: skip
            _announce("service.paused", brownout)
    except IntegrityError:  # already paused (perhaps by someone else just now)
        existing = selectors.open_brownout(kind=kind, channel_id=channel.pk if channel else None)
        if existing is None:
            raise
        return existing
    transaction.on_commit(selectors.forget)
    logger.warning(
        "brownout: new work paused", extra={"kind": kind, "scope": brownout.scope, "automatic": automatic}
    )
    return brownout


def resume(*, kind: str, channel: Channel | None, actor, automatic_only: bool = False) -> Brownout | None:
    """Lift the pause of ``kind`` for ``channel`` (None: the every-channel one); None if there is none
    (or, with ``automatic_only``, if the one in force was started by hand)."""
    _check(kind)
    with transaction.atomic():
        brownout = (
            Brownout.objects.select_for_update()
            .filter(kind=kind, channel=channel, ended_at__isnull=True)
            .first()
        )
        if brownout is None or (automatic_only and not brownout.automatic):
            return None
        brownout.ended_at = timezone.now()
        brownout.ended_by = audit.actor_name(actor)[:150]
        brownout.save(update_fields=["ended_at", "ended_by"])
        selectors.forget()
        audit.record(
            actor, "brownout.resumed", brownout, kind=kind, scope=brownout.scope, automatic=brownout.automatic,
            paused_for_seconds=round((brownout.ended_at - brownout.started_at).total_seconds()),
        )  # fmt: skip
        _announce("service.resumed", brownout)
    transaction.on_commit(selectors.forget)
    logger.warning("brownout: new work resumed", extra={"kind": kind, "scope": brownout.scope})
    return brownout


def refuse_if_paused(*, kind: str, channel: Channel) -> None:
    """Raise the class's ``503 <kind>_paused`` when new work of ``kind`` is paused for ``channel``
    (no query: the per-process copy of :mod:`selectors`)."""
    paused = selectors.pause_for(kind=kind, channel_id=channel.pk)
    if paused is None:
        return
    error_class = PAUSED_ERRORS[kind]
    low, high = settings.BROWNOUT_RETRY_AFTER_SECONDS
    retry_after = math.ceil(random.uniform(low, high))  # spread: refused clients do not return together
    what = Brownout.Kind(kind).label
    also = "" if paused.kind == kind else f" (with {Brownout.Kind(paused.kind).label}, which come first)"
    error = error_class(
        f"{channel.name}: {what} are paused{also} "
        f"{'for every channel' if paused.channel_id is None else 'for this channel'} since "
        f"{utc_timestamp(paused.started_at)}: {paused.reason} Nothing was done or charged. "
        f"Try again in {retry_after} seconds; GET /api/v1/status shows when it is lifted.",
        extra={"reason": paused.reason, "paused": paused.kind, "scope": paused.scope, "retry_after": retry_after},
    )
    error.headers = {"Retry-After": str(retry_after)}
    raise error


# --------------------------------------------------------------------------- automatic


def backlog_ages(*, now: datetime | None = None) -> dict[Channel, float]:
    """Per channel, seconds since its oldest queued stamp was accepted (0 with none waiting)."""
    now = now or timezone.now()
    ages = {}
    for channel in _channels(None):
        with schema_context(channel.schema_name):
            oldest = stamping_selectors.oldest_queued_at()
        ages[channel] = max(0.0, (now - oldest).total_seconds()) if oldest else 0.0
    return ages


def _step(*, kind: str, channel: Channel | None, age: float, start: float, stop: float, where: str) -> str | None:
    """Start or lift one automatic pause (hysteresis: on at ``start`` seconds, off at ``stop``)."""
    current = selectors.open_brownout(kind=kind, channel_id=channel.pk if channel else None)
    if current is None and age >= start:
        reason = (
            f"Automatic: {where} oldest waiting stamp has waited {age:.0f} s (the limit is {start:.0f} s); "
            f"stamps already accepted and paid orders are served first. Lifted when it is under {stop:.0f} s."
        )
        pause(kind=kind, channel=channel, reason=reason, actor=AUTOMATIC_ACTOR, automatic=True)
        return "paused"
    if current is not None and current.automatic and age <= stop:
        resume(kind=kind, channel=channel, actor=AUTOMATIC_ACTOR, automatic_only=True)
        return "resumed"
    return None


def evaluate_automatic(*, now: datetime | None = None) -> dict:
    """Start or lift the automatic pauses from the backlog ages: each channel's against
    ``BROWNOUT_AUTO_CHANNEL``, the issuer's (its oldest waiting stamp, any channel) against
    ``BROWNOUT_AUTO_ISSUER``. A pause started by hand is left alone. Safe to run twice."""
    ages = backlog_ages(now=now)
    changes = {}
    for channel, age in ages.items():
        for kind, (start, stop) in settings.BROWNOUT_AUTO_CHANNEL.items():
            done = _step(kind=kind, channel=channel, age=age, start=start, stop=stop, where=f"{channel.name}'s")
            if done:
                changes[f"{kind}:{channel.code}"] = done
    issuer_age = max(ages.values(), default=0.0)
    for kind, (start, stop) in settings.BROWNOUT_AUTO_ISSUER.items():
        done = _step(kind=kind, channel=None, age=issuer_age, start=start, stop=stop, where="the issuer's")
        if done:
            changes[f"{kind}:all"] = done
    return changes
