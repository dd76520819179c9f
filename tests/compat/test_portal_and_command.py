"""Compat users are made in the portal (or by `manage.py compat_user`) and log in to the facade."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.test import Client
from django_tenants.utils import schema_context

from faces.compat.models import CompatUser
from gateway.models import ApiKey
from tests.billing.factories import new_customer_id

pytestmark = pytest.mark.django_db


@pytest.fixture
def customer_id(channels):
    from tenants.customers.models import Customer

    with schema_context("alpha"):
        return Customer.objects.create(id=new_customer_id(), external_ref="dist-1", name="Distributor").pk


def portal() -> Client:
    client = Client(HTTP_HOST="alpha.test")
    assert client.post("/login/", {"username": "admin", "password": "portal-pass-123"}).status_code == 302
    return client


def test_the_portal_creates_a_compat_user_who_can_log_in(channels, customer_id):
    key = ApiKey.objects.filter(channel=channels["alpha"]).order_by("pk").first()
    client = portal()
    page = client.get("/compat-users/")
    assert page.status_code == 200 and b"Compat users" in page.content
    made = client.post(
        "/compat-users/",
        {"username": "kasir-portal", "password": "a-long-pass-123", "customer": customer_id, "api_key": key.pk},
    )
    assert made.status_code == 302
    with schema_context("alpha"):
        user = CompatUser.objects.get(username="kasir-portal")
    assert user.password.startswith("md5$") and "a-long-pass-123" not in user.password  # hashed (test hasher)
    login = Client(HTTP_HOST="alpha.test").post(
        "/compat/api/users/login", {"user": "kasir-portal", "password": "a-long-pass-123"}
    )
    assert login.json()["statusCode"] == "00"
    assert b"kasir-portal" in client.get("/compat-users/").content


def test_the_portal_refuses_another_channels_key_and_an_unknown_customer(channels, customer_id):
    beta_key = ApiKey.objects.filter(channel=channels["beta"]).order_by("pk").first()
    alpha_key = ApiKey.objects.filter(channel=channels["alpha"]).order_by("pk").first()
    client = portal()
    other = client.post("/compat-users/", {"username": "x1", "password": "a-long-pass-123", "customer": customer_id,
                                           "api_key": beta_key.pk})  # fmt: skip
    unknown = client.post("/compat-users/", {"username": "x2", "password": "a-long-pass-123", "customer": 1,
                                             "api_key": alpha_key.pk})  # fmt: skip
    assert (other.status_code, unknown.status_code) == (400, 400)
    with schema_context("alpha"):
        assert not CompatUser.objects.filter(username__in=["x1", "x2"]).exists()


def test_the_command_creates_a_user_and_a_new_password_ends_its_tokens(channels, customer_id, monkeypatch, capsys):
    key = ApiKey.objects.filter(channel=channels["alpha"]).order_by("pk").first()
    monkeypatch.setenv("COMPAT_USER_PASSWORD", "first-pass-123")
    call_command("compat_user", "--channel", "alpha", "--user", "kasir-cli", "--customer", str(customer_id),
                 "--key", key.prefix)  # fmt: skip
    assert json.loads(capsys.readouterr().out)["user"] == "kasir-cli"
    anonymous = Client(HTTP_HOST="alpha.test")
    first = anonymous.post("/compat/api/users/login", {"user": "kasir-cli", "password": "first-pass-123"})
    token = first.json()["token"]
    bearer = Client(HTTP_HOST="alpha.test", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert bearer.get("/compat/jenisdoc").status_code == 200

    monkeypatch.setenv("COMPAT_USER_PASSWORD", "second-pass-456")
    call_command("compat_user", "--channel", "alpha", "--user", "kasir-cli", "--set-password")
    old = bearer.get("/compat/jenisdoc")
    assert (old.status_code, old.json()["statusCode"]) == (401, "01")
    again = anonymous.post("/compat/api/users/login", {"user": "kasir-cli", "password": "second-pass-456"})
    assert again.json()["statusCode"] == "00"


def test_uploads_older_than_a_reservation_are_purged_and_newer_ones_kept(channels, customer_id, settings):
    from datetime import timedelta

    from django.utils import timezone

    from faces.compat.models import CompatUpload
    from faces.compat.tasks import purge_uploads

    key = ApiKey.objects.filter(channel=channels["alpha"]).order_by("pk").first()
    with schema_context("alpha"):
        user = CompatUser.objects.create(username="u", password="!", customer_id=customer_id, api_key_id=key.pk)
        old = CompatUpload.objects.create(user=user, name="old.pdf", data=b"%PDF", size=4)
        new = CompatUpload.objects.create(user=user, name="new.pdf", data=b"%PDF", size=4)
        CompatUpload.objects.filter(pk=old.pk).update(
            created_at=timezone.now() - timedelta(seconds=settings.COMPAT_RESERVATION_SECONDS + 60)
        )
    assert purge_uploads() >= 1
    with schema_context("alpha"):
        assert list(CompatUpload.objects.filter(pk__in=[old.pk, new.pk]).values_list("pk", flat=True)) == [new.pk]
