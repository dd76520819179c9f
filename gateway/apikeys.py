"""Issuing and checking channel API keys.

Checking a key on every request is a database read; the storefront path avoids it with a small
per-process cache, kept exact by an *epoch* per channel in Redis:

- every change to a channel's keys (revoke, rotate; anything else that edits ``ApiKey`` rows must call
  :func:`keys_changed`) bumps the channel's epoch, and drops the process's own entries at once;
- an entry is loaded from the database AFTER reading the epoch, and remembers it;
- the rate-limit script, which runs on every storefront request anyway, returns the current epoch in
  the same round trip; an answer from the cache stands only if the epoch has not moved (else the key
  is checked again in the database). So a revoked key is refused by every process on its next request.
- without Redis nothing is cached (no epoch to check against), and an entry lives 30 s at most, so a
  bump lost to a Redis outage cannot keep a revoked key alive for longer.

The secret's digest is compared (in constant time), and revocation, expiry and channel checked, on
every request, cached or not.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from gateway import ratelimit
from gateway.models import ApiKey
from kernel.errors import ApplicationError

logger = logging.getLogger(__name__)

KEY_PREFIX = "emk_"
ALL_SCOPES = tuple(ApiKey.Scope.values)
LAST_USED_RESOLUTION = timedelta(minutes=1)
CACHE_SECONDS = 30.0  # the longest a cached key is used without a database read
CACHE_MAX_KEYS = 10_000


class InvalidApiKey(ApplicationError):
    code = "invalid_api_key"
    http_status = 401
    title = "Invalid API key"
    what_to_do = "The key is wrong, revoked, expired or belongs to another channel. Use a current key."


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


def issue_first_key(sender, *, channel, first_key: bool = True, **_kwargs) -> IssuedKey | None:
    """``tenants.signals.channel_provisioned``: a new channel's first key (all scopes), unless the
    provisioning asks for none (an invited owner makes keys in the portal)."""
    if not first_key:
        return None
    return issue_api_key(channel=channel, name="First key")


def _split(presented: str) -> tuple[str, str] | None:
    if not presented.startswith(KEY_PREFIX):
        return None
    prefix, _, secret = presented[len(KEY_PREFIX) :].partition("_")
    return (prefix, secret) if prefix and secret else None


def _check(api_key: ApiKey | None, *, digest: str, channel, refusal: InvalidApiKey) -> ApiKey:
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
        api_key.last_used_at = now
    return api_key


def _refusal() -> InvalidApiKey:
    # Every failure says the same thing, so a caller learns nothing about which part was wrong.
    # (Not "missing": a request without a key is answered authentication_required, never this.)
    return InvalidApiKey(
        "The API key is not valid here: it is wrong, revoked or expired, or it belongs to another channel. "
        "Use a current key of this channel."
    )


def authenticate_api_key(*, presented: str, channel) -> ApiKey:
    """The key for ``presented`` if it is valid on ``channel``'s host; otherwise InvalidApiKey.
    Always read from the database (see :func:`authenticate_api_key_cached` for the request path)."""
    parts = _split(presented)
    if parts is None:
        raise _refusal()
    api_key = ApiKey.objects.filter(prefix=parts[0]).first()
    return _check(api_key, digest=_digest(parts[1]), channel=channel, refusal=_refusal())


@dataclass(frozen=True)
class CheckedKey:
    api_key: ApiKey
    epoch: bytes | None  # the channel's key epoch this answer was cached at; None: read from the database now

    @property
    def needs_confirmation(self) -> bool:
        """A cached answer stands only once the caller has seen the epoch unchanged."""
        return self.epoch is not None


_cache: dict[str, tuple[ApiKey, bytes, float]] = {}  # prefix -> (key, epoch when loaded, loaded at)


def authenticate_api_key_cached(*, presented: str, channel) -> CheckedKey:
    """As :func:`authenticate_api_key`, from the process cache when it holds the key. The caller MUST
    confirm a cached answer (``needs_confirmation``) with :func:`confirm_epoch` in the same request."""
    parts = _split(presented)
    if parts is None:
        raise _refusal()
    prefix, secret = parts
    hit = _cache.get(prefix)
    if hit is not None and time.monotonic() - hit[2] < CACHE_SECONDS:
        return CheckedKey(_check(hit[0], digest=_digest(secret), channel=channel, refusal=_refusal()), hit[1])
    epoch = ratelimit.read_keys_epoch(channel_id=channel.pk)  # before the read: a later bump is then seen
    api_key = ApiKey.objects.filter(prefix=prefix).first()
    # Cached only under its own channel's epoch (the one just read): a key presented on another
    # channel's host is refused anyway, and must not be remembered against that channel's epoch.
    if api_key is not None and epoch is not None and api_key.channel_id == channel.pk:
        if len(_cache) >= CACHE_MAX_KEYS:
            _cache.clear()
        _cache[prefix] = (api_key, epoch, time.monotonic())
    return CheckedKey(_check(api_key, digest=_digest(secret), channel=channel, refusal=_refusal()), None)


def confirm_epoch(*, checked: CheckedKey, current: bytes | None, presented: str, channel) -> ApiKey:
    """The key, once a cached answer is confirmed: ``current`` is the channel's epoch now (``None`` when
    Redis could not say). A moved epoch drops the entry and checks the key in the database again."""
    if not checked.needs_confirmation or current == checked.epoch:
        return checked.api_key
    _cache.pop(checked.api_key.prefix, None)
    return authenticate_api_key_cached(presented=presented, channel=channel).api_key


def keys_changed(*, channel_id: int) -> None:
    """Call after changing a channel's ``ApiKey`` rows: every process re-reads them on its next request.
    Bumps now (entries loaded from here on see the old rows until commit, so they are dropped) and again
    once the transaction commits."""
    _cache.clear()

    def bump() -> None:
        _cache.clear()
        if not ratelimit.bump_keys_epoch(channel_id=channel_id):
            logger.warning(
                "API key change not announced (Redis unreachable): caches expire within %ss",
                CACHE_SECONDS,
                extra={"channel_id": channel_id},
            )

    bump()
    transaction.on_commit(bump)


@transaction.atomic
def revoke_api_key(*, api_key: ApiKey) -> ApiKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
        keys_changed(channel_id=api_key.channel_id)
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
        keys_changed(channel_id=locked.channel_id)
    return issue_api_key(channel=locked.channel, name=locked.name, scopes=tuple(locked.scopes))
