"""Compat users and their tokens.

A compat user is a distributor client's login (``user`` + ``password``, hashed with Django's
hashers). It acts with the scopes and rate limits of one API key of the channel and spends one
customer's wallet. Its token is a JWT (HS256) valid ``COMPAT_TOKEN_TTL`` (24 h), signed with a
secret derived from the project secret for this purpose only, naming the channel in ``aud`` and
``chn``: a token of channel A is refused on channel B's host. ``ep`` is the user's token epoch: a
new password or a deactivation raises it and ends every earlier token.
"""

from __future__ import annotations

import time
from datetime import timedelta

import jwt
from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.contrib.auth.password_validation import validate_password
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from faces.compat.errors import (  # noqa: F401 - re-exported: callers import them from here
    CompatUserExists,
    CompatUserInvalid,
    InvalidCredentials,
    InvalidToken,
    LoginThrottled,
)
from faces.compat.models import CompatUpload, CompatUser
from gateway.models import ApiKey
from gateway.settings.base import derived_secret
from tenants.customers.services import customer_get

ALGORITHM = "HS256"
PURPOSE = "compat-jwt"
LOGIN_FAILURES_ALLOWED = 10  # per user name and channel, per LOGIN_FAILURE_WINDOW
LOGIN_FAILURE_WINDOW = 900
# Checked when the password is wrong or the user unknown alike, so the timing says nothing.
_DUMMY_HASH = make_password("compat-user-that-does-not-exist")


def _secret() -> str:
    return derived_secret(settings.SECRET_KEY, PURPOSE)


def _audience(channel) -> str:
    return f"compat:{channel.code}"


def _check_key(api_key: ApiKey, channel) -> None:
    if api_key.channel_id != channel.pk or api_key.revoked_at is not None:
        raise CompatUserInvalid("The API key must be an active key of this channel.")
    if api_key.expires_at is not None and api_key.expires_at <= timezone.now():
        raise CompatUserInvalid("The API key has expired.")


def create_compat_user(
    *, channel, username: str, password: str, customer_id: int, api_key: ApiKey, email: str = ""
) -> CompatUser:
    """A new compat user of ``channel`` (current schema) spending ``customer_id``'s wallet."""
    customer = customer_get(customer_id=customer_id)
    _check_key(api_key, channel)
    username = username.strip()
    if not username or len(username) > 150:
        raise CompatUserInvalid("Give a user name of 1 to 150 characters.")
    try:
        validate_password(password)
    except Exception as exc:  # noqa: BLE001 - Django's ValidationError, said the way a person fixes it
        messages = getattr(exc, "messages", [str(exc)])
        raise CompatUserInvalid("The password is not accepted: " + " ".join(messages)) from None
    try:
        with transaction.atomic():
            return CompatUser.objects.create(
                username=username,
                email=email,
                password=make_password(password),
                customer=customer,
                api_key_id=api_key.pk,
            )
    except IntegrityError:
        raise CompatUserExists(f"A compat user {username!r} exists in this channel.") from None


@transaction.atomic
def set_compat_password(*, username: str, password: str) -> CompatUser:
    """A new password; every token issued before it stops working."""
    user = CompatUser.objects.select_for_update().filter(username=username).first()
    if user is None:
        raise InvalidCredentials(f"No compat user {username!r} in this channel.")
    try:
        validate_password(password)
    except Exception as exc:  # noqa: BLE001
        raise CompatUserInvalid("The password is not accepted: " + " ".join(getattr(exc, "messages", []))) from None
    user.password = make_password(password)
    user.token_epoch = F("token_epoch") + 1
    user.save(update_fields=["password", "token_epoch"])
    user.refresh_from_db()
    return user


@transaction.atomic
def set_compat_user_active(*, user_id: int, active: bool) -> CompatUser:
    user = CompatUser.objects.select_for_update().get(pk=user_id)
    user.active = active
    user.token_epoch = F("token_epoch") + 1
    user.save(update_fields=["active", "token_epoch"])
    user.refresh_from_db()
    return user


def _failures_key(channel, username: str) -> str:
    return f"compat:login-failures:{channel.pk}:{username.lower()[:150]}"


def login(*, channel, username: str, password: str) -> tuple[CompatUser, str]:
    """Check the password and issue a token; wrong passwords are counted per user name."""
    key = _failures_key(channel, username)
    if (cache.get(key) or 0) >= LOGIN_FAILURES_ALLOWED:
        error = LoginThrottled(
            f"{LOGIN_FAILURES_ALLOWED} wrong passwords for this user in {LOGIN_FAILURE_WINDOW // 60} minutes; "
            f"try again in {LOGIN_FAILURE_WINDOW // 60} minutes.",
            extra={"retry_after": LOGIN_FAILURE_WINDOW},
        )
        error.headers = {"Retry-After": str(LOGIN_FAILURE_WINDOW)}
        raise error
    user = CompatUser.objects.select_related("customer").filter(username=username.strip(), active=True).first()
    if not check_password(password, user.password if user else _DUMMY_HASH) or user is None:
        if cache.add(key, 1, LOGIN_FAILURE_WINDOW) is False:
            try:
                cache.incr(key)
            except ValueError:
                cache.set(key, 1, LOGIN_FAILURE_WINDOW)
        raise InvalidCredentials("The user name or password is wrong.")
    cache.delete(key)
    CompatUser.objects.filter(pk=user.pk).update(last_login_at=timezone.now())
    return user, issue_token(channel=channel, user=user)


def issue_token(*, channel, user: CompatUser, now: float | None = None) -> str:
    issued = int(now if now is not None else time.time())
    ttl = int(timedelta(seconds=settings.COMPAT_TOKEN_TTL_SECONDS).total_seconds())
    claims = {
        "sub": str(user.pk),
        "aud": _audience(channel),
        "chn": channel.code,
        "ep": user.token_epoch,
        "iat": issued,
        "exp": issued + ttl,
    }
    return jwt.encode(claims, _secret(), algorithm=ALGORITHM)


def user_for_token(*, channel, token: str) -> CompatUser:
    """The active user a valid token of this channel names, with its API key; else ``InvalidToken``."""
    try:
        claims = jwt.decode(
            token,
            _secret(),
            algorithms=[ALGORITHM],
            audience=_audience(channel),
            options={"require": ["exp", "iat", "sub", "aud", "chn"]},
        )
    except jwt.ExpiredSignatureError:
        raise InvalidToken("The token has expired (tokens last 24 hours); log in again.") from None
    except jwt.InvalidTokenError:
        raise InvalidToken("The token is not valid on this channel; log in again.") from None
    if claims.get("chn") != channel.code or not str(claims["sub"]).isdigit():
        raise InvalidToken("The token is not valid on this channel; log in again.")
    user = CompatUser.objects.filter(pk=int(claims["sub"]), active=True).first()
    if user is None or user.token_epoch != claims.get("ep"):
        raise InvalidToken("The token was withdrawn (new password or user disabled); log in again.")
    api_key = ApiKey.objects.filter(pk=user.api_key_id, channel_id=channel.pk, revoked_at__isnull=True).first()
    if api_key is None or (api_key.expires_at is not None and api_key.expires_at <= timezone.now()):
        raise InvalidToken("The API key behind this user was revoked or expired; ask the channel for a new mapping.")
    user.api_key = api_key
    return user


def purge_old_uploads(*, older_than: timedelta) -> int:
    """Delete uploads (current schema) older than ``older_than``: a reserved serial cannot be stamped
    after its reservation expires, so its document is no longer needed. Stamped documents are the
    issuer's (``StampedDocument``), untouched."""
    deleted, _ = CompatUpload.objects.filter(created_at__lt=timezone.now() - older_than).delete()
    return deleted
