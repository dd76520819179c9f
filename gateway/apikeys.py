"""Issuing and checking channel API keys."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from gateway.errors import ApplicationError
from gateway.models import ApiKey

KEY_PREFIX = "emk_"
ALL_SCOPES = tuple(ApiKey.Scope.values)
LAST_USED_RESOLUTION = timedelta(minutes=1)


class InvalidApiKey(ApplicationError):
    code = "invalid_api_key"
    http_status = 401
    title = "Invalid API key"


@dataclass(frozen=True)
class IssuedKey:
    api_key: ApiKey
    plaintext: str  # shown once, never stored


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@transaction.atomic
def issue_api_key(*, channel, name: str, scopes: tuple[str, ...] = ALL_SCOPES, expires_at=None) -> IssuedKey:
    unknown = set(scopes) - set(ALL_SCOPES)
    if unknown:
        raise ApplicationError(f"Unknown scopes: {', '.join(sorted(unknown))}.")
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    api_key = ApiKey.objects.create(
        channel=channel,
        name=name,
        prefix=prefix,
        secret_sha256=_digest(secret),
        scopes=sorted(set(scopes)),
        expires_at=expires_at,
    )
    return IssuedKey(api_key=api_key, plaintext=f"{KEY_PREFIX}{prefix}_{secret}")


def authenticate_api_key(*, presented: str, channel) -> ApiKey:
    """The key for ``presented`` if it is valid on ``channel``'s host; otherwise InvalidApiKey.

    Every failure says the same thing, so a caller learns nothing about which part was wrong.
    """
    refusal = InvalidApiKey("The API key is missing, revoked, expired or not valid for this channel.")
    if not presented.startswith(KEY_PREFIX):
        raise refusal
    prefix, _, secret = presented[len(KEY_PREFIX) :].partition("_")
    if not prefix or not secret:
        raise refusal
    api_key = ApiKey.objects.filter(prefix=prefix).first()
    digest = _digest(secret)
    if api_key is None:
        hmac.compare_digest(digest, digest)  # same work either way
        raise refusal
    if not hmac.compare_digest(api_key.secret_sha256, digest):
        raise refusal
    now = timezone.now()
    if api_key.channel_id != channel.pk or api_key.revoked_at is not None:
        raise refusal
    if api_key.expires_at is not None and api_key.expires_at <= now:
        raise refusal
    if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
    return api_key


@transaction.atomic
def revoke_api_key(*, api_key: ApiKey) -> ApiKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    return api_key


DEFAULT_ROTATION_OVERLAP = timedelta(hours=24)


@transaction.atomic
def rotate_api_key(*, api_key: ApiKey, overlap: timedelta = DEFAULT_ROTATION_OVERLAP) -> IssuedKey:
    """A new key with the same name and scopes; the old one keeps working for ``overlap`` (so every
    client can switch over), then expires. Rotating a revoked key is refused."""
    locked = ApiKey.objects.select_for_update().get(pk=api_key.pk)
    if locked.revoked_at is not None:
        raise InvalidApiKey("A revoked key cannot be rotated; issue a new one.")
    ends = timezone.now() + overlap
    if locked.expires_at is None or locked.expires_at > ends:
        locked.expires_at = ends
        locked.save(update_fields=["expires_at"])
    return issue_api_key(channel=locked.channel, name=locked.name, scopes=tuple(locked.scopes))
