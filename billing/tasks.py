"""Periodic billing work (Celery beat). Every task is idempotent and safe on several workers at once."""

from __future__ import annotations

import logging

from celery import shared_task
from django.core.cache import cache
from django_tenants.utils import schema_context

from billing import quota
from tenants.models import Channel

logger = logging.getLogger(__name__)


def _channels():
    return Channel.objects.filter(kind=Channel.Kind.CHANNEL, is_active=True).exclude(schema_name="public")


@shared_task(name="billing.sweep_expired_pending", ignore_result=True)
def sweep_expired_pending() -> int:
    """Void holds and reservations past their timeout (their stamp or order died)."""
    return quota.sweep_expired_pending()


@shared_task(name="billing.sweep_orders", ignore_result=True)
def sweep_orders() -> dict:
    """Per channel: credit paid-but-uncredited orders first (money received), then expire unpaid ones."""
    from billing.retail import services as retail

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
    from billing.retail import services as retail

    channel = _channels().filter(schema_name=schema_name).first()
    if channel is None:
        logger.error("refund task for an unknown or inactive channel refused", extra={"schema": schema_name})
        return 0
    with schema_context(schema_name):
        return retail.send_pending_refunds(channel=channel)


SIMULATOR_DELIVERY_RETRIES = 8  # with backoff 1, 2, 4 ... 60 s: about four minutes of trying
SIMULATOR_OUTCOME_TTL = 3600


@shared_task(
    name="billing.deliver_simulator_webhook", bind=True, ignore_result=True, max_retries=SIMULATOR_DELIVERY_RETRIES
)
def deliver_simulator_webhook(self, *, schema_name: str, url: str, host: str, body: str, payment_ref: str) -> int:
    """The payment simulator's provider side: POST the signed event to the gateway's webhook over HTTP.

    Queued by the pay page (which never calls its own server). Retried with backoff while the gateway
    is unreachable or answers 5xx/429; a 2xx or a 4xx is final. Safe to run twice: the event carries
    one payment reference, and the gateway applies a reference once. Returns the last HTTP status
    (0: no answer)."""
    from billing.providers import simulator

    try:
        status = simulator.send_webhook(url=url, host=host, body=body.encode()).status
    except OSError as exc:
        status = 0
        logger.warning(
            "simulator webhook not delivered", extra={"payment_ref": payment_ref, "error": type(exc).__name__}
        )
    final = 200 <= status < 500 and status != 429
    gave_up = not final and self.request.retries >= self.max_retries
    try:
        with schema_context(schema_name):
            cache.set(
                simulator.delivery_outcome_key(payment_ref),
                {"status": status, "final": final or gave_up, "delivered": 200 <= status < 300},
                SIMULATOR_OUTCOME_TTL,
            )
    except Exception:  # noqa: BLE001 - the note is only for the pay page; the delivery is what matters
        logger.warning("simulator delivery outcome not noted", extra={"payment_ref": payment_ref})
    if gave_up:
        logger.error("simulator webhook given up", extra={"payment_ref": payment_ref, "status": status})
    elif not final:
        raise self.retry(countdown=min(60, 2**self.request.retries))
    elif status >= 300:
        logger.error("simulator webhook refused", extra={"payment_ref": payment_ref, "status": status})
    return status


@shared_task(name="billing.reconcile", ignore_result=True)
def reconcile_task() -> bool:
    from billing.reconciliation import reconcile

    report = reconcile(store=True)
    if not report["ok"]:
        logger.error("reconciliation found violations", extra={"report": report})
    return report["ok"]
