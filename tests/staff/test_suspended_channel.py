"""A suspended channel sells nothing more (API and portal refuse it), but the money it already took
still ends somewhere: its paid orders are credited and its refunds sent by the sweepers."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone
from django_tenants.utils import schema_context

from billing import quota, tasks
from billing.providers import simulator
from billing.retail import services as retail
from billing.retail.models import Order, Payment
from gateway.middleware import TenantMiddleware
from staff.models import AuditEntry
from tenants.customers.models import Customer
from tenants.services import set_channel_active
from tests.billing.factories import unique

pytestmark = pytest.mark.django_db


@pytest.fixture
def alpha(channels):
    channel = channels["alpha"]
    quota.allocate_stock(channel_id=channel.pk, units=50, reference=unique("dep"))
    return channel


@pytest.fixture
def customer(alpha):
    with schema_context("alpha"):
        yield Customer.objects.create(external_ref=unique("c"), name="Siti")


def suspend(channel) -> None:
    set_channel_active(channel=channel, active=False, actor="test", reason="unpaid invoices")
    TenantMiddleware.forget()  # web processes see it within the host cache's lifetime


def test_suspending_a_channel_is_audited(alpha):
    suspend(alpha)
    alpha.refresh_from_db()
    assert alpha.is_active is False
    entry = AuditEntry.objects.get(action="channel.suspended", target=f"tenants.channel:{alpha.pk}")
    assert (entry.actor, entry.details) == ("test", {"channel": "alpha", "reason": "unpaid invoices"})


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/api/v1/customers", {"external_ref": "c-suspended", "name": "Ayu"}),
        ("get", "/api/v1/customers", None),
        ("get", "/api/v1/balance", None),
    ],
)
def test_the_api_of_a_suspended_channel_refuses_every_keyed_request(client_for, alpha, method, path, body):
    with schema_context("alpha"):
        customers = Customer.objects.count()
    suspend(alpha)
    api = client_for("alpha")
    response = getattr(api, method)(path, data=json.dumps(body) if body else None, content_type="application/json")
    assert response.status_code == 403
    assert response["Content-Type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["code"] == "channel_suspended"
    assert "suspended" in problem["detail"] and problem["request_id"] == response["X-Request-Id"]
    with schema_context("alpha"):
        assert Customer.objects.count() == customers  # nothing created


def test_the_other_channel_still_sells(client_for, alpha, channels):
    suspend(alpha)
    created = client_for("beta").post(
        "/api/v1/customers", data=json.dumps({"external_ref": unique("c"), "name": "Budi"}),
        content_type="application/json",
    )  # fmt: skip
    assert created.status_code == 201


def test_the_portal_of_a_suspended_channel_is_a_clear_page(alpha):
    client = Client(HTTP_HOST="alpha.test")
    with schema_context("alpha"):
        client.force_login(get_user_model().objects.get(username="admin"))
    assert client.get("/").status_code == 200
    suspend(alpha)
    for path in ("/", "/customers/", "/keys/", "/login/"):
        page = client.get(path, HTTP_ACCEPT="text/html")
        assert page.status_code == 403, path
        assert page["Content-Type"].startswith("text/html")
        assert b"The channel is suspended" in page.content and b"Contact the issuer" in page.content
    signing_in = Client(HTTP_HOST="alpha.test").post("/login/", {"username": "admin", "password": "portal-pass-123"})
    assert signing_in.status_code == 403
    assert "_auth_user_id" not in signing_in.wsgi_request.session


def test_a_paid_order_of_a_suspended_channel_is_still_credited_by_the_sweeper(alpha, customer):
    with schema_context("alpha"):
        order = retail.create_order(channel=alpha, customer=customer, quantity=3)
        Order.objects.filter(pk=order.pk).update(status="paid", paid_at=timezone.now())  # a crash left it here
    suspend(alpha)
    done = tasks.sweep_orders()
    assert done["alpha"]["credited"] == 1
    with schema_context("alpha"):
        assert Order.objects.get(pk=order.pk).status == "credited"
    assert quota.wallet_balance(channel_id=alpha.pk, customer_id=customer.pk)["available"] == 3


def test_a_refund_of_a_suspended_channel_is_still_sent(client_for, alpha, customer):
    with schema_context("alpha"):
        order = retail.create_order(channel=alpha, customer=customer, quantity=2)
    suspend(alpha)

    def pay(ref: str):
        body = simulator.event_body(
            order_id=order.pk, amount_rupiah=order.total_rupiah, succeeded=True, payment_ref=ref
        )
        return client_for("alpha", key=None).post(
            "/api/v1/payments/simulator/webhook", data=body, content_type="application/json",
            HTTP_SIMULATOR_SIGNATURE=simulator.sign(body),
        )  # fmt: skip

    # The provider's webhook carries no key: a payment made before the suspension still arrives.
    assert pay(unique("pay")).status_code == 200
    assert pay(unique("pay")).status_code == 200  # a second payment: owed back
    with schema_context("alpha"):
        assert sorted(Payment.objects.filter(order=order).values_list("status", flat=True)) == [
            "refund_pending", "succeeded",
        ]  # fmt: skip
    assert tasks.send_refunds_task("alpha") == 1
    with schema_context("alpha"):
        assert sorted(Payment.objects.filter(order=order).values_list("status", flat=True)) == [
            "refunded", "succeeded",
        ]  # fmt: skip


def test_an_operator_suspends_and_reinstates_a_channel_from_the_command_line(alpha, capsys):
    from django.core.management import call_command

    call_command("channel_status", "--channel", "alpha", "--suspend", "--reason", "audit")
    assert json.loads(capsys.readouterr().out) == {"channel": "alpha", "active": False}
    call_command("channel_status", "--channel", "alpha", "--reinstate")
    assert json.loads(capsys.readouterr().out) == {"channel": "alpha", "active": True}
    actions = list(
        AuditEntry.objects.filter(target=f"tenants.channel:{alpha.pk}").order_by("id").values_list("action", "actor")
    )
    assert actions == [
        ("channel.suspended", "manage.py channel_status"),
        ("channel.reinstated", "manage.py channel_status"),
    ]


def test_a_stamp_accepted_before_the_suspension_ends_and_gives_its_unit_back(alpha):
    """The issuer mints no serial for a suspended channel; an accepted job still ends (failed,
    ``channel_inactive``) and its held unit returns to the customer's wallet: nothing hangs."""
    from stamping import services as stamping
    from stamping.models import StampJob
    from tests.billing.factories import funded_wallet
    from tests.fixtures.pdfs.factory import text_pdf

    customer_id = funded_wallet(channel_id=alpha.pk, units=1)
    with schema_context("alpha"):
        Customer.objects.create(id=customer_id, external_ref=f"c-{customer_id}", name="Wallet Owner")
        request = stamping.StampRequest(data=text_pdf(), page=1, box=(400.0, 50.0, 500.0, 150.0), file_name="a.pdf")
        job = stamping.request_stamp(channel=alpha, customer_id=customer_id, request=request)
    assert quota.wallet_balance(channel_id=alpha.pk, customer_id=customer_id)["held"] == 1
    suspend(alpha)
    alpha.refresh_from_db()
    with schema_context("alpha"):
        done = stamping.run_stamp_job(channel=alpha, job_id=job.pk)
        assert StampJob.objects.get(pk=job.pk).status == "failed"
    assert (done.status, done.unit, done.error_code) == ("failed", "released", "channel_inactive")
    assert quota.wallet_balance(channel_id=alpha.pk, customer_id=customer_id) == {"available": 1, "held": 0, "used": 0}
