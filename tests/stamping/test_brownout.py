"""Brownout: the issuer pauses the lowest classes of new work first (customers, purchases, stamp
requests) while what is already accepted or paid is finished; channels see it in the API, on the
status page and by webhook; every change is audited; automatic pauses follow the backlog's age."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from django_tenants.utils import schema_context

from billing import quota
from billing.providers import simulator
from billing.retail import services as retail
from billing.retail.models import Order
from outbox.models import WebhookDelivery
from outbox.webhooks import create_webhook_endpoint
from staff.models import AuditEntry
from stamping import services as stamping
from stamping.brownout import services as brownout
from stamping.brownout.models import Brownout
from stamping.models import StampJob
from tenants.customers.models import Customer
from tests.billing.factories import funded_wallet, unique
from tests.fixtures.pdfs.factory import text_pdf
from tests.staff_helpers import ISSUER_HOST, make_staff, office_client

pytestmark = pytest.mark.django_db
PLACEMENT = {"page": "1", "llx": "40", "lly": "40", "urx": "140", "ury": "140"}


@pytest.fixture
def alpha(channels):
    channel = channels["alpha"]
    quota.allocate_stock(channel_id=channel.pk, units=50, reference=unique("dep"))
    with schema_context("alpha"):
        create_webhook_endpoint(url="https://shop.example/hooks", events=["service.paused", "service.resumed"])
    return channel


@pytest.fixture
def customer(alpha):
    with schema_context("alpha"):
        return Customer.objects.create(external_ref=unique("c"), name="Siti")


def paid_customer(channel) -> int:
    customer_id = funded_wallet(channel_id=channel.pk, units=3)
    with schema_context(channel.schema_name):
        Customer.objects.create(id=customer_id, external_ref=unique("c"), name="Wallet Owner")
    return customer_id


def post_order(client_for, customer_id: int):
    return client_for("alpha").post(
        "/api/v1/orders", data=json.dumps({"customer": customer_id, "quantity": 2}), content_type="application/json"
    )


def post_customer(client_for, code: str = "alpha"):
    return client_for(code).post(
        "/api/v1/customers", data=json.dumps({"external_ref": unique("c"), "name": "Ayu"}),
        content_type="application/json",
    )  # fmt: skip


def post_stamp(client_for, customer_id: int):
    document = SimpleUploadedFile("a.pdf", text_pdf(), content_type="application/pdf")
    return client_for("alpha").post("/api/v1/stamps", {"customer": str(customer_id), **PLACEMENT, "document": document})


def pay(client_for, order) -> int:
    body = simulator.event_body(
        order_id=order.pk, amount_rupiah=order.total_rupiah, succeeded=True, payment_ref=unique("pay")
    )
    return client_for("alpha", key=None).post(
        "/api/v1/payments/simulator/webhook", data=body, content_type="application/json",
        HTTP_SIMULATOR_SIGNATURE=simulator.sign(body),
    ).status_code  # fmt: skip


def assert_paused(response, code: str) -> dict:
    assert response.status_code == 503, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    assert int(response["Retry-After"]) >= 1
    problem = response.json()
    assert problem["code"] == code and problem["request_id"] == response["X-Request-Id"]
    return problem


def webhook_events() -> list[tuple[str, dict]]:
    with schema_context("alpha"):
        return [(d.event_type, d.payload) for d in WebhookDelivery.objects.order_by("pk")]


def test_paused_purchases_refuse_new_orders_while_paid_orders_are_credited_and_stamps_finish(
    client_for, alpha, customer
):
    with schema_context("alpha"):
        order = retail.create_order(channel=alpha, customer=customer, quantity=3)  # before the pause
    stamper = paid_customer(alpha)
    accepted = post_stamp(client_for, stamper)
    assert accepted.status_code == 202

    brownout.pause(kind="purchases", channel=alpha, reason="Deadline surge: finishing paid work first.", actor="ops")

    with schema_context("alpha"):
        orders_before = Order.objects.count()
    problem = assert_paused(post_order(client_for, customer.pk), "purchases_paused")
    assert problem["reason"] == "Deadline surge: finishing paid work first." and problem["scope"] == "alpha"
    assert "Deadline surge" in problem["detail"]
    with schema_context("alpha"):
        assert Order.objects.count() == orders_before  # nothing reserved
    assert_paused(post_customer(client_for), "registrations_paused")  # the lower class goes with it

    # the higher classes are served: a paid order is credited, a stamp request is taken and finishes
    assert pay(client_for, order) == 200
    with schema_context("alpha"):
        assert Order.objects.get(pk=order.pk).status == "credited"
    assert quota.wallet_balance(channel_id=alpha.pk, customer_id=customer.pk)["available"] == 3
    assert post_stamp(client_for, stamper).status_code == 202
    with schema_context("alpha"):
        done, more = stamping.drain(channel=alpha, time_slice=60)
        assert (done, more) == (2, False)
        assert set(StampJob.objects.filter(customer_id=stamper).values_list("status", flat=True)) == {"stamped"}

    status = client_for("alpha", key=None).get("/api/v1/status").json()
    assert status["mode"] == "brownout"
    assert status["accepting"] == {"stamping": True, "purchases": False, "registrations": False}
    assert [(p["class"], p["scope"], p["automatic"]) for p in status["paused"]] == [("purchases", "alpha", False)]
    page = Client(HTTP_HOST=ISSUER_HOST).get("/status")
    assert b"Deadline surge: finishing paid work first." in page.content and b"New purchases" in page.content

    brownout.resume(kind="purchases", channel=alpha, actor="ops")
    assert post_order(client_for, customer.pk).status_code == 201
    assert post_customer(client_for).status_code == 201
    assert client_for("alpha", key=None).get("/api/v1/status").json() == {
        "channel": "alpha", "mode": "normal", "paused": [],
        "accepting": {"stamping": True, "purchases": True, "registrations": True},
    }  # fmt: skip
    assert b"Deadline surge" not in Client(HTTP_HOST=ISSUER_HOST).get("/status").content

    events = webhook_events()
    assert [e for e, _ in events] == ["service.paused", "service.resumed"]
    paused = events[0][1]["service"]
    assert (paused["class"], paused["channel"], paused["reason"]) == (
        "purchases", "alpha", "Deadline surge: finishing paid work first.",
    )  # fmt: skip
    assert paused["accepting"]["purchases"] is False and events[1][1]["service"]["accepting"]["purchases"] is True
    entries = AuditEntry.objects.filter(action__startswith="brownout.").order_by("id")
    audited = list(entries.values_list("action", "actor"))
    assert audited == [("brownout.paused", "ops"), ("brownout.resumed", "ops")]


def test_pausing_stamp_requests_pauses_the_lower_classes_and_accepted_stamps_still_finish(client_for, alpha, customer):
    stamper = paid_customer(alpha)
    assert post_stamp(client_for, stamper).status_code == 202
    brownout.pause(kind="stamping", channel=None, reason="Signing service slow.", actor="ops")
    problem = assert_paused(post_stamp(client_for, stamper), "stamping_paused")
    assert problem["scope"] == "all"
    assert_paused(post_order(client_for, customer.pk), "purchases_paused")
    assert_paused(post_customer(client_for), "registrations_paused")
    assert_paused(post_customer(client_for, "beta"), "registrations_paused")  # every channel
    with schema_context("alpha"):
        assert stamping.drain(channel=alpha, time_slice=60) == (1, False)
        assert StampJob.objects.get(customer_id=stamper).status == "stamped"
    assert quota.wallet_balance(channel_id=alpha.pk, customer_id=stamper)["available"] == 2


def test_a_channel_pause_leaves_the_other_channels_alone(client_for, alpha):
    brownout.pause(kind="registrations", channel=alpha, reason="Too many sign-ups.", actor="ops")
    assert_paused(post_customer(client_for), "registrations_paused")
    assert post_customer(client_for, "beta").status_code == 201
    assert client_for("beta", key=None).get("/api/v1/status").json()["mode"] == "normal"


def test_pausing_twice_keeps_one_pause_and_a_pause_needs_a_reason(alpha):
    first = brownout.pause(kind="purchases", channel=alpha, reason="one", actor="ops")
    again = brownout.pause(kind="purchases", channel=alpha, reason="two", actor="ops")
    assert again.pk == first.pk and Brownout.objects.filter(ended_at__isnull=True).count() == 1
    from stamping.brownout.errors import InvalidBrownout

    with pytest.raises(InvalidBrownout):
        brownout.pause(kind="purchases", channel=None, reason="  ", actor="ops")
    assert brownout.resume(kind="purchases", channel=None, actor="ops") is None  # none for all


def test_the_command_pauses_shows_and_resumes(alpha, capsys):
    call_command("brownout", "pause", "purchases", "--channel", "alpha", "--reason", "Bank outage")
    row = json.loads(capsys.readouterr().out)
    assert (row["class"], row["scope"], row["reason"]) == ("purchases", "alpha", "Bank outage")
    call_command("brownout", "status")
    assert [json.loads(line)["class"] for line in capsys.readouterr().out.splitlines()] == ["purchases"]
    call_command("brownout", "resume", "purchases", "--channel", "alpha")
    assert json.loads(capsys.readouterr().out)["until"] is not None
    entries = AuditEntry.objects.filter(action__startswith="brownout.").order_by("id")
    assert [e.action for e in entries] == ["brownout.paused", "brownout.resumed"]
    assert all(e.actor.startswith("manage.py brownout") for e in entries)


def test_staff_pause_and_resume_from_the_back_office_with_csrf(alpha, client_for, customer):
    staff = make_staff("duty")
    office = office_client(staff, enforce_csrf_checks=True)
    page = office.get("/backoffice/brownout/")
    assert page.status_code == 200 and b"Nothing is paused" in page.content
    token = page.cookies["csrftoken"].value if "csrftoken" in page.cookies else office.cookies["csrftoken"].value
    refused = office.post("/backoffice/brownout/", {"kind": "purchases", "channel": "alpha", "reason": "x"})
    assert refused.status_code == 403 and not Brownout.objects.exists()  # no token, no change
    done = office.post(
        "/backoffice/brownout/",
        {"kind": "purchases", "channel": "alpha", "reason": "Queue over an hour", "csrfmiddlewaretoken": token},
    )
    assert done.status_code == 302
    row = Brownout.objects.get(ended_at__isnull=True)
    assert (row.kind, row.channel_id, row.started_by) == ("purchases", alpha.pk, "duty")
    assert_paused(post_order(client_for, customer.pk), "purchases_paused")
    listed = office.get("/backoffice/brownout/")
    assert b"Queue over an hour" in listed.content and b"<script>" not in listed.content
    resumed = office.post(f"/backoffice/brownout/{row.pk}/resume", {"csrfmiddlewaretoken": token})
    assert resumed.status_code == 302
    assert post_order(client_for, customer.pk).status_code == 201
    entry = AuditEntry.objects.get(action="brownout.resumed")
    assert entry.actor == "duty" and entry.details["scope"] == "alpha"


def queue_old_jobs(channel, *, count: int, age_seconds: float) -> list[str]:
    """A real backlog: stamp requests accepted ``age_seconds`` ago and not yet run."""
    customer_id = funded_wallet(channel_id=channel.pk, units=count)
    ids = []
    with schema_context(channel.schema_name):
        Customer.objects.create(id=customer_id, external_ref=unique("c"), name="Backlog")
        for _ in range(count):
            request = stamping.StampRequest(data=text_pdf(), page=1, box=(40, 40, 140, 140))
            ids.append(stamping.request_stamp(channel=channel, customer_id=customer_id, request=request).pk)
        StampJob.objects.filter(pk__in=ids).update(created_at=timezone.now() - timedelta(seconds=age_seconds))
    return ids


def test_an_automatic_brownout_starts_and_ends_on_backlog_age(alpha, client_for, settings):
    settings.BROWNOUT_AUTO_CHANNEL = {"registrations": (20, 5), "purchases": (40, 10)}
    settings.BROWNOUT_AUTO_ISSUER = {"registrations": (120, 30)}
    from stamping.brownout.tasks import evaluate_task

    assert evaluate_task() == {}  # nothing waits: nothing paused
    queue_old_jobs(alpha, count=2, age_seconds=25)
    assert evaluate_task() == {"registrations:alpha": "paused"}  # the lowest class first
    assert_paused(post_customer(client_for), "registrations_paused")
    assert post_customer(client_for, "beta").status_code == 201

    with schema_context("alpha"):
        StampJob.objects.filter(status="queued").update(created_at=timezone.now() - timedelta(seconds=45))
    assert evaluate_task() == {"purchases:alpha": "paused"}
    assert evaluate_task() == {}  # safe to run again
    status = client_for("alpha", key=None).get("/api/v1/status").json()
    assert [(p["class"], p["automatic"]) for p in status["paused"]] == [("purchases", True), ("registrations", True)]
    brownout.pause(kind="stamping", channel=alpha, reason="By hand.", actor="ops")

    with schema_context("alpha"):
        assert stamping.drain(channel=alpha, time_slice=60) == (2, False)  # the backlog drains
    assert evaluate_task() == {"registrations:alpha": "resumed", "purchases:alpha": "resumed"}
    assert list(Brownout.objects.filter(ended_at__isnull=True).values_list("kind", flat=True)) == ["stamping"]
    assert [e for e, _ in webhook_events()] == ["service.paused"] * 3 + ["service.resumed"] * 2
    automatic = AuditEntry.objects.filter(action__startswith="brownout.", details__automatic=True)
    actors = set(automatic.values_list("actor", flat=True))
    assert actors == {"automatic brownout"}


def test_hysteresis_keeps_an_automatic_pause_until_the_backlog_is_well_under_its_start(alpha, settings):
    settings.BROWNOUT_AUTO_CHANNEL = {"registrations": (20, 5)}
    settings.BROWNOUT_AUTO_ISSUER = {}
    ids = queue_old_jobs(alpha, count=1, age_seconds=30)
    assert brownout.evaluate_automatic() == {"registrations:alpha": "paused"}
    with schema_context("alpha"):
        StampJob.objects.filter(pk__in=ids).update(created_at=timezone.now() - timedelta(seconds=10))
    assert brownout.evaluate_automatic() == {}  # under the start, over the stop: still paused
    with schema_context("alpha"):
        StampJob.objects.filter(pk__in=ids).update(created_at=timezone.now() - timedelta(seconds=2))
    assert brownout.evaluate_automatic() == {"registrations:alpha": "resumed"}


def test_the_issuer_wide_threshold_pauses_every_channel(alpha, client_for, settings):
    settings.BROWNOUT_AUTO_CHANNEL = {}
    settings.BROWNOUT_AUTO_ISSUER = {"registrations": (30, 10)}
    queue_old_jobs(alpha, count=1, age_seconds=35)
    assert brownout.evaluate_automatic() == {"registrations:all": "paused"}
    assert_paused(post_customer(client_for, "beta"), "registrations_paused")


def test_payment_webhooks_pass_the_channel_bulkhead(settings):
    """Crediting paid orders ranks above new work: the web bulkhead never refuses a provider's webhook."""
    from gateway import bulkhead

    settings.WEB_THREADS = 4
    seen = []

    class Tenant:
        schema_name, kind, name = "alpha", "channel", "Alpha"

    class Request:
        tenant = Tenant()

        def __init__(self, path, method="POST"):
            self.path, self.method = path, method

    middleware = bulkhead.ChannelBulkheadMiddleware(lambda request: seen.append(request.path) or "ok")
    bulkhead._in_flight["alpha"] = 99  # the channel's surge holds every thread
    bulkhead._last_seen["beta"] = __import__("time").monotonic()
    try:
        assert middleware(Request("/api/v1/payments/simulator/webhook")) == "ok"
        assert middleware(Request("/api/v1/orders")).status_code == 503
    finally:
        bulkhead.reset()
    assert seen == ["/api/v1/payments/simulator/webhook"]


def test_workers_take_finishing_and_crediting_ahead_of_the_rest():
    from django.conf import settings as django_settings

    from gateway.celery import app

    def queue(name):
        return app.amqp.router.route({}, name, (), {})["queue"].name

    assert queue("gateway.stamping.drain_lane") == "stamping"
    assert queue("gateway.stamping.resume_stale") == "stamping"
    assert queue("billing.sweep_orders") == "credit" and queue("billing.send_refunds") == "credit"
    assert queue("gateway.webhooks.sweep_all") == "default"
    assert django_settings.CELERY_WORKER_QUEUES.split(",") == ["stamping", "credit", "default"]
    assert app.conf.broker_transport_options["queue_order_strategy"] == "priority"


def test_the_channel_portal_and_the_status_banner_show_the_pause(alpha, monkeypatch):
    from django.contrib.auth import get_user_model

    from faces.backoffice import selectors as status_selectors

    status_selectors.forget_cached_status()
    monkeypatch.setattr(status_selectors, "overall_state", lambda components, incidents: "operational")

    portal = Client(HTTP_HOST="alpha.test")
    with schema_context("alpha"):
        portal.force_login(get_user_model().objects.get(username="admin"))
    assert b"Paused by the issuer" not in portal.get("/").content
    assert Client(HTTP_HOST=ISSUER_HOST).get("/status").context["overall"] == "operational"
    brownout.pause(kind="registrations", channel=None, reason="Sign-ups wait until the queue drains.", actor="ops")
    page = portal.get("/").content
    assert b"Paused by the issuer" in page and b"Sign-ups wait until the queue drains." in page
    assert b"every channel" in page
    status = Client(HTTP_HOST=ISSUER_HOST).get("/status")
    assert status.context["overall"] == "degraded" and b"New customers" in status.content
