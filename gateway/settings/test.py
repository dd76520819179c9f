"""Test settings: the same real PostgreSQL and Redis as development, quieter and faster hashing."""

import os

from .local import *  # noqa: F403

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed only; never in production
LOGGING["root"]["level"] = "WARNING"  # noqa: F405
CELERY_BEAT_SCHEDULE = {}
ALLOWED_HOSTS = [".test", ".localhost", "localhost", "testserver", "127.0.0.1"]

# Two test runs on one machine (e.g. two developers' terminals) each get their own database.
if os.environ.get("PYTEST_DB_SUFFIX"):
    DATABASES["default"]["TEST"] = {"NAME": f"test_gateway_{os.environ['PYTEST_DB_SUFFIX']}"}  # noqa: F405
