"""Development and demo settings: embedded services, debug toolbar-free, a local secret."""

from .base import *  # noqa: F403
from .base import DATA_DIR, env_bool, env_list

# Off unless asked for: the demo shows the same error pages a user would see.
DEBUG = env_bool("DJANGO_DEBUG", False)
# Development receivers listen on this machine; production keeps webhooks to public addresses.
WEBHOOK_ALLOW_PRIVATE_ADDRESSES = env_bool("WEBHOOK_ALLOW_PRIVATE_ADDRESSES", True)
# Development signing keys under ISSUER_KEY_DIR (made by `manage.py dev_keys` / the demo), never in production.
ISSUER_DEV_KEYS = env_bool("ISSUER_DEV_KEYS", True)

# The demo's staff may set up their second factor at their first sign-in (production: an administrator
# starts each enrolment with ``manage.py staff_otp``).
BACKOFFICE_OTP_SELF_ENROL = env_bool("GATEWAY_BACKOFFICE_OTP_SELF_ENROL", True)
# The demo's /metrics answers this machine (production: a token or the monitoring network).
METRICS_ALLOWED_NETWORKS = env_list("METRICS_ALLOWED_NETWORKS", "127.0.0.1/32,::1/128")
WHITENOISE_USE_FINDERS = True  # serve static files straight from the source folders
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405 - whitenoise expects it to exist


def _local_secret() -> str:
    """A per-checkout secret under .data/, so no secret is ever committed."""
    path = DATA_DIR / "secret_key"
    if not path.exists():
        import secrets

        DATA_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = SECRET_KEY or _local_secret()  # noqa: F405
PAYMENT_SIMULATOR_SECRET = PAYMENT_SIMULATOR_SECRET or derived_secret(SECRET_KEY, "payment-simulator")  # noqa: F405
# The payment simulator is the demo's (and the tests') provider, unless the environment names others.
PAYMENT_PROVIDERS = PAYMENT_PROVIDERS or ["simulator"]  # noqa: F405
