"""Outgoing webhooks against a real HTTP receiver on 127.0.0.1: outbox, signatures, retries, replay."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import transaction
from django.utils import timezone
from django_tenants.utils import schema_context

from gateway.celery import app as celery_app
from outbox import webhooks
from outbox.models import WebhookDelivery, WebhookEndpoint
from outbox.webhooks import (
    MAX_ATTEMPTS,
    SIGNATURE_HEADER,
    InvalidWebhookEndpoint,
    backoff_delay,
    create_webhook_endpoint,
    deliver,
    enqueue_event,
    replay_delivery,
    sign,
    sweep,
    verify_signature,
)

pytestmark = pytest.mark.django_db


class Receiver:
    """A real HTTP server in a thread. ``answers`` is the queue of status codes it replies with
    (200 once it runs out); every request it gets is kept in ``requests``."""

    def __init__(self):
        self.requests: list[dict] = []
        self.answers: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                status = receiver.answers.pop(0) if receiver.answers else 200
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "http://127.0.0.1:1/elsewhere")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.fixture(autouse=True)
def eager_tasks():
    """``.delay()`` runs the real task function in this process (no broker, no worker)."""
    saved = (celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates)
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield
    celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = saved


@pytest.fixture
def alpha():
    with schema_context("alpha"):
        yield


def endpoint(url, events=("order.paid",), **fields):
    made = create_webhook_endpoint(url=url, events=list(events))
    if fields:
        WebhookEndpoint.objects.filter(pk=made.pk).update(**fields)
        made.refresh_from_db()
    return made


def only_delivery() -> WebhookDelivery:
    return WebhookDelivery.objects.get()


def test_an_event_reaches_every_subscribed_endpoint_signed(alpha, receiver, django_capture_on_commit_callbacks):
    paid = endpoint(receiver.url + "/paid")
    everything = endpoint(receiver.url + "/all", events=["*"])
    endpoint(receiver.url + "/stamps", events=["stamp.completed"])
    endpoint(receiver.url + "/off", active=False)

    with django_capture_on_commit_callbacks(execute=True):
        deliveries = enqueue_event(event_type="order.paid", payload={"order": 42, "units": 3})

    assert sorted(d.endpoint_id for d in deliveries) == [paid.pk, everything.pk]
    assert sorted(r["path"] for r in receiver.requests) == ["/hooks/all", "/hooks/paid"]
    secrets_by_path = {"/hooks/paid": paid.secret, "/hooks/all": everything.secret}
    for request in receiver.requests:
        headers, body = request["headers"], request["body"]
        assert verify_signature(secret=secrets_by_path[request["path"]], header=headers[SIGNATURE_HEADER], body=body)
        event = json.loads(body)
        assert event["type"] == "order.paid"
        assert event["data"] == {"order": 42, "units": 3}
        assert event["id"] == deliveries[0].event_id == headers["Emeterai-Event-Id"]
        assert headers["Emeterai-Delivery-Attempt"] == "1"
        assert headers["Content-Type"] == "application/json"
    for delivery in WebhookDelivery.objects.all():
        assert delivery.status == "succeeded"
        assert delivery.attempt_count == 1
        assert delivery.last_response_code == 200
        assert delivery.delivered_at is not None
        assert delivery.next_attempt_at is None
        assert [(a["attempt"], a["response_code"], a["error"]) for a in delivery.attempts] == [(1, 200, "")]


def test_an_event_rolled_back_with_its_transaction_is_never_sent(alpha, receiver, django_capture_on_commit_callbacks):
    endpoint(receiver.url)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            enqueue_event(event_type="order.paid", payload={"order": 1})
            raise RuntimeError("the order could not be paid after all")
    assert callbacks == []
    assert WebhookDelivery.objects.count() == 0
    assert receiver.requests == []


def test_a_500_schedules_a_retry_with_backoff(alpha, receiver):
    endpoint(receiver.url)
    receiver.answers = [500]
    (delivery,) = enqueue_event(event_type="order.paid", payload={"order": 1})
    before = timezone.now()

    outcome = deliver(schema_name="alpha", delivery_id=delivery.pk)

    after = timezone.now()
    assert outcome == "retry"
    delivery.refresh_from_db()
    assert delivery.status == "pending"
    assert delivery.attempt_count == 1
    assert delivery.last_response_code == 500
    assert delivery.last_error.startswith("HTTP 500")
    # first backoff: 30 s, jittered into [15 s, 30 s]
    assert before + timedelta(seconds=15) <= delivery.next_attempt_at <= after + timedelta(seconds=30)
    assert [(a["attempt"], a["response_code"]) for a in delivery.attempts] == [(1, 500)]
    # not due yet: running the task again (a duplicate message) sends nothing
    assert deliver(schema_name="alpha", delivery_id=delivery.pk) == "skipped"
    assert len(receiver.requests) == 1


def test_the_sweeper_sends_what_is_due(alpha, receiver):
    endpoint(receiver.url)
    receiver.answers = [503]
    (delivery,) = enqueue_event(event_type="order.paid", payload={"order": 1})
    deliver(schema_name="alpha", delivery_id=delivery.pk)
    assert sweep(schema_name="alpha") == 0  # the retry is not due yet
    WebhookDelivery.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=1))

    assert sweep(schema_name="alpha") == 1

    delivery.refresh_from_db()
    assert delivery.status == "succeeded"
    assert delivery.attempt_count == 2
    assert [(a["attempt"], a["response_code"]) for a in delivery.attempts] == [(1, 503), (2, 200)]
    assert [r["headers"]["Emeterai-Delivery-Attempt"] for r in receiver.requests] == ["1", "2"]
    assert len({r["headers"]["Emeterai-Event-Id"] for r in receiver.requests}) == 1


def test_the_last_failed_attempt_marks_the_delivery_failed(alpha, receiver):
    endpoint(receiver.url)
    receiver.answers = [500]
    (delivery,) = enqueue_event(event_type="order.paid", payload={"order": 1})
    WebhookDelivery.objects.update(attempt_count=MAX_ATTEMPTS - 1)

    assert deliver(schema_name="alpha", delivery_id=delivery.pk) == "failed"

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempt_count, delivery.next_attempt_at) == ("failed", MAX_ATTEMPTS, None)
    assert sweep(schema_name="alpha") == 0


@pytest.mark.parametrize("answer", [302, 404])
def test_redirects_and_client_errors_are_failed_attempts(alpha, receiver, answer):
    endpoint(receiver.url)
    receiver.answers = [answer]
    (delivery,) = enqueue_event(event_type="order.paid", payload={"order": 1})

    assert deliver(schema_name="alpha", delivery_id=delivery.pk) == "retry"

    delivery.refresh_from_db()
    assert delivery.last_response_code == answer
    assert len(receiver.requests) == 1  # the redirect was not followed


def test_an_unreachable_receiver_is_a_failed_attempt(alpha):
    endpoint("http://127.0.0.1:1/hooks")  # nothing listens on port 1
    (delivery,) = enqueue_event(event_type="order.paid", payload={"order": 1})

    assert deliver(schema_name="alpha", delivery_id=delivery.pk) == "retry"

    delivery.refresh_from_db()
    assert delivery.last_response_code is None
    assert "refused" in delivery.last_error.lower()


def test_replay_sends_a_failed_delivery_again(alpha, receiver, django_capture_on_commit_callbacks):
    endpoint(receiver.url)
    receiver.answers = [500]
    (delivery,) = enqueue_event(event_type="order.paid", payload={"order": 1})
    WebhookDelivery.objects.update(attempt_count=MAX_ATTEMPTS - 1)
    deliver(schema_name="alpha", delivery_id=delivery.pk)

    with django_capture_on_commit_callbacks(execute=True):
        replay_delivery(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert delivery.status == "succeeded"
    assert delivery.attempt_count == 1  # a fresh series
    assert [a.get("response_code", "replay") for a in delivery.attempts] == [500, "replay", 200]
    assert [r["headers"]["Emeterai-Event-Id"] for r in receiver.requests] == [delivery.event_id] * 2


def test_replay_of_a_delivery_that_does_not_exist_is_not_found(alpha):
    from kernel.errors import NotFound

    with pytest.raises(NotFound):
        replay_delivery(delivery_id=999_999)


def test_a_disabled_endpoint_fails_its_pending_deliveries_without_calling(alpha, receiver):
    hook = endpoint(receiver.url)
    (delivery,) = enqueue_event(event_type="order.paid", payload={"order": 1})
    WebhookEndpoint.objects.filter(pk=hook.pk).update(active=False)

    assert deliver(schema_name="alpha", delivery_id=delivery.pk) == "failed"

    delivery.refresh_from_db()
    assert delivery.last_error == "endpoint disabled"
    assert receiver.requests == []


@pytest.mark.parametrize("schema_name", ["", None, "public"])
def test_tasks_refuse_to_run_without_a_channel_schema(alpha, schema_name):
    with pytest.raises(ValueError, match="schema name of a channel"):
        deliver(schema_name=schema_name, delivery_id=1)
    with pytest.raises(ValueError, match="schema name of a channel"):
        sweep(schema_name=schema_name)


def test_events_are_refused_outside_a_channel_schema():
    with pytest.raises(RuntimeError, match="channel"):
        enqueue_event(event_type="order.paid", payload={})


def test_tasks_reach_the_schema_they_are_given(receiver):
    with schema_context("alpha"):
        endpoint(receiver.url)
        (delivery,) = enqueue_event(event_type="order.paid", payload={"order": 1})
    with schema_context("beta"):
        assert WebhookDelivery.objects.count() == 0
        assert deliver(schema_name="beta", delivery_id=delivery.pk) == "skipped"  # not beta's row
    assert deliver(schema_name="alpha", delivery_id=delivery.pk) == "succeeded"


@pytest.mark.parametrize("url", ["ftp://example.test/hooks", "/relative", "http:///nohost"])
def test_an_endpoint_needs_an_http_url(alpha, url):
    with pytest.raises(InvalidWebhookEndpoint):
        create_webhook_endpoint(url=url, events=["*"])
    assert WebhookEndpoint.objects.count() == 0


def test_a_signature_checks_body_secret_and_time():
    body = b'{"id":"evt_1"}'
    now = int(time.time())
    header = sign(secret="whsec_a", timestamp=now, body=body)
    assert verify_signature(secret="whsec_a", header=header, body=body)
    assert not verify_signature(secret="whsec_b", header=header, body=body)
    assert not verify_signature(secret="whsec_a", header=header, body=body + b" ")
    assert not verify_signature(secret="whsec_a", header=header, body=body, now=now + 301)
    assert not verify_signature(secret="whsec_a", header="v1=abc", body=body)
    rotated = f"{header},v1={'0' * 64}"  # several v1 values (secret rotation): one must match
    assert verify_signature(secret="whsec_a", header=rotated, body=body)


@pytest.mark.parametrize(
    ("attempt", "low", "high"),
    [(1, 15, 30), (2, 30, 60), (5, 240, 480), (30, 3 * 3600, 6 * 3600)],
)
def test_backoff_doubles_with_jitter_up_to_a_cap(attempt, low, high):
    for _ in range(50):
        assert timedelta(seconds=low) <= backoff_delay(attempt) <= timedelta(seconds=high)


def test_module_constants_keep_a_lease_longer_than_a_request():
    assert webhooks.LEASE.total_seconds() > webhooks.REQUEST_TIMEOUT_SECONDS


# --------------------------------------------------------------------------- public addresses only (SSRF)


@pytest.fixture
def public_only(settings):
    """As in production: deliveries to public addresses only."""
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hooks",
        "http://10.1.2.3/hooks",
        "https://192.168.0.10/hooks",
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "http://100.64.0.1/hooks",  # shared address space
        "http://[::1]/hooks",
        "http://[::ffff:127.0.0.1]/hooks",
        "http://[fd00::1]/hooks",
        "http://0.0.0.0/hooks",
        "http://localhost:9000/hooks",
        "http://api.localhost/hooks",
    ],
)
def test_an_endpoint_on_a_local_or_private_address_is_refused(alpha, public_only, url):
    with pytest.raises(InvalidWebhookEndpoint, match="local or private"):
        create_webhook_endpoint(url=url, events=["*"])
    assert WebhookEndpoint.objects.count() == 0


@pytest.mark.parametrize("url", ["https://hooks.example.com/x", "http://93.184.216.34/x", "https://[2606:4700::1111]/x"])
def test_public_looking_endpoints_are_accepted(alpha, public_only, url):
    assert create_webhook_endpoint(url=url, events=["*"]).url == url


def test_a_name_resolving_to_a_private_address_is_not_connected_to(
    alpha, receiver, public_only, monkeypatch, settings
):
    """The check is made at connect time on what the name resolves to then: DNS pointing a registered
    name inward (rebinding) reaches nothing."""
    import socket

    real_getaddrinfo = socket.getaddrinfo
    port = receiver.server.server_port

    def rebinding(host, *args, **kwargs):
        if host == "hooks.example.com":
            return real_getaddrinfo("127.0.0.1", *args, **kwargs)
        return real_getaddrinfo(host, *args, **kwargs)

    endpoint(f"http://hooks.example.com:{port}/hooks")  # accepted: a public-looking name
    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    (delivery,) = enqueue_event(event_type="order.paid", payload={"order": 1})

    assert deliver(schema_name="alpha", delivery_id=delivery.pk) == "retry"

    delivery.refresh_from_db()
    assert receiver.requests == []
    assert "non-public" in delivery.last_error and "127.0.0.1" in delivery.last_error

    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True  # development: the same name now reaches the receiver
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    assert deliver(schema_name="alpha", delivery_id=delivery.pk) == "succeeded"
    assert len(receiver.requests) == 1


def test_an_endpoint_stored_with_a_private_address_fails_its_attempts_cleanly(alpha, receiver, public_only):
    """Rows from before the check (or written directly) are refused at connect time, as failed attempts."""
    made = WebhookEndpoint.objects.create(url=receiver.url, secret="whsec_t", events=["*"])
    (delivery,) = enqueue_event(event_type="order.paid", payload={"order": 1})

    assert deliver(schema_name="alpha", delivery_id=delivery.pk) == "retry"

    delivery.refresh_from_db()
    assert delivery.endpoint_id == made.pk and delivery.last_response_code is None
    assert receiver.requests == [] and "non-public" in delivery.last_error


def test_an_https_endpoint_is_guarded_the_same_way(alpha, public_only, monkeypatch):
    """HTTPS connections go through the same connect-time check, before any TLS is spoken."""
    import socket

    real_getaddrinfo = socket.getaddrinfo
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda host, *a, **k: real_getaddrinfo("127.0.0.1" if host == "hooks.example.com" else host, *a, **k),
    )
    endpoint("https://hooks.example.com:1/hooks")
    (delivery,) = enqueue_event(event_type="order.paid", payload={"order": 1})

    assert deliver(schema_name="alpha", delivery_id=delivery.pk) == "retry"

    delivery.refresh_from_db()
    assert "non-public" in delivery.last_error and "refused" not in delivery.last_error.lower()
