"""Production settings: every secret and every server comes from the environment.

No development default survives here: a variable that production needs and that is missing (or still
has its development value) stops the process with ``ImproperlyConfigured`` naming it, before anything
listens or connects. ``manage.py`` prints that message as one line (docs/operations.md lists the
minimal environment).
"""

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
SECURE_HSTS_SECONDS = 31536000


# --------------------------------------------------------------------------- no development defaults


def _refuse(variable: str, why: str) -> None:
    raise ImproperlyConfigured(f"{variable} {why} (production refuses to start without it; see docs/operations.md)")


def _env(name: str) -> str:
    return os.environ.get(name, "").strip()


def _check_signing_key() -> None:
    """The issuer's signing key: PKCS#11 (the key stays in the token), or a file key only when
    ``ISSUER_SIGNING_ALLOW_FILE_KEY=1`` says so. Never the development CA made under ``.data``."""
    pkcs11 = ("ISSUER_PKCS11_MODULE", "ISSUER_PKCS11_TOKEN_LABEL", "ISSUER_PKCS11_KEY_LABEL", "ISSUER_PKCS11_PIN")
    if any(_env(name) for name in pkcs11):
        for name in pkcs11:
            if not _env(name):
                _refuse(name, "must be set with the other ISSUER_PKCS11_* variables")
        return
    file_key = _env("ISSUER_SIGNING_PKCS12") or _env("ISSUER_SIGNING_KEY") or _env("ISSUER_SIGNING_CERT")
    if not file_key:
        _refuse("ISSUER_PKCS11_MODULE", "must be set: the signing key (PKCS#11, or a file key allowed explicitly)")
    if not _env("ISSUER_SIGNING_PKCS12"):
        for name in ("ISSUER_SIGNING_KEY", "ISSUER_SIGNING_CERT"):
            if not _env(name):
                _refuse(name, "must be set with the other one of ISSUER_SIGNING_KEY / ISSUER_SIGNING_CERT")
    if _env("ISSUER_SIGNING_ALLOW_FILE_KEY") != "1":
        _refuse("ISSUER_SIGNING_ALLOW_FILE_KEY", "must be 1 to sign with a key file instead of PKCS#11")
    if _env("ISSUER_SIGNING_PKCS12") and not _env("ISSUER_SIGNING_CERT"):
        # The web processes verify with the certificate alone and must never open the key file.
        _refuse("ISSUER_SIGNING_CERT", "must be set beside ISSUER_SIGNING_PKCS12 (verify reads it alone)")


def _check_public_addresses() -> None:
    """The hosts and the URL printed in every stamp's QR code are this deployment's, over https."""
    from urllib.parse import urlsplit

    url = _env("VERIFY_BASE_URL")
    if not url:
        _refuse("VERIFY_BASE_URL", "must be set: the https URL every stamp's QR code points to")
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname or parts.hostname in ("localhost", "127.0.0.1"):
        _refuse("VERIFY_BASE_URL", f"must be a public https URL, not {url!r}")
    host = _env("ISSUER_HOST")
    if not host or host in ("localhost", "127.0.0.1"):
        _refuse("ISSUER_HOST", "must be set: the issuer's public host name")
    if not _env("DJANGO_ALLOWED_HOSTS"):
        _refuse("DJANGO_ALLOWED_HOSTS", "must be set: the issuer's host and the channels' hosts, comma-separated")
    from django.http.request import validate_host

    for name, served in (("ISSUER_HOST", host), ("VERIFY_BASE_URL", parts.hostname)):
        if not validate_host(served, ALLOWED_HOSTS):  # noqa: F405
            _refuse("DJANGO_ALLOWED_HOSTS", f"must allow {served!r} ({name}): it would be answered 400")


_check_signing_key()
_check_public_addresses()

# X-Forwarded-Proto says the request came over https only when a proxy in front sets it (and strips a
# client's own): trusted only with GATEWAY_NUM_PROXIES > 0 or DJANGO_TRUST_X_FORWARDED_PROTO=1.
if NUM_PROXIES > 0 or env_bool("DJANGO_TRUST_X_FORWARDED_PROTO", False):  # noqa: F405
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", True)  # noqa: F405
# Joining the browsers' HSTS preload list is the operator's decision (hard to undo), not a default.
SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", False)  # noqa: F405
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
# drf-spectacular's enum naming note (two "status" choice sets in the API schema) is about the
# generated OpenAPI names, not the deployment: it must not fail `check --deploy --fail-level WARNING`.
SILENCED_SYSTEM_CHECKS.append("drf_spectacular.W001")
# ---------------------------------------------------------------------------- end of no development defaults

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

# Self-enrolment of a second factor would let whoever learns a staff password first enrol their own
# device: in production an administrator starts each enrolment (``manage.py staff_otp``).
if BACKOFFICE_OTP_SELF_ENROL:  # noqa: F405
    raise ImproperlyConfigured("GATEWAY_BACKOFFICE_OTP_SELF_ENROL must be off in production")

# /metrics (issue #17): a guessable token or a network allowing everyone would publish the figures.
if METRICS_TOKEN and len(METRICS_TOKEN) < 32:  # noqa: F405
    raise ImproperlyConfigured("METRICS_TOKEN must be at least 32 characters (or unset, with METRICS_ALLOWED_NETWORKS)")
for _network in METRICS_ALLOWED_NETWORKS:  # noqa: F405
    import ipaddress

    try:
        _parsed = ipaddress.ip_network(_network, strict=False)
    except ValueError as _exc:
        raise ImproperlyConfigured(f"METRICS_ALLOWED_NETWORKS has {_network!r}, not a network ({_exc})") from None
    if _parsed.prefixlen == 0:
        raise ImproperlyConfigured(f"METRICS_ALLOWED_NETWORKS must not allow every address ({_network})")
# --------------------------------------------------------------------------- portal mail (#20)
# Invitation and password-reset links are credentials until used: production sends them by SMTP
# (Django's EMAIL_HOST, EMAIL_PORT, ... settings) or another delivering backend, never to the logs
# (console), files or memory.
if not os.environ.get("GATEWAY_EMAIL_BACKEND"):
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
if EMAIL_BACKEND.rsplit(".", 2)[-2] in ("console", "filebased", "locmem", "dummy"):
    _refuse("GATEWAY_EMAIL_BACKEND", f"must deliver mail (SMTP or a provider's backend), not {EMAIL_BACKEND!r}")
# The storefront's sign-in links must reach people: the console sender (development) only logs them. Without
# a sender of its own the storefront stays off; switched on explicitly with the console sender, it refuses.
if SHOP_LINK_SENDER == "faces.shop.signin.console_sender":  # noqa: F405
    if env_bool("GATEWAY_SHOP", False):  # noqa: F405
        raise ImproperlyConfigured(
            "GATEWAY_SHOP is on but GATEWAY_SHOP_LINK_SENDER is the console sender: name the mail sender "
            "that delivers the sign-in links (see docs/shop.md)"
        )
    SHOP_ENABLED = False
