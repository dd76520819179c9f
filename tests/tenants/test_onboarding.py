"""Channels onboarded and run from the back office: created and provisioned in the background, the
owner invited by a one-time link, price and limits changed, suspended and reinstated with a reason;
every change audit-logged."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django_tenants.utils import schema_context

from gateway.models import ApiKey
from staff.models import AuditEntry
from tenants.members.models import Member, Role
from tenants.models import Channel, Domain, Onboarding
from tenants.services import run_onboarding
from tests.staff_helpers import make_staff, office_client

pytestmark = pytest.mark.django_db

FORM = {
    "code": "gamma", "name": "Gamma Post", "hosts": "gamma.test, pos-gamma.test", "owner_email": "Owner@Gamma.ID",
    "service_fee_rupiah": 1500, "rate_limit_per_key": 20, "rate_limit_per_channel": 80, "rate_limit_burst": 40,
    "stamping_concurrency": 2, "low_stock_threshold": 250,
}  # fmt: skip


@pytest.fixture
def office():
    return office_client(make_staff("onboarder"))


def test_staff_create_a_channel_that_is_provisioned_in_the_background(office, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as queued:  # the task is queued after the commit (not run here)
        response = office.post("/backoffice/channels/new", FORM)
    assert response.status_code == 302
    onboarding = Onboarding.objects.get(code="gamma")
    assert response["Location"] == f"/backoffice/channels/onboarding/{onboarding.pk}/"
    assert len(queued) == 1
    assert onboarding.state == Onboarding.State.QUEUED and not Channel.objects.filter(code="gamma").exists()
    assert onboarding.portal_url == "http://gamma.test"
    page = office.get(response["Location"])
    assert page.status_code == 200 and b'data-live-src="/backoffice/channels/onboarding/' in page.content
    assert office.get(f"/backoffice/channels/onboarding/{onboarding.pk}.json").json()["state"] == "queued"
    assert AuditEntry.objects.filter(action="channel.requested", actor="onboarder", details__channel="gamma").exists()

    with django_capture_on_commit_callbacks(execute=True):
        assert run_onboarding(onboarding.pk) == Onboarding.State.READY
    onboarding.refresh_from_db()
    channel = Channel.objects.get(code="gamma")
    assert onboarding.state == Onboarding.State.READY and onboarding.channel == channel
    assert (channel.service_fee_rupiah, channel.stamping_concurrency, channel.low_stock_threshold) == (1500, 2, 250)
    assert (channel.rate_limit_per_key, channel.rate_limit_per_channel, channel.rate_limit_burst) == (20, 80, 40)
    assert set(Domain.objects.filter(tenant=channel).values_list("domain", "is_primary")) == {
        ("gamma.test", True), ("pos-gamma.test", False)
    }
    assert office.get(f"/backoffice/channels/onboarding/{onboarding.pk}.json").json()["state"] == "ready"
    with schema_context("gamma"):
        owner = Member.objects.get(email="owner@gamma.id")
        assert owner.role == Role.OWNER and owner.joined_at is None
        assert not get_user_model().objects.exclude(pk=owner.user_id).exists()  # no shared admin login
    assert not ApiKey.objects.filter(channel=channel).exists()  # no key whose secret nobody holds
    assert [m.to for m in mail.outbox] == [["owner@gamma.id"]]
    path = re.search(r"http://gamma\.test(/join/[A-Za-z0-9_-]+/)", mail.outbox[0].body).group(1)
    assert AuditEntry.objects.filter(action="channel.created", actor="onboarder", details__channel="gamma").exists()

    # Run again (a redelivered task): nothing is done twice.
    with django_capture_on_commit_callbacks(execute=True):
        assert run_onboarding(onboarding.pk) == Onboarding.State.READY
    assert len(mail.outbox) == 1

    # The owner accepts on the channel's host and signs in there.
    visitor = Client(HTTP_HOST="gamma.test")
    assert visitor.post(path, {"password": "owner-pass-123", "password2": "owner-pass-123"}).status_code == 302
    assert visitor.post("/login/", {"username": "owner@gamma.id", "password": "owner-pass-123"}).status_code == 302
    assert visitor.get("/team/").status_code == 200


def test_a_taken_code_or_host_is_refused_before_anything_is_queued(office, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as queued:
        taken_code = office.post("/backoffice/channels/new", FORM | {"code": "alpha"})
        taken_host = office.post("/backoffice/channels/new", FORM | {"hosts": "beta.test"})
    assert taken_code.status_code == 409 and taken_host.status_code == 409
    assert queued == [] and not Onboarding.objects.exists()


def test_a_failed_provisioning_is_shown_with_its_reason(office, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks():
        office.post("/backoffice/channels/new", FORM | {"code": "delta", "hosts": "delta.test"})
    onboarding = Onboarding.objects.get(code="delta")
    Domain.objects.create(domain="delta.test", tenant=Channel.objects.get(code="alpha"))  # taken meanwhile
    assert run_onboarding(onboarding.pk) == Onboarding.State.FAILED
    onboarding.refresh_from_db()
    assert onboarding.state == Onboarding.State.FAILED and "delta.test" in onboarding.error
    assert not Channel.objects.filter(code="delta").exists()
    page = office.get(f"/backoffice/channels/onboarding/{onboarding.pk}/")
    assert b"already in use" in page.content


def test_staff_change_price_limits_and_share_and_suspend_with_a_reason(office, channels):
    alpha = channels["alpha"]
    values = {field: getattr(alpha, field) for field in (
        "service_fee_rupiah", "rate_limit_per_key", "rate_limit_per_channel", "rate_limit_burst",
        "stamping_concurrency", "low_stock_threshold")}  # fmt: skip
    changed = values | {"service_fee_rupiah": 2000, "stamping_concurrency": 6}
    response = office.post("/backoffice/channels/alpha/", changed)
    assert response.status_code == 302
    alpha.refresh_from_db()
    assert (alpha.service_fee_rupiah, alpha.stamping_concurrency) == (2000, 6)
    entry = AuditEntry.objects.get(action="channel.limits_changed", details__channel="alpha")
    assert entry.details["after"] == {"service_fee_rupiah": 2000, "stamping_concurrency": 6}
    assert office.post("/backoffice/channels/alpha/", values | {"stamping_concurrency": 0}).status_code == 400

    assert office.post("/backoffice/channels/alpha/status", {"active": "0", "reason": ""}).status_code == 302
    alpha.refresh_from_db()
    assert alpha.is_active  # no reason, no suspension
    office.post("/backoffice/channels/alpha/status", {"active": "0", "reason": "Unpaid deposit"})
    alpha.refresh_from_db()
    assert not alpha.is_active
    assert AuditEntry.objects.get(action="channel.suspended").details["reason"] == "Unpaid deposit"
    office.post("/backoffice/channels/alpha/status", {"active": "1", "reason": "Paid"})
    alpha.refresh_from_db()
    assert alpha.is_active and AuditEntry.objects.filter(action="channel.reinstated").exists()


def test_the_channel_pages_are_for_staff_with_a_second_factor_only():
    for path in ("/backoffice/channels/", "/backoffice/channels/new", "/backoffice/channels/alpha/"):
        response = Client(HTTP_HOST="issuer.test").get(path)
        assert response.status_code == 302 and "/login/" in response["Location"]
    response = Client(HTTP_HOST="issuer.test").post("/backoffice/channels/alpha/status", {"active": "0", "reason": "x"})
    assert response.status_code == 302
    assert Channel.objects.get(code="alpha").is_active


def test_one_onboarding_per_code_at_a_time_and_never_someone_elses_channel(office, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks():
        first = office.post("/backoffice/channels/new", FORM | {"code": "epsilon", "hosts": "epsilon.test"})
        second = office.post("/backoffice/channels/new", FORM | {"code": "epsilon", "hosts": "eps2.test"})
    assert first.status_code == 302 and second.status_code == 409
    assert Onboarding.objects.filter(code="epsilon").count() == 1
    # Someone made "epsilon" by another way meanwhile (e.g. the command): the onboarding does not take it over.
    onboarding = Onboarding.objects.get(code="epsilon")
    Onboarding.objects.filter(pk=onboarding.pk).update(created_at=onboarding.created_at.replace(year=2099))
    from tenants.services import provision_channel

    provision_channel(code="epsilon", name="Someone else", domain="elsewhere.test", admin_username=None)
    assert run_onboarding(onboarding.pk) == Onboarding.State.FAILED
    with schema_context("epsilon"):
        assert not Member.objects.exists()  # nobody invited into another's channel
    assert not Domain.objects.filter(domain="epsilon.test").exists()
