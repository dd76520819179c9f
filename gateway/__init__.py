"""The e-Meterai channel gateway project package."""

from gateway.celery import app as celery_app

__all__ = ("celery_app",)
