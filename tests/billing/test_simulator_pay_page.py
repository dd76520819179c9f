"""The payment simulator's pay page queues its webhook for a worker and waits for the confirmation;
the delivery task signs afresh on every attempt and retries while the gateway does not answer."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.cache import cache
from django_tenants.utils import schema_context

from billing import tasks
from billing.providers import PaymentEvent, simulator
from billing.retail import services as retail
from billing.retail.models import Order
from gateway.celery import app as celery_app
from tests.billing.factories import unique

pytestmark = pytest.mark.django_db


@pytest.fixture
def order(channels):
    from billing import quota
    from tenants.customers.models import Customer

    alpha = channels["alpha"]
    quota.allocate_stock(channel_id=alpha.pk, units=3, reference=unique("dep"))
    with schema_context("alpha"):
        customer = Customer.objects.create(external_ref=unique("c"), name="Sari")
        return retail.create_order(channel=alpha, customer=customer, quantity=2)


@pytest.fixture
def queued(monkeypatch):
    """The deliveries the pay page queues (their kwargs), instead of sending them to the broker."""
    sent: list[dict] = []
    monkeypatch.setattr(tasks.deliver_simulator_webhook, "delay", lambda **kwargs: sent.append(kwargs))
    return sent


def page(client, path):
    return client.get(path, HTTP_ACCEPT="text/html")


def test_paying_queues_the_webhook_after_commit_and_answers_with_a_waiting_page(
    client_for, order, queued, django_capture_on_commit_callbacks
):
    client = client_for("alpha", key=None)
    client.raise_request_exception = True

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(f"/pay/simulator/{order.pk}", {"action": "pay"}, HTTP_ACCEPT="text/html")

    ref = simulator.payment_ref(order_id=order.pk, succeeded=True)
    assert response.status_code == 303
    assert response["Location"] == f"/pay/simulator/{order.pk}/payments/{ref}"
    assert len(callbacks) == 1 and len(queued) == 1  # queued after commit, not sent from the request
    delivery = queued[0]
    assert delivery["schema_name"] == "alpha" and delivery["payment_ref"] == ref and delivery["host"] == "alpha.test"
    assert delivery["url"].endswith("/api/v1/payments/simulator/webhook")
    event = retail.get_provider("simulator").parse_webhook(
        body=delivery["body"].encode(), headers={simulator.SIGNATURE_HEADER: simulator.sign(delivery["body"].encode())}
    )
    assert (event.order_id, event.provider_ref, event.succeeded, event.amount_rupiah) == (
        order.pk,
        ref,
        True,
        order.total_rupiah,
    )
    with schema_context("alpha"):
        assert Order.objects.get(pk=order.pk).status == Order.Status.AWAITING_PAYMENT  # nothing applied yet

    waiting = page(client, response["Location"])

    assert waiting.status_code == 200
    assert b'data-state="waiting"' in waiting.content
    assert b"Payment sent, waiting for confirmation." in waiting.content
    assert b'<meta http-equiv="refresh"' in waiting.content


def _apply(order, *, succeeded: bool):
    ref = simulator.payment_ref(order_id=order.pk, succeeded=succeeded)
    event = PaymentEvent(
        provider_ref=ref, order_id=order.pk, succeeded=succeeded, amount_rupiah=order.total_rupiah, raw={}
    )
    from tenants.models import Channel

    with schema_context("alpha"):
        retail.apply_payment_event(channel=Channel.objects.get(code="alpha"), provider_name="simulator", event=event)
    return ref


def test_the_waiting_page_shows_the_credit_and_stops_refreshing(client_for, order):
    ref = _apply(order, succeeded=True)

    done = page(client_for("alpha", key=None), f"/pay/simulator/{order.pk}/payments/{ref}")

    assert b'data-state="credited"' in done.content
    assert b"Payment confirmed: 2 e-Meterai credited." in done.content
    assert b'http-equiv="refresh"' not in done.content


def test_the_waiting_page_shows_a_failed_payment(client_for, order):
    ref = _apply(order, succeeded=False)

    done = page(client_for("alpha", key=None), f"/pay/simulator/{order.pk}/payments/{ref}")

    assert b'data-state="failed"' in done.content
    assert b"The payment failed." in done.content
    assert b'http-equiv="refresh"' not in done.content
    assert b"place a new order" in done.content
    # (#15: the order no longer stays payable after a failed payment, so there is no way back to pay it)
    assert f'href="/pay/simulator/{order.pk}"'.encode() not in done.content


def test_the_waiting_page_shows_a_notification_the_gateway_refused(client_for, order):
    ref = simulator.payment_ref(order_id=order.pk, succeeded=True)
    with schema_context("alpha"):
        cache.set(simulator.delivery_outcome_key(ref), {"status": 401, "final": True, "delivered": False}, 60)

    done = page(client_for("alpha", key=None), f"/pay/simulator/{order.pk}/payments/{ref}")

    assert b'data-state="refused"' in done.content
    assert b"refused it (HTTP 401)" in done.content


def test_a_paid_order_queues_nothing(client_for, order, queued, django_capture_on_commit_callbacks):
    _apply(order, succeeded=True)
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for("alpha", key=None).post(f"/pay/simulator/{order.pk}", {"action": "pay"})
    assert response.status_code == 200
    assert queued == []


class FakeGateway:
    """A real HTTP server standing in for the gateway's webhook endpoint: answers ``answers`` in turn
    (200 once they run out) and keeps every request."""

    def __init__(self, answers: list[int]):
        self.answers, self.requests = list(answers), []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                fake.requests.append({"headers": dict(self.headers), "body": body})
                self.send_response(fake.answers.pop(0) if fake.answers else 200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/api/v1/payments/simulator/webhook"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def eager():
    saved = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = saved


@pytest.mark.parametrize(("answers", "status", "attempts"), [([503, 429], 200, 3), ([401], 401, 1)])
def test_the_delivery_retries_until_a_final_answer_signing_each_attempt(eager, answers, status, attempts):
    gateway = FakeGateway(answers)
    body = simulator.event_body(order_id="ord_x", amount_rupiah=20_000, succeeded=True, payment_ref="simpay_x")
    try:
        result = tasks.deliver_simulator_webhook.apply(
            kwargs={"schema_name": "alpha", "url": gateway.url, "host": "alpha.test", "body": body.decode(),
                    "payment_ref": "simpay_x"}
        )  # fmt: skip
    finally:
        gateway.close()

    assert result.get() == status
    assert len(gateway.requests) == attempts
    for request in gateway.requests:
        assert request["body"] == body  # the same event every time ...
        assert request["headers"]["Host"] == "alpha.test"
        simulator.verify(request["body"], request["headers"][simulator.SIGNATURE_HEADER])  # ... signed afresh
    with schema_context("alpha"):
        noted = cache.get(simulator.delivery_outcome_key("simpay_x"))
    assert noted == {"status": status, "final": True, "delivered": status == 200}
