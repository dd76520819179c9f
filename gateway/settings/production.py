"""Production settings: every secret and every server comes from the environment."""

import os

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403

DEBUG = False
for required in ("DJANGO_SECRET_KEY", "DATABASE_URL", "REDIS_URL"):
    if not os.environ.get(required):
        raise ImproperlyConfigured(f"{required} must be set in production")
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_SSL_REDIRECT = os.environ.get("DJANGO_SECURE_SSL_REDIRECT", "1") == "1"
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = 31536000

# --------------------------------------------------------------------------- payment providers (#13)
# No free quota: the simulator credits whoever asks, and a provider without its secret would accept
# notifications signed with an empty key. Each enabled provider must have every secret it needs.
PAYMENT_PROVIDER_SECRETS = {
    "midtrans": ("MIDTRANS_SERVER_KEY",),
    "xendit": ("XENDIT_SECRET_KEY", "XENDIT_CALLBACK_TOKEN"),
}
for _provider in PAYMENT_PROVIDERS:  # noqa: F405
    if _provider not in PAYMENT_PROVIDER_SECRETS:
        raise ImproperlyConfigured(
            f"PAYMENT_PROVIDERS names {_provider!r}: production takes payments only with "
            f"{', '.join(PAYMENT_PROVIDER_SECRETS)} (the simulator is for the demo and the tests)"
        )
    for _secret in PAYMENT_PROVIDER_SECRETS[_provider]:
        if not os.environ.get(_secret):
            raise ImproperlyConfigured(f"{_secret} must be set in production when PAYMENT_PROVIDERS has {_provider}")
