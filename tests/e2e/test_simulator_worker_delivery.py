"""The pay page never waits on its own server (issue #11): on a gunicorn with ONE worker thread, which
the pay request itself occupies, paying answers at once with a waiting page; a real Celery worker then
delivers the signed webhook over HTTP to that server, the page turns to "credited", and delivering
the same payment again credits nothing more."""

from __future__ import annotations

import re
import sys
import time
import urllib.error
import urllib.request

import pytest
from django_tenants.utils import schema_context

from billing import quota, tasks
from billing.providers import simulator
from tests.billing.factories import unique
from tests.e2e.http import HttpClient
from tests.live import Process, free_port, private_broker, start_worker

pytestmark = pytest.mark.slow


def start_single_thread_server(tmp_path) -> tuple[Process, str]:
    """gunicorn with one worker process and one thread: a request that called this server would wait
    on itself (the old pay page timed out and answered 500)."""
    port = free_port()
    argv = [sys.executable, "-m", "gunicorn", "gateway.wsgi:application", "--bind", f"127.0.0.1:{port}"]
    server = Process(
        [*argv, "--workers", "1", "--threads", "1", "--timeout", "60"], tmp_path / "gunicorn.log", private_broker()
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        assert server.proc.poll() is None, "gunicorn exited:\n" + server.output()
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2):  # noqa: S310
                return server, url
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            assert time.monotonic() < deadline, "gunicorn did not start:\n" + server.output()
            time.sleep(0.2)


def state(answer) -> str:
    found = re.search(r'data-state="(\w+)"', answer.text)
    return found.group(1) if found else f"<no state: HTTP {answer.status}>"


def test_the_pay_page_answers_at_once_and_a_worker_delivers_the_webhook(live_db, tmp_path, channel_keys):
    from billing.retail.models import Payment
    from tenants.models import Channel

    alpha = Channel.objects.get(code="alpha")
    quota.allocate_stock(channel_id=alpha.pk, units=2, reference=unique("dep"))
    server, url = start_single_thread_server(tmp_path)
    worker = None
    try:
        api = HttpClient(url, "alpha.test", channel_keys["alpha"])
        customer = api.post("/api/v1/customers", json_body={"external_ref": unique("c"), "name": "Rina"}).json()
        order = api.post("/api/v1/orders", json_body={"customer": customer["id"], "quantity": 2})
        assert order.status == 201, order.text
        order_id = order.json()["id"]
        browser = HttpClient(url, "alpha.test")

        # No worker yet: the page must answer without the payment having reached the gateway.
        sent = browser.csrf_form(f"/pay/simulator/{order_id}", {"action": "pay"})

        assert sent.status == 200, sent.text
        assert state(sent) == "waiting"
        assert "Payment sent, waiting for confirmation." in sent.text
        assert '<meta http-equiv="refresh"' in sent.text
        assert api.get(f"/api/v1/orders/{order_id}").json()["status"] == "awaiting_payment"

        worker = start_worker(tmp_path, name="simulator", queues="default", concurrency=1, env=private_broker())
        ref = simulator.payment_ref(order_id=order_id, succeeded=True)
        waiting = f"/pay/simulator/{order_id}/payments/{ref}"
        deadline = time.monotonic() + 90
        while state(answer := browser.get(waiting, headers={"Accept": "text/html"})) == "waiting":
            assert time.monotonic() < deadline, "never credited:\n" + worker.output()
            time.sleep(0.2)
        assert state(answer) == "credited", answer.text
        assert 'http-equiv="refresh"' not in answer.text

        # The same payment delivered again (a retried or redelivered task) is applied once.
        body = simulator.event_body(order_id=order_id, amount_rupiah=order.json()["total_rupiah"], succeeded=True,
                                    payment_ref=ref)  # fmt: skip
        again = tasks.deliver_simulator_webhook.apply(
            kwargs={"schema_name": "alpha", "url": f"{url}/api/v1/payments/simulator/webhook", "host": "alpha.test",
                    "body": body.decode(), "payment_ref": ref}
        )  # fmt: skip
        assert again.get() == 200
        assert api.get(f"/api/v1/orders/{order_id}").json()["status"] == "credited"
        assert api.get(f"/api/v1/customers/{customer['id']}").json()["quota"] == {"available": 2, "held": 0, "used": 0}
    finally:
        if worker is not None:
            worker.stop()
        server.stop()
    with schema_context("alpha"):
        assert list(Payment.objects.filter(order_id=order_id).values_list("provider_ref", "status")) == [
            (ref, "succeeded")
        ]
