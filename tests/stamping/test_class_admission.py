"""Admission ranks the classes (issue #19): as a channel's stamping lane fills, new customers are refused
first, then new purchases, and only then new stamp requests (``overloaded``); a refusal leaves no row."""

from __future__ import annotations

import json

import pytest
from django_tenants.utils import schema_context

from billing.retail.models import Order
from stamping import admission
from stamping.models import StampJob
from tenants.customers.models import Customer
from tests.billing.factories import funded_wallet, unique
from tests.fixtures.pdfs.factory import text_pdf
from tests.stamping.test_admission_model import _surge_on_alpha, clean_redis, customers  # noqa: F401 (fixtures)
from tests.stamping.test_stamp_upload import PLACEMENT, raw_body, send

pytestmark = pytest.mark.django_db


@pytest.fixture
def stock(channels):
    from billing import quota

    quota.allocate_stock(channel_id=channels["alpha"].pk, units=50, reference=unique("dep"))


@pytest.fixture
def stamper(channels) -> int:
    """A customer of alpha with quota for a few stamps."""
    customer_id = funded_wallet(channel_id=channels["alpha"].pk, units=3)
    with schema_context("alpha"):
        Customer.objects.create(id=customer_id, external_ref=unique("c"), name="Stamper")
    return customer_id


@pytest.fixture
def slots():
    keys = [admission._key("retry-slot", f"alpha:{kind}") for kind in ("purchases", "registrations")]
    admission.client().delete(*keys)
    yield
    admission.client().delete(*keys)


def post_customer(client_for):
    body = json.dumps({"external_ref": unique("c"), "name": "Ayu"})
    return client_for("alpha").post("/api/v1/customers", data=body, content_type="application/json")


def post_order(client_for, customer_id: int):
    body = json.dumps({"customer": customer_id, "quantity": 1})
    return client_for("alpha").post("/api/v1/orders", data=body, content_type="application/json")


def post_stamp(client_for, customer_id: int):
    body, ctype = raw_body({"customer": customer_id, **PLACEMENT}, {"document": ("a.pdf", text_pdf())})
    return send(client_for("alpha"), body, ctype)


def rows() -> tuple[int, int, int]:
    with schema_context("alpha"):
        return Customer.objects.count(), Order.objects.count(), StampJob.objects.count()


def refused(response, code: str) -> dict:
    assert response.status_code == 503, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    assert int(response["Retry-After"]) >= 1
    problem = response.json()
    assert problem["code"] == code, problem
    return problem


@pytest.mark.usefixtures("clean_redis", "slots", "stock")
def test_as_the_lane_fills_the_lowest_classes_are_refused_first(client_for, customers, stamper, settings):  # noqa: F811
    settings.STAMPING_MAX_WAIT_SECONDS = 60
    settings.STAMPING_CLASS_SHARES = {"purchases": 0.75, "registrations": 0.5}
    # Two drainers on two workers at 1 s a stamp: a new job behind n others is done in about 1 + n/2 s.

    _surge_on_alpha(backlog=70, cost=1.0)  # ~36 s: past half the promise, under three quarters
    before = rows()
    problem = refused(post_customer(client_for), "registrations_overloaded")
    assert problem["class"] == "registrations" and problem["queue_depth"] == 70
    assert rows() == before  # nothing registered
    assert post_order(client_for, customers["alpha"]).status_code == 201
    assert post_stamp(client_for, stamper).status_code == 202

    _surge_on_alpha(backlog=100, cost=1.0)  # ~51 s: past three quarters, within the promise
    before = rows()
    refused(post_customer(client_for), "registrations_overloaded")
    assert refused(post_order(client_for, customers["alpha"]), "purchases_overloaded")["class"] == "purchases"
    assert rows() == before  # no customer, no order
    assert post_stamp(client_for, stamper).status_code == 202  # stamps still come first

    _surge_on_alpha(backlog=200, cost=1.0)  # ~101 s: past the promise, every new class is refused
    before = rows()
    refused(post_customer(client_for), "registrations_overloaded")
    refused(post_order(client_for, customers["alpha"]), "purchases_overloaded")
    refused(post_stamp(client_for, stamper), "overloaded")
    assert rows() == before

    _surge_on_alpha(backlog=0, cost=1.0)  # drained: all served again
    assert post_customer(client_for).status_code == 201


@pytest.mark.usefixtures("clean_redis", "slots")
def test_no_backlog_state_refuses_a_stamp_request_while_a_lower_class_is_served(channels, settings):
    """Over a range of backlogs and costs, whenever the stamp check refuses one job, the purchase and the
    registration checks refuse too (the shares only lower the limits)."""
    from stamping.errors import Overloaded, PurchasesOverloaded, RegistrationsOverloaded

    settings.STAMPING_MAX_WAIT_SECONDS = 30
    settings.STAMPING_CHANNEL_BACKLOG_LIMIT = 150
    channel = channels["alpha"]

    def outcome(check, error) -> bool:
        try:
            with schema_context("alpha"):
                check()
        except error:
            return True
        return False

    for cost in (0.05, 0.3, 1.0):
        for backlog in (0, 5, 12, 19, 25, 40, 60, 80, 100, 120, 149, 160):
            _surge_on_alpha(backlog=backlog, cost=cost)
            stamp = outcome(lambda: admission.admit(channel=channel), Overloaded)
            purchase = outcome(lambda: admission.admit_lower(channel=channel, kind="purchases"), PurchasesOverloaded)
            customer = outcome(
                lambda: admission.admit_lower(channel=channel, kind="registrations"), RegistrationsOverloaded
            )
            assert stamp <= purchase <= customer, (cost, backlog, stamp, purchase, customer)
