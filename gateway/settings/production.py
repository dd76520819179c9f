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

# Self-enrolment of a second factor would let whoever learns a staff password first enrol their own
# device: in production an administrator starts each enrolment (``manage.py staff_otp``).
if BACKOFFICE_OTP_SELF_ENROL:  # noqa: F405
    raise ImproperlyConfigured("GATEWAY_BACKOFFICE_OTP_SELF_ENROL must be off in production")
