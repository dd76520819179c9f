"""The storefront's sign-in: a one-time link sent to the applicant's e-mail address.

The link's token is 32 random bytes; only its SHA-256 is stored (in the cache, Redis, under the
channel's key prefix), for ``SHOP_LINK_TTL_SECONDS``. Redeeming deletes it: whoever deletes it first
signs in, a second use of the same link finds nothing. Asking for links is charged to the sign-in
limiter (``gateway.ratelimit.check_login_attempt``) per address and per client, before anything is sent.

The applicant is a customer of the channel (``tenants.customers``) whose ``external_ref`` is
``email:<address>``, created on first sign-in through the same service the storefront API uses.
"""

from __future__ import annotations

import hashlib
import logging
import secrets

from django.conf import settings
from django.core.cache import cache
from django.utils.module_loading import import_string

from tenants.customers.models import Customer
from tenants.customers.selectors import customers_for_listing
from tenants.customers.services import CustomerExists, create_customer

logger = logging.getLogger("gateway.shop")

_KEY = "shop:signin:{digest}"


def console_sender(*, channel, email: str, link: str) -> None:
    """Development: the link goes to the log (the console of ``make demo``)."""
    logger.info("shop sign-in link for %s on %s: %s", email, channel.code, link, extra={"shop_link": link})


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def normalize_email(email: str) -> str:
    return email.strip().lower()


def send_link(*, channel, email: str, build_link) -> None:
    """Make a one-time token for ``email`` and have the configured sender deliver ``build_link(token)``."""
    token = secrets.token_urlsafe(32)
    cache.set(_KEY.format(digest=_digest(token)), normalize_email(email), timeout=settings.SHOP_LINK_TTL_SECONDS)
    import_string(settings.SHOP_LINK_SENDER)(channel=channel, email=normalize_email(email), link=build_link(token))


def peek(token: str) -> str | None:
    """The address the token was sent to, without using it up."""
    if not token or len(token) > 100:
        return None
    return cache.get(_KEY.format(digest=_digest(token)))


def redeem(token: str) -> str | None:
    """The address the token was sent to, once: ``None`` when it is unknown, expired or already used."""
    if not token or len(token) > 100:
        return None
    key = _KEY.format(digest=_digest(token))
    email = cache.get(key)
    if email is None or not cache.delete(key):  # only the request that deletes it signs in
        return None
    return email


def existing_customer(email: str) -> Customer | None:
    return customers_for_listing(external_ref=f"email:{normalize_email(email)}").first()


def customer_for(email: str) -> Customer:
    """The channel's customer for this address, created on the first sign-in."""
    ref = f"email:{normalize_email(email)}"
    existing = existing_customer(email)
    if existing is not None:
        return existing
    try:
        return create_customer(external_ref=ref, name=normalize_email(email).split("@")[0][:200], email=email)
    except CustomerExists:  # the same address signing in twice at once
        return existing_customer(email)
