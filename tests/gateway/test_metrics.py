"""``/metrics``: refused to anyone but the scraper; after a stamping journey, the named series carry the
channel's label, and the state figures agree with what the back office reads."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django_tenants.utils import schema_context
from prometheus_client.parser import text_string_to_metric_families

from faces.metrics import STATE
from stamping import admission, services
from stamping.models import StampJob
from tests.billing.factories import funded_wallet, unique
from tests.fixtures.pdfs.factory import text_pdf

pytestmark = pytest.mark.django_db

TOKEN = "test-metrics-token"  # noqa: S105 - gateway/settings/test.py
PLACEMENT = {"page": "1", "llx": "40", "lly": "40", "urx": "140", "ury": "140"}


@pytest.fixture(autouse=True)
def _fresh_state():
    STATE.forget()
    yield
    STATE.forget()


def scrape(client_for, host_channel=None, **headers):
    return client_for(host_channel, key=None, **headers).get("/metrics")


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: dict, name: str, **labels) -> float | None:
    return found.get((name, frozenset(labels.items())))


@pytest.mark.parametrize("host_channel", [None, "alpha"])
@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x"])
def test_a_caller_without_the_token_is_refused_with_a_problem(client_for, host_channel, authorization):
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    response = scrape(client_for, host_channel, **headers)
    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "metrics_forbidden" and body["request_id"]
    assert "gateway_" not in response.content.decode()


def test_an_address_of_the_allowed_networks_needs_no_token(client_for, settings):
    settings.METRICS_ALLOWED_NETWORKS = ["10.20.0.0/16"]
    inside = scrape(client_for, REMOTE_ADDR="10.20.3.4")
    outside = scrape(client_for, REMOTE_ADDR="10.21.3.4")
    assert inside.status_code == 200, inside.content
    assert outside.status_code == 403


def test_with_neither_token_nor_networks_nobody_reads_the_metrics(client_for, settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_NETWORKS = []
    assert scrape(client_for, HTTP_AUTHORIZATION="Bearer ").status_code == 403


def test_after_a_stamp_the_named_series_carry_the_channels_label(client_for, channels):
    alpha = channels["alpha"]
    customer_id = funded_wallet(channel_id=alpha.pk, units=2)
    from tenants.customers.models import Customer

    with schema_context("alpha"):
        Customer.objects.create(id=customer_id, external_ref=unique("c"), name="Metered")
    api = client_for("alpha")
    accepted = api.post(
        "/api/v1/stamps", {"customer": customer_id, **PLACEMENT, "document": SimpleUploadedFile("a.pdf", text_pdf())}
    )
    assert accepted.status_code == 202, accepted.content
    second = api.post(
        "/api/v1/stamps", {"customer": customer_id, **PLACEMENT, "document": SimpleUploadedFile("b.pdf", text_pdf())}
    )
    assert second.status_code == 202, second.content
    missing = api.get("/api/v1/stamps/stp_nothing_here")
    assert missing.json()["code"] == "stamp_not_found"
    with schema_context("alpha"):
        done = services.run_stamp_job(channel=alpha, job_id=accepted.json()["id"])
    assert done.status == "stamped"
    with schema_context("alpha"):
        # the backlog counter moves after a commit (the test's transaction never commits): count it
        # as the stale-job sweeper does every few seconds
        admission.resync_backlog()

    response = scrape(client_for, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    found = samples(response.content.decode())

    # events, counted where they happened
    assert value(found, "gateway_http_requests_total", route="stamp-list", channel="alpha", status="202") >= 2
    assert (
        value(
            found,
            "gateway_http_request_duration_seconds_count",
            route="stamp-list",
            channel="alpha",
            status_class="2xx",
        )
        >= 2
    )
    assert value(found, "gateway_refusals_total", code="stamp_not_found", channel="alpha") >= 1
    assert value(found, "gateway_stamps_total", channel="alpha", outcome="stamped") >= 1
    assert value(found, "gateway_stamp_wait_seconds_count", channel="alpha") >= 1
    assert value(found, "gateway_stamp_eta_promised_seconds_count", channel="alpha") >= 2
    # state, read at scrape time through the back office's selectors: one job still queued
    assert value(found, "gateway_stamping_queue_depth", channel="alpha") >= 1
    assert value(found, "gateway_stamping_queue_oldest_seconds", channel="alpha") >= 0
    assert value(found, "gateway_stamping_queue_eta_seconds", channel="alpha") >= 1
    assert value(found, "gateway_stamping_drain_rate", channel="alpha") is not None
    from billing.ledger.selectors import channel_balance

    balance = channel_balance(channel_id=alpha.pk)
    assert value(found, "gateway_ledger_units", channel="alpha", place="held") == balance.held >= 1
    assert value(found, "gateway_ledger_units", channel="alpha", place="used") == balance.used >= 1
    assert value(found, "gateway_stock_low", channel="alpha") in (0.0, 1.0)
    assert value(found, "gateway_outbox_pending", channel="alpha") is not None
    assert value(found, "gateway_outbox_failed", channel="beta") is not None
    assert value(found, "gateway_dependency_up", dependency="postgres") == 1.0
    assert value(found, "gateway_dependency_up", dependency="redis") == 1.0
    # the scrape itself is counted by its route name, never by a raw path
    assert all(dict(labels).get("route") != "/api/v1/stamps/stp_nothing_here" for _, labels in found)


def test_a_failed_stamp_is_counted_by_its_code(client_for, channels):
    alpha = channels["alpha"]
    customer_id = funded_wallet(channel_id=alpha.pk, units=1)
    from tenants.customers.models import Customer

    with schema_context("alpha"):
        Customer.objects.create(id=customer_id, external_ref=unique("c"), name="Unlucky")
        job = services.request_stamp(
            channel=alpha,
            customer_id=customer_id,
            request=services.StampRequest(data=text_pdf(), page=1, box=(40.0, 40.0, 140.0, 140.0), file_name="x.pdf"),
        )
        StampJob.objects.filter(pk=job.pk).update(profile="no-such-profile")  # the issuer will refuse it
        done = services.run_stamp_job(channel=alpha, job_id=job.pk)
    assert (done.status, done.error_code) == ("failed", "unknown_profile")
    found = samples(scrape(client_for, HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode())
    assert value(found, "gateway_stamping_failures_total", channel="alpha", code=done.error_code) >= 1
    assert value(found, "gateway_stamps_total", channel="alpha", outcome="failed") >= 1
