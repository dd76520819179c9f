"""The portal team of the channel whose schema is current: invitations, roles, password resets and
removal. Callers set the schema (the portal's request, or ``schema_context`` in the issuer's
onboarding task).

A one-time link carries a random token; only its SHA-256 is stored, it expires
(``PORTAL_INVITATION_HOURS`` / ``PORTAL_RESET_MINUTES``) and it is spent by the one transaction that
uses it (the row is locked, then marked used). Mail goes through Django's ``EMAIL_BACKEND`` (the
console in development), sent after the transaction commits.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import connection, transaction
from django.utils import timezone

from kernel.errors import ApplicationError
from staff.audit import record
from tenants.members.models import Member, OneTimeLink, Role


class MemberExists(ApplicationError):
    code = "member_exists"
    http_status = 409
    title = "Already a member"
    what_to_do = "This address already belongs to a member of the channel; change that member's role instead."


class LinkNotValid(ApplicationError):
    code = "link_not_valid"
    http_status = 400
    title = "This link cannot be used"
    what_to_do = (
        "One-time links work once and expire. Ask the channel's owner for a new invitation, or request "
        "a new password reset link on the sign-in page."
    )


class MemberRefused(ApplicationError):
    code = "member_refused"
    http_status = 409
    title = "The team change is refused"
    what_to_do = "A channel always keeps at least one owner: make another member owner first."


class WeakPassword(ApplicationError):
    code = "weak_password"
    http_status = 400
    title = "Choose another password"
    what_to_do = "Use at least 8 characters that are not a common password."


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _actor(actor) -> str:
    """Portal users live in the channel's schema: the audit log names them ``<schema>:<username>``."""
    if actor is None or isinstance(actor, str):
        return actor
    return f"{connection.schema_name}:{actor.get_username()}"


def _new_link(user, purpose: str, lifetime: timedelta) -> str:
    token = secrets.token_urlsafe(32)
    OneTimeLink.objects.filter(user=user, purpose=purpose, used_at__isnull=True).update(used_at=timezone.now())
    OneTimeLink.objects.create(user=user, purpose=purpose, digest=_digest(token), expires_at=timezone.now() + lifetime)
    return token


def _mail_after_commit(*, to: str, subject: str, body: str) -> None:
    transaction.on_commit(
        lambda: send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [to], fail_silently=False), robust=True
    )


@transaction.atomic
def invite_member(*, email: str, role: str, invited_by, link_base: str, channel_name: str) -> Member:
    """Invite ``email`` with ``role``: a user without a usable password, its member row and a one-time
    link to ``<link_base>/join/<token>/`` by mail. A removed member invited again comes back."""
    email = email.strip().lower()
    if role not in Role.values:
        raise MemberRefused(f"{role!r} is not a role.")
    user_model = get_user_model()
    user = user_model.objects.select_for_update().filter(username=email).first()
    if user is not None and Member.objects.filter(user=user, removed_at__isnull=True).exists():
        raise MemberExists(f"{email} is already a member of this channel.")
    if user is None:
        user = user_model(username=email, email=email)
    user.is_active = True
    user.set_unusable_password()
    user.save()
    member, _ = Member.objects.update_or_create(
        user=user,
        defaults={"email": email, "role": role, "invited_by": _actor(invited_by) or "", "joined_at": None,
                  "removed_at": None},
    )  # fmt: skip
    token = _new_link(user, OneTimeLink.Purpose.INVITATION, timedelta(hours=settings.PORTAL_INVITATION_HOURS))
    record(_actor(invited_by), "member.invited", member, channel=connection.schema_name, email=email, role=role)
    _mail_after_commit(
        to=email,
        subject=f"You are invited to the {channel_name} portal",
        body=(
            f"You are invited to the e-Meterai portal of {channel_name} as {Role(role).label.lower()}.\n\n"
            f"Choose your password here (the link works once, for {settings.PORTAL_INVITATION_HOURS} hours):\n"
            f"{link_base.rstrip('/')}/join/{token}/\n"
        ),
    )
    return member


def _spend(token: str, purpose: str) -> OneTimeLink:
    link = OneTimeLink.objects.select_for_update().filter(digest=_digest(token or ""), purpose=purpose).first()
    if link is None or link.used_at is not None or link.expires_at <= timezone.now():
        raise LinkNotValid("This link is unknown, already used or expired.")
    return link


def link_is_valid(*, token: str, purpose: str) -> bool:
    """Whether ``token`` could be spent now (for showing the form; the spend checks again)."""
    link = OneTimeLink.objects.filter(digest=_digest(token or ""), purpose=purpose).first()
    return link is not None and link.used_at is None and link.expires_at > timezone.now()


@transaction.atomic
def use_link(*, token: str, purpose: str, password: str):
    """Spend an invitation or a reset link: set the user's password (validated), mark the link used.
    Returns the user, who may now sign in."""
    link = _spend(token, purpose)
    user = get_user_model().objects.select_for_update().get(pk=link.user_id)
    member = Member.objects.filter(user=user, removed_at__isnull=True).first()
    if member is None or not user.is_active:
        raise LinkNotValid("This link belongs to an account that was removed.")
    try:
        password_validation.validate_password(password, user)
    except ValidationError as exc:
        raise WeakPassword(" ".join(exc.messages)) from exc
    user.set_password(password)  # a new password also ends every session signed in with the old one
    user.save(update_fields=["password"])
    link.used_at = timezone.now()
    link.save(update_fields=["used_at"])
    if member.joined_at is None:
        member.joined_at = link.used_at
        member.save(update_fields=["joined_at"])
    action = "member.joined" if purpose == OneTimeLink.Purpose.INVITATION else "member.password_reset"
    record(_actor(user), action, member, channel=connection.schema_name)
    return user


@transaction.atomic
def request_password_reset(*, email: str, link_base: str, channel_name: str) -> None:
    """Mail a reset link to a current member who joined; says nothing either way (no account probing)."""
    member = (
        Member.objects.select_related("user")
        .filter(email=email.strip().lower(), removed_at__isnull=True, joined_at__isnull=False, user__is_active=True)
        .first()
    )
    if member is None:
        return
    token = _new_link(member.user, OneTimeLink.Purpose.PASSWORD_RESET, timedelta(minutes=settings.PORTAL_RESET_MINUTES))
    _mail_after_commit(
        to=member.email,
        subject=f"Password reset for the {channel_name} portal",
        body=(
            f"Someone asked to reset the password of {member.email} on the {channel_name} portal.\n\n"
            f"Choose a new password here (the link works once, for {settings.PORTAL_RESET_MINUTES} minutes):\n"
            f"{link_base.rstrip('/')}/reset/{token}/\n\nIf it was not you, ignore this message.\n"
        ),
    )


def _owners_left(excluding: Member) -> int:
    return Member.objects.filter(role=Role.OWNER, removed_at__isnull=True).exclude(pk=excluding.pk).count()


@transaction.atomic
def set_member_role(*, member_id: int, role: str, actor) -> Member:
    if role not in Role.values:
        raise MemberRefused(f"{role!r} is not a role.")
    list(Member.objects.select_for_update().filter(role=Role.OWNER, removed_at__isnull=True))  # owners, serialised
    member = Member.objects.select_for_update().get(pk=member_id, removed_at__isnull=True)
    if member.role == Role.OWNER and role != Role.OWNER and _owners_left(member) == 0:
        raise MemberRefused("This is the channel's last owner.")
    if member.role != role:
        before, member.role = member.role, role
        member.save(update_fields=["role"])
        record(_actor(actor), "member.role_changed", member, channel=connection.schema_name, before=before, after=role)
    return member


@transaction.atomic
def remove_member(*, member_id: int, actor) -> Member:
    """Remove a member: the user is deactivated (Django's session check then refuses it on its next
    request: every session ends at once), its password made unusable and its open links spent."""
    list(Member.objects.select_for_update().filter(role=Role.OWNER, removed_at__isnull=True))
    member = Member.objects.select_for_update().select_related("user").get(pk=member_id)
    if member.removed_at is not None:
        return member
    if member.role == Role.OWNER and _owners_left(member) == 0:
        raise MemberRefused("This is the channel's last owner.")
    now = timezone.now()
    member.removed_at = now
    member.save(update_fields=["removed_at"])
    user = member.user
    user.is_active = False
    user.set_unusable_password()
    user.save(update_fields=["is_active", "password"])
    OneTimeLink.objects.filter(user=user, used_at__isnull=True).update(used_at=now)
    record(_actor(actor), "member.removed", member, channel=connection.schema_name, email=member.email)
    return member


class RoleRefused(ApplicationError):
    code = "role_refused"
    http_status = 403
    title = "Your role does not allow this"
    what_to_do = (
        "Each portal page belongs to roles: developer (API keys, webhooks), finance (orders, top-ups, "
        "statements), support (customers, stamps). Ask your channel's owner for the role you need."
    )


def require_role(user, roles: tuple[str, ...]) -> Member:
    """The user's current membership if its role is one of ``roles`` (an owner may do everything);
    else :class:`RoleRefused`."""
    member = Member.objects.filter(user_id=user.pk, removed_at__isnull=True).first()
    if member is None:
        raise RoleRefused(f"{user.get_username()} is not a member of this channel's team.")
    if member.role != Role.OWNER and member.role not in roles:
        raise RoleRefused(f"Your role ({member.get_role_display().lower()}) cannot open this page or do this.")
    return member
