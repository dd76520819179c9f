"""Stamping tasks. Each takes the channel's schema name and ids, and refuses to run without a schema."""

from __future__ import annotations

import logging
import random

from celery import shared_task
from django_tenants.utils import schema_context

from gateway.stamping import admission, services
from tenants.models import Channel

logger = logging.getLogger(__name__)


def _channel(schema_name: str) -> Channel | None:
    if not schema_name or schema_name == "public":
        logger.error("stamping task without a channel schema refused", extra={"schema": schema_name})
        return None
    return Channel.objects.filter(schema_name=schema_name).first()


@shared_task(
    bind=True,
    name="gateway.stamping.run_job",
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,
    ignore_result=True,
)
def run_stamp_job_task(self, schema_name: str, job_id: str) -> None:
    channel = _channel(schema_name)
    if channel is None:
        return
    with schema_context(schema_name), admission.channel_slot(channel=channel) as slot:
        if not slot:
            # Over this channel's budget: back of the queue, so other channels' jobs go first.
            raise self.retry(countdown=0.2 + random.random() * 0.5)  # noqa: S311 - jitter
        try:
            services.run_stamp_job(channel=channel, job_id=job_id)
        except services._Retry as exc:
            attempt = self.request.retries + 1
            if attempt >= services.MAX_ATTEMPTS:
                services.fail_exhausted(job_id=job_id, detail=f"The signing service kept failing ({exc}).")
                return
            raise self.retry(countdown=min(60, 2**attempt) + random.random()) from exc  # noqa: S311


@shared_task(name="gateway.stamping.resume_stale", ignore_result=True)
def resume_stale_jobs_task() -> int:
    resumed = 0
    for channel in Channel.objects.filter(kind=Channel.Kind.CHANNEL).exclude(schema_name="public"):
        with schema_context(channel.schema_name):
            resumed += services.resume_stale_jobs()
    return resumed
