"""Periodic billing work (Celery beat). Every task is idempotent and safe on several workers at once."""

from __future__ import annotations

import logging

from celery import shared_task
from django_tenants.utils import schema_context

from billing import quota
from billing.providers.simulator import deliver_simulator_webhook  # noqa: F401 - its task, found here by Celery
from billing.reconciliation import reconcile
from billing.retail import services as retail
from tenants.models import Channel

logger = logging.getLogger(__name__)


def _channels():
    """Every channel, suspended ones too: a suspended channel sells nothing more, but money it already
    took must still end somewhere (paid orders credited, refunds sent, unpaid orders expired)."""
    return Channel.objects.filter(kind=Channel.Kind.CHANNEL).exclude(schema_name="public")


@shared_task(name="billing.sweep_expired_pending", ignore_result=True)
def sweep_expired_pending() -> int:
    """Void holds and reservations past their timeout (their stamp or order died)."""
    return quota.sweep_expired_pending()


@shared_task(name="billing.sweep_orders", ignore_result=True)
def sweep_orders() -> dict:
    """Per channel: credit paid-but-uncredited orders first (money received), then expire unpaid ones."""
    done = {}
    for channel in _channels():
        with schema_context(channel.schema_name):
            credited = retail.credit_paid_orders(channel=channel)
            expired = retail.expire_orders(channel=channel)
            retail.send_pending_refunds(channel=channel)  # any refund whose first send failed
        if credited or expired:
            logger.info("orders swept", extra={"channel": channel.code, "credited": credited, "expired": expired})
        done[channel.code] = {"credited": credited, "expired": expired}
    return done


@shared_task(name="billing.send_refunds", ignore_result=True)
def send_refunds_task(schema_name: str) -> int:
    """Send the money of pending refunds of one channel (queued after the commit that made them)."""
    channel = _channels().filter(schema_name=schema_name).first()
    if channel is None:
        logger.error("refund task for an unknown channel refused", extra={"schema": schema_name})
        return 0
    with schema_context(schema_name):
        return retail.send_pending_refunds(channel=channel)



@shared_task(name="billing.reconcile", ignore_result=True)
def reconcile_task() -> bool:
    report = reconcile(store=True)
    if not report["ok"]:
        logger.error("reconciliation found violations", extra={"report": report})
    return report["ok"]
