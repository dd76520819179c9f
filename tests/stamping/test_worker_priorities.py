"""A real worker on every queue takes crediting ahead of a backlog of other work (issue #19): a paid
order waiting behind hundreds of queued default tasks is credited while most of them still wait."""

from __future__ import annotations

import time

from django.utils import timezone
from django_tenants.utils import schema_context

from billing import quota
from billing.retail import services as retail
from billing.retail.models import Order
from gateway.celery import app
from tenants.customers.models import Customer
from tenants.models import Channel
from tests.billing.factories import unique
from tests.live import private_broker, start_worker

BACKLOG = 300


def test_a_credit_is_taken_ahead_of_a_default_backlog(live_db, tmp_path):
    channel = Channel.objects.get(code="alpha")
    quota.allocate_stock(channel_id=channel.pk, units=5, reference=unique("dep"))
    with schema_context("alpha"):
        customer = Customer.objects.create(external_ref=unique("c"), name="Paid Before")
        order = retail.create_order(channel=channel, customer=customer, quantity=1)
        Order.objects.filter(pk=order.pk).update(status="paid", paid_at=timezone.now())  # credit owed

    env = private_broker(database=9)
    connection = app.connection_for_write(env["CELERY_BROKER_URL"])
    broker = connection.default_channel.client  # the broker's own Redis database (kombu's client)
    broker.flushdb()
    for _ in range(BACKLOG):  # other work first in time: a backlog in the default queue
        app.send_task("gateway.tasks.heartbeat", connection=connection)
    app.send_task("billing.sweep_orders", connection=connection)  # then the crediting sweep
    assert broker.llen("default") == BACKLOG

    worker = start_worker(tmp_path, name="priorities", queues="stamping,credit,default", concurrency=1, env=env)
    try:
        deadline = time.monotonic() + 120
        while True:
            with schema_context("alpha"):
                if Order.objects.get(pk=order.pk).status == "credited":
                    break
            assert time.monotonic() < deadline, "never credited:\n" + worker.output()
            time.sleep(0.05)
        waiting = broker.llen("default")
    finally:
        worker.stop()
        broker.flushdb()
        connection.release()
    # Routed to `credit`, taken before `default` by the priority order: most of the backlog still waits
    # (on one FIFO queue the order would be credited only after all of it).
    assert waiting >= BACKLOG - 50, waiting
