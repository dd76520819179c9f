"""Provisioning channels (every write to the Channel/Domain tables goes through here)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django_tenants.utils import schema_context

from kernel.errors import ApplicationError
from staff.audit import record
from tenants.models import Channel, Domain, channel_code_validator
from tenants.signals import channel_provisioned

_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")


RESERVED_CODES = frozenset({"public", "issuer", "information_schema", "admin", "api", "www"})


class ChannelAlreadyExists(ApplicationError):
    code = "channel_exists"
    http_status = 409
    what_to_do = "The channel code or the host is already taken; choose another or use the existing channel."


class ChannelSuspended(ApplicationError):
    code = "channel_suspended"
    http_status = 403
    title = "The channel is suspended"
    what_to_do = (
        "The issuer has suspended this channel: its API and portal refuse every request until it is "
        "reinstated. Payments already made are still credited and refunds still sent. Contact the issuer."
    )


def refuse_if_suspended(channel: Channel) -> None:
    """Raise :class:`ChannelSuspended` for a suspended channel (the edge's one check, API and portal)."""
    if not channel.is_active:
        raise ChannelSuspended(f"The channel {channel.name} is suspended by the issuer; it cannot be used now.")


class InvalidChannel(ApplicationError):
    code = "invalid_channel"
    what_to_do = "The channel code or host name is malformed or reserved; choose another."


@dataclass(frozen=True)
class ProvisionedChannel:
    channel: Channel
    domain: Domain
    admin_username: str
    api_key: Any  # the first API key, as the edge issued it (``gateway.apikeys.IssuedKey``)


def ensure_issuer(*, domains: list[str] | None = None) -> Channel:
    """The public tenant (the issuer), with ``domains`` as its hosts. Safe to run any number of times.

    Without ``domains``, a new issuer gets ``settings.ISSUER_HOST`` and an existing one is left as is.
    """
    issuer, created = Channel.objects.get_or_create(
        schema_name=settings.PUBLIC_SCHEMA_NAME,
        defaults={"code": "issuer", "name": "e-Meterai Issuer", "kind": Channel.Kind.ISSUER},
    )
    if domains is None:
        domains = [settings.ISSUER_HOST] if created else []
    for index, host in enumerate(domains):
        Domain.objects.get_or_create(domain=host, defaults={"tenant": issuer, "is_primary": index == 0})
    return issuer


def provision_channel(
    *, code: str, name: str, domain: str, admin_username: str = "admin", admin_password: str | None = None
) -> ProvisionedChannel:
    """Create a channel: its schema (migrated), its host, a first portal admin and a first API key.

    Schema creation is DDL and cannot share a transaction with the rows; if anything after the
    schema fails, the channel row and schema are removed again so a retry starts clean.
    """
    code = code.strip().lower()
    domain = domain.strip().lower()
    try:
        channel_code_validator(code)
    except ValidationError as exc:
        raise InvalidChannel(exc.messages[0]) from exc
    if code in RESERVED_CODES or code.startswith("pg_"):
        raise InvalidChannel(f"{code!r} is reserved; choose another channel code.")
    if not _DOMAIN.match(domain):
        raise InvalidChannel(f"{domain!r} is not a valid host name.")
    if Channel.objects.filter(code=code).exists() or Channel.objects.filter(schema_name=code).exists():
        raise ChannelAlreadyExists(f"A channel with code {code!r} already exists.")
    if Domain.objects.filter(domain=domain).exists():
        raise ChannelAlreadyExists(f"The host {domain!r} is already in use.")

    channel = Channel(schema_name=code, code=code, name=name.strip(), kind=Channel.Kind.CHANNEL)
    channel.save(verbosity=0)  # creates and migrates the schema
    try:
        with transaction.atomic():
            domain_row = Domain.objects.create(domain=domain, tenant=channel, is_primary=True)
            answers = channel_provisioned.send(sender=Channel, channel=channel)
            issued = next((answer for _, answer in answers if answer is not None), None)
            with schema_context(channel.schema_name):
                user_model = get_user_model()
                user = user_model(username=admin_username, is_staff=True)
                if admin_password:
                    user.set_password(admin_password)
                else:
                    user.set_unusable_password()
                user.save()
    except Exception:
        channel.delete(force_drop=True)
        raise
    return ProvisionedChannel(channel=channel, domain=domain_row, admin_username=admin_username, api_key=issued)


# --------------------------------------------------------------------------- the issuer's levers

LIMIT_FIELDS = (
    "rate_limit_per_key",
    "rate_limit_per_channel",
    "rate_limit_burst",
    "stamping_concurrency",
    "low_stock_threshold",
)


class InvalidLimits(ApplicationError):
    code = "invalid_limits"
    what_to_do = "Rate limits and stamping concurrency are at least 1; the low-stock threshold at least 0."


@transaction.atomic
def set_channel_limits(*, channel: Channel, changes: dict[str, int], actor: Any) -> Channel:
    """Change a channel's rate limits, stamping concurrency or low-stock threshold (fields of
    :data:`LIMIT_FIELDS`), and write the change, before and after, to the audit log."""
    unknown = set(changes) - set(LIMIT_FIELDS)
    if unknown:
        raise InvalidLimits(f"Not a channel limit: {', '.join(sorted(unknown))}.")
    if any(value < (0 if field == "low_stock_threshold" else 1) for field, value in changes.items()):
        raise InvalidLimits("Limits and concurrency must be at least 1.")
    locked = Channel.objects.select_for_update().get(pk=channel.pk)
    before = {field: getattr(locked, field) for field in changes}
    if changes and before != changes:
        Channel.objects.filter(pk=locked.pk).update(**changes)
        record(actor, "channel.limits_changed", locked, channel=locked.code, before=before, after=changes)
    locked.refresh_from_db()
    return locked


@transaction.atomic
def set_channel_active(*, channel: Channel, active: bool, actor: Any, reason: str = "") -> Channel:
    """Suspend (``active=False``) or reinstate a channel. A suspended channel's API keys and portal are
    refused at the edge (``channel_suspended``); its paid orders, refunds and accepted stamps are still
    finished by the sweepers. Web processes see the change within their host cache's lifetime (10 s)."""
    locked = Channel.objects.select_for_update().get(pk=channel.pk)
    if locked.is_active != active:
        locked.is_active = active
        locked.save(update_fields=["is_active"])
        action = "channel.reinstated" if active else "channel.suspended"
        record(actor, action, locked, channel=locked.code, reason=reason)
    return locked
