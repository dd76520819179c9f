"""Test settings: the same real PostgreSQL and Redis as development, quieter and faster hashing."""

from .local import *  # noqa: F403

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed only; never in production
LOGGING["root"]["level"] = "WARNING"  # noqa: F405
CELERY_BEAT_SCHEDULE = {}
ALLOWED_HOSTS = [".test", ".localhost", "localhost", "testserver", "127.0.0.1"]
