"""A channel's data is invisible from another channel's host, whatever key is presented."""

from __future__ import annotations

import pytest
from django_tenants.utils import schema_context

from tenants.customers.models import Customer

pytestmark = pytest.mark.django_db


@pytest.fixture
def alpha_customer(channels):
    with schema_context("alpha"):
        return Customer.objects.create(external_ref="a-001", name="Ani Alpha")


def test_a_channel_sees_its_own_customers(client_for, alpha_customer):
    response = client_for("alpha").get("/api/v1/customers")
    assert response.status_code == 200
    assert [c["external_ref"] for c in response.json()["results"]] == ["a-001"]


def test_another_channel_host_does_not_see_them(client_for, alpha_customer):
    response = client_for("beta").get("/api/v1/customers")
    assert response.status_code == 200
    assert response.json()["results"] == []


@pytest.mark.parametrize(
    ("host", "key", "code"),
    [
        ("beta", "alpha", "invalid_api_key"),  # alpha's key on beta's host
        ("alpha", "beta", "invalid_api_key"),  # beta's key on alpha's host
        ("alpha", None, "authentication_required"),
        ("alpha", "emk_000000000000_forged", "invalid_api_key"),
        ("alpha", "not-even-a-key", "invalid_api_key"),
    ],
)
def test_keys_work_only_on_their_own_channel_host(client_for, alpha_customer, host, key, code):
    response = client_for(host, key=key).get("/api/v1/customers")
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == code
    assert "a-001" not in response.content.decode()


def test_a_channel_schema_holds_only_its_rows(channels, alpha_customer):
    with schema_context("beta"):
        assert Customer.objects.count() == 0
    with schema_context("alpha"):
        assert Customer.objects.count() == 1


def test_the_issuer_host_has_no_storefront(client_for):
    response = client_for(None, key="alpha").get("/api/v1/customers")
    assert response.status_code == 404
