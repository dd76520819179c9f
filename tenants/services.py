"""Provisioning channels (every write to the Channel/Domain tables goes through here)."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from celery import current_app
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django_tenants.utils import schema_context

from kernel.errors import ApplicationError
from staff.audit import actor_name, record
from tenants.members.models import Member, Role
from tenants.members.services import invite_member
from tenants.models import Channel, Domain, Onboarding, channel_code_validator
from tenants.signals import channel_provisioned

_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")


logger = logging.getLogger(__name__)

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


def _check_new_channel(code: str, domains: list[str]) -> None:
    """Raise unless ``code`` and every host of ``domains`` are well formed, not reserved and free."""
    try:
        channel_code_validator(code)
    except ValidationError as exc:
        raise InvalidChannel(exc.messages[0]) from exc
    if code in RESERVED_CODES or code.startswith("pg_"):
        raise InvalidChannel(f"{code!r} is reserved; choose another channel code.")
    for domain in domains:
        if not _DOMAIN.match(domain):
            raise InvalidChannel(f"{domain!r} is not a valid host name.")
    if Channel.objects.filter(code=code).exists() or Channel.objects.filter(schema_name=code).exists():
        raise ChannelAlreadyExists(f"A channel with code {code!r} already exists.")
    taken = Domain.objects.filter(domain__in=domains).values_list("domain", flat=True).first()
    if taken:
        raise ChannelAlreadyExists(f"The host {taken!r} is already in use.")


def provision_channel(
    *,
    code: str,
    name: str,
    domain: str,
    admin_username: str | None = "admin",
    admin_password: str | None = None,
    first_key: bool = True,
) -> ProvisionedChannel:
    """Create a channel: its schema (migrated), its host, a first portal admin (the channel's owner;
    none with ``admin_username=None``, when the owner is invited instead) and, with ``first_key``, a
    first API key (for whoever runs the command; an invited owner makes their own in the portal, so
    onboarding asks for none: a key whose secret nobody holds would only be a live credential).

    Schema creation is DDL and cannot share a transaction with the rows; if anything after the
    schema fails, the channel row and schema are removed again so a retry starts clean.
    """
    code = code.strip().lower()
    domain = domain.strip().lower()
    _check_new_channel(code, [domain])

    channel = Channel(schema_name=code, code=code, name=name.strip(), kind=Channel.Kind.CHANNEL)
    channel.save(verbosity=0)  # creates and migrates the schema
    try:
        with transaction.atomic():
            domain_row = Domain.objects.create(domain=domain, tenant=channel, is_primary=True)
            answers = channel_provisioned.send(sender=Channel, channel=channel, first_key=first_key)
            issued = next((answer for _, answer in answers if answer is not None), None)
            if admin_username:
                with schema_context(channel.schema_name):
                    user_model = get_user_model()
                    user = user_model(username=admin_username, is_staff=True)
                    if admin_password:
                        user.set_password(admin_password)
                    else:
                        user.set_unusable_password()
                    user.save()
                    Member.objects.create(user=user, email="", role=Role.OWNER, joined_at=user.date_joined)
    except Exception:
        channel.delete(force_drop=True)
        raise
    return ProvisionedChannel(channel=channel, domain=domain_row, admin_username=admin_username, api_key=issued)


# --------------------------------------------------------------------------- onboarding from the back office


@transaction.atomic
def request_onboarding(
    *, code: str, name: str, hosts: list[str], settings_: dict[str, int], owner_email: str, portal_url: str, actor: Any
) -> Onboarding:
    """Ask for a new channel: checked now, provisioned by the task ``tenants.run_onboarding`` after
    this transaction commits (a schema takes seconds to migrate: no request waits for it)."""
    code = code.strip().lower()
    hosts = [host.strip().lower() for host in hosts if host.strip()]
    if not hosts:
        raise InvalidChannel("A channel needs at least one host name.")
    _check_new_channel(code, hosts)
    _check_settings(settings_, allowed=LIMIT_FIELDS)
    try:
        with transaction.atomic():  # at most one onboarding in progress per code (a unique index)
            onboarding = Onboarding.objects.create(
                code=code, name=name.strip(), hosts=hosts, settings=dict(settings_),
                owner_email=owner_email.strip().lower(), portal_url=portal_url, requested_by=actor_name(actor)[:150],
                step="Waiting for a worker",
            )  # fmt: skip
    except IntegrityError:
        raise ChannelAlreadyExists(f"The channel {code!r} is being provisioned already.") from None
    record(actor, "channel.requested", onboarding, channel=code, hosts=hosts, owner=onboarding.owner_email,
           settings=dict(settings_))  # fmt: skip
    transaction.on_commit(lambda: current_app.send_task("tenants.run_onboarding", args=[onboarding.pk]), robust=True)
    return onboarding


def _onboarding_step(onboarding_id: int, **fields) -> None:
    Onboarding.objects.filter(pk=onboarding_id).update(**fields, updated_at=timezone.now())


_ONBOARDING_LOCK = 0x6F6E62  # advisory lock class of onboarding runs ("onb")


def run_onboarding(onboarding_id: int) -> str:
    """Provision an asked-for channel (the task's body). One run at a time per onboarding (a session
    advisory lock, released when its connection ends, even by a crash); safe to run again after a
    crash: a channel the previous run created is taken over, an owner already invited is not invited
    twice."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [_ONBOARDING_LOCK, onboarding_id])
        if not cursor.fetchone()[0]:
            return "busy"
    try:
        return _run_onboarding(onboarding_id)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [_ONBOARDING_LOCK, onboarding_id])


def _run_onboarding(onboarding_id: int) -> str:
    with transaction.atomic():
        onboarding = Onboarding.objects.select_for_update().get(pk=onboarding_id)
        if onboarding.state in (Onboarding.State.READY, Onboarding.State.FAILED):
            return onboarding.state
        onboarding.state = Onboarding.State.PROVISIONING
        onboarding.step = "Creating and migrating the channel's schema"
        onboarding.save(update_fields=["state", "step", "updated_at"])
    try:
        channel = Channel.objects.filter(code=onboarding.code).first()
        if channel is not None and (
            channel.created_at < onboarding.created_at
            or Onboarding.objects.filter(channel=channel).exclude(pk=onboarding.pk).exists()
        ):
            raise ChannelAlreadyExists(f"A channel with code {onboarding.code!r} was created by someone else.")
        if channel is None:
            channel = provision_channel(
                code=onboarding.code,
                name=onboarding.name,
                domain=onboarding.hosts[0],
                admin_username=None,
                first_key=False,
            ).channel
        _onboarding_step(onboarding_id, channel=channel, step="Adding the hosts, limits and the owner's invitation")
        with transaction.atomic():
            for host in onboarding.hosts[1:]:
                Domain.objects.get_or_create(domain=host, defaults={"tenant": channel, "is_primary": False})
            if onboarding.settings:
                Channel.objects.filter(pk=channel.pk).update(**onboarding.settings)
            channel.refresh_from_db()
            with schema_context(channel.schema_name):
                if not Member.objects.filter(email=onboarding.owner_email).exists():
                    invite_member(
                        email=onboarding.owner_email, role=Role.OWNER, invited_by=onboarding.requested_by,
                        link_base=onboarding.portal_url, channel_name=channel.name,
                    )  # fmt: skip
            Onboarding.objects.filter(pk=onboarding_id).update(
                state=Onboarding.State.READY, step="Ready: the owner's invitation is sent", updated_at=timezone.now()
            )
            record(onboarding.requested_by, "channel.created", channel, channel=channel.code,
                   hosts=onboarding.hosts, settings=onboarding.settings, owner=onboarding.owner_email)  # fmt: skip
    except Exception as exc:
        logger.exception("onboarding %s failed", onboarding_id)
        message = exc.message if isinstance(exc, ApplicationError) else "An unexpected error; see the worker's log."
        _onboarding_step(onboarding_id, state=Onboarding.State.FAILED, error=message, step="Failed")
        return Onboarding.State.FAILED
    return Onboarding.State.READY


# --------------------------------------------------------------------------- the issuer's levers

# What the issuer sets for a channel: at onboarding (``request_onboarding``) and later as its levers.
LIMIT_FIELDS = (
    "service_fee_rupiah",
    "rate_limit_per_key",
    "rate_limit_per_channel",
    "rate_limit_burst",
    "stamping_concurrency",
    "low_stock_threshold",
)


class InvalidLimits(ApplicationError):
    code = "invalid_limits"
    what_to_do = "Rate limits and stamping concurrency are at least 1; the low-stock threshold at least 0."


_MAY_BE_ZERO = ("low_stock_threshold", "service_fee_rupiah")


def _check_settings(changes: dict[str, int], *, allowed) -> None:
    unknown = set(changes) - set(allowed)
    if unknown:
        raise InvalidLimits(f"Not a channel limit: {', '.join(sorted(unknown))}.")
    if any(not isinstance(v, int) or v < (0 if field in _MAY_BE_ZERO else 1) for field, v in changes.items()):
        raise InvalidLimits("Limits and concurrency must be at least 1.")


@transaction.atomic
def set_channel_limits(*, channel: Channel, changes: dict[str, int], actor: Any) -> Channel:
    """Change a channel's rate limits, stamping concurrency or low-stock threshold (fields of
    :data:`LIMIT_FIELDS`), and write the change, before and after, to the audit log."""
    _check_settings(changes, allowed=LIMIT_FIELDS)
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
