"""Gateway-wide periodic tasks."""

from __future__ import annotations

import time

from celery import shared_task
from django.core.cache import cache

from gateway import idempotency  # noqa: F401 - registers its Celery tasks
from outbox import webhooks  # noqa: F401 - registers its Celery tasks

HEARTBEAT_KEY = "gateway:beat:last"


@shared_task(name="gateway.tasks.heartbeat", ignore_result=True)
def heartbeat() -> float:
    """Proves beat and a worker are alive; the status page reads the time it writes."""
    now = time.time()
    cache.set(HEARTBEAT_KEY, now, timeout=None)
    return now
