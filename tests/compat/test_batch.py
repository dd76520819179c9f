"""The facade's batch: a serial and a held unit per document, all or none, and each result POSTed to
the client's `return_url` by the webhook outbox (a local receiver here; the test settings allow
private addresses, production refuses them)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django_tenants.utils import schema_context

from outbox.models import WebhookDelivery
from outbox.webhooks import SIGNATURE_HEADER, attempt_delivery
from stamping.models import SerialReservation
from tests.compat.test_facade import client, login, post_json, saldo, upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def alpha(channels):
    return channels["alpha"]


@pytest.fixture
def kasir(alpha):
    from tests.compat.test_facade import _compat_user

    return _compat_user(alpha, "kasir1", units=3)


@pytest.fixture
def receiver():
    """A distributor's callback endpoint: records what it is sent."""
    received: list[tuple[dict, dict]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the http.server API
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((dict(self.headers), json.loads(body)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/callback", received
    server.shutdown()
    server.server_close()


def documents(n: int) -> list[dict]:
    return [{"namadoc": "kuitansi", "nodoc": f"KW/{i}", "tgldoc": "2026-11-29", "namafile": f"kw{i}.pdf"}
            for i in range(n)]  # fmt: skip


def test_a_batch_reserves_a_serial_per_document_and_calls_back_each_result(alpha, kasir, receiver):
    url, received = receiver
    token = login()
    answer = post_json(client(token=token), "/compat/api/v2/serialnumber/batch", {"return_url": url,
                                                                                 "document": documents(2)})
    assert answer.status_code == 200, answer.content
    batch_id = answer.json()["result"]["batchId"]
    assert saldo(token) == (1, 2)  # two units held, not spent

    with schema_context("alpha"):  # the outbox worker's step, in process (the task calls the same function)
        deliveries = list(WebhookDelivery.objects.filter(event_type="compat.batch_serial").order_by("pk"))
        assert [attempt_delivery(delivery_id=d.pk) for d in deliveries] == ["succeeded", "succeeded"]
        serials = list(SerialReservation.objects.filter(reference=batch_id).values_list("serial", flat=True))
    assert len(received) == 2
    bodies = [body for _headers, body in received]
    assert {b["errCode"] for b in bodies} == {"00"}
    assert sorted(b["result"]["serialNumber"] for b in bodies) == sorted(serials)
    assert {b["result"]["batchId"] for b in bodies} == {batch_id}
    assert sorted(b["result"]["procId"] for b in bodies) == ["1", "2"]
    assert all(b["result"]["qrImage"] and b["result"]["status"] == "SUCCESS" for b in bodies)
    assert all(SIGNATURE_HEADER in headers for headers, _body in received)

    status = client(token=token).get(f"/compat/snqr/status-batch?batchId={batch_id}").json()
    assert status["statusCode"] == "00" and status["result"]["total"] == 2
    assert {row["status"] for row in status["result"]["data"]} == {"NOTSTAMP"}

    # A batch serial stamps like any other (docSigningZ with its serial as refToken).
    doc_id = upload(token)
    signed = post_json(client(token=token), "/compat/keystamp/adapter/docSigningZ", {
        "refToken": serials[0], "docId": doc_id, "visLLX": 400, "visLLY": 50, "visURX": 500, "visURY": 150})
    assert signed.json()["errorCode"] == "97"  # queued (COMPAT_SIGN_WAIT_SECONDS is 0 in these tests)


def test_a_batch_larger_than_the_balance_is_refused_whole_and_holds_nothing(alpha, kasir, receiver):
    url, _received = receiver
    token = login()
    refused = post_json(client(token=token), "/compat/api/v2/serialnumber/batch", {"return_url": url,
                                                                                  "document": documents(4)})
    assert refused.status_code == 409
    assert (refused.json()["errCode"], refused.json()["code"]) == ("03", "insufficient_quota")
    assert saldo(token) == (3, 0)
    with schema_context("alpha"):
        assert not SerialReservation.objects.exists()
        assert not WebhookDelivery.objects.filter(event_type="compat.batch_serial").exists()


def test_a_private_return_url_is_refused_where_private_addresses_are_not_allowed(alpha, kasir, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    token = login()
    refused = post_json(client(token=token), "/compat/api/v2/serialnumber/batch",
                        {"return_url": "http://169.254.169.254/latest", "document": documents(1)})
    assert refused.json()["code"] == "invalid_webhook_endpoint" and refused.json()["errCode"] == "02"
    assert saldo(token) == (3, 0)
