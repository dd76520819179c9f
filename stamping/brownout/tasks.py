"""The beat task that starts and lifts automatic brownouts on backlog age."""

from __future__ import annotations

import logging

from celery import shared_task

from stamping.brownout import services

logger = logging.getLogger(__name__)


@shared_task(name="gateway.brownout.evaluate", ignore_result=True)
def evaluate_task() -> dict:
    changes = services.evaluate_automatic()
    if changes:
        logger.info("automatic brownout changed", extra={"changes": changes})
    return changes
