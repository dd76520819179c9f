"""Test settings: the same real PostgreSQL and Redis as development, quieter and faster hashing."""

import os

from .base import _celery_url
from .local import *  # noqa: F403

DEBUG = False
ISSUER_DEV_KEYS = True  # the test setup makes development keys (conftest.py)
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed only; never in production
LOGGING["root"]["level"] = "WARNING"  # noqa: F405
CELERY_BEAT_SCHEDULE = {}
ALLOWED_HOSTS = [".test", ".localhost", "localhost", "testserver", "127.0.0.1"]

# Two test runs on one machine (e.g. two developers' terminals) each get their own database.
if os.environ.get("PYTEST_DB_SUFFIX"):
    DATABASES["default"]["TEST"] = {"NAME": f"test_gateway_{os.environ['PYTEST_DB_SUFFIX']}"}  # noqa: F405

# Tests use their own Redis database (cache, rate limits, broker), so nothing a test queues can
# reach a demo worker running from the same checkout.
if not os.environ.get("REDIS_URL"):
    REDIS_URL = REDIS_URL + ("&" if "?" in REDIS_URL else "?") + "db=1"  # noqa: F405
    CACHES["default"]["LOCATION"] = REDIS_URL  # noqa: F405
    # (a test that needs a broker of its own, out of reach of the suite's other workers, names one)
    CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or _celery_url(REDIS_URL)
CELERY_BROKER_TRANSPORT_OPTIONS = {  # noqa: F405
    "visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "600")),
    "unacked_restore_interval": 1,
    "unacked_restore_throttle": 1,
    "queue_order_strategy": "priority",
}
# Every test client is 127.0.0.1: the public verification limits are tested with their own addresses
# and settings (tests/issuer/test_public_rate_limit.py), and do not throttle the rest of the suite.
PUBLIC_RATE_LIMITS = ((100_000, 100_000), (100_000, 100_000))
# Sign-in throttles likewise: tests/faces/test_sign_in_throttle.py sets its own (and fresh buckets),
# the rest of the suite signs in as often as it likes from 127.0.0.1.
LOGIN_THROTTLES = ((100_000, 1), (100_000, 1))
# The storefront's placement preview likewise (tests/shop/test_shop.py sets its own, with fresh buckets).
SHOP_PREVIEW_RATE_LIMITS = ((100_000, 100_000), (100_000, 100_000))
# Back-office staff without a second factor may enrol themselves in tests, as in the demo (local.py).
BACKOFFICE_OTP_SELF_ENROL = True
# /metrics: a token, and no network allowed (every test client is 127.0.0.1, and must be refused).
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "test-metrics-token")  # noqa: S105 - a test value
METRICS_ALLOWED_NETWORKS = []
# Live servers started by the browser tests write their mail to files the tests read (in-process
# tests get Django's locmem outbox instead).
EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
EMAIL_FILE_PATH = os.environ.get("GATEWAY_EMAIL_FILE_PATH", str(BASE_DIR / ".data" / "test-mail"))  # noqa: F405
