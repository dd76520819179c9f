"""A stamped job's recording is ONE statement: the issuer's insert of the used serial and its stamped
document evaluates the channel's ``stamping_recorded`` (the hold committed, the job marked stamped, a
sealed password dropped, the ``stamp.completed`` deliveries written). On a worker, outside any
transaction, that statement is its own transaction: no BEGIN, no COMMIT, one round trip, and either
all of it is written or, refused, none of it. (``live_db``: the worker's path, with no transaction
of the test's own around it; every row is the test's own.)"""

from __future__ import annotations

import io

import pikepdf
import pytest
from django.db import connection
from django_tenants.utils import schema_context

from billing import quota
from issuer.models import Serial
from outbox.models import WebhookDelivery, WebhookEndpoint
from outbox.webhooks import create_webhook_endpoint
from stamping import lanes, services
from stamping.models import JobDocument, StampJob
from tests import protocol
from tests.billing.factories import funded_wallet, unique
from tests.fixtures.pdfs.factory import text_pdf

BOX = (40.0, 40.0, 140.0, 140.0)


def encrypted_pdf(password: str) -> bytes:
    with pikepdf.open(io.BytesIO(text_pdf())) as pdf:
        out = io.BytesIO()
        pdf.save(out, encryption=pikepdf.Encryption(owner=f"{password}-owner", user=password, R=6))
        return out.getvalue()


@pytest.fixture
def alpha_customer(live_db):
    """Channel alpha, a customer of its own with three units, and an endpoint that hears its stamps;
    the endpoint's deliveries and the endpoint itself are removed afterwards (other tests count alpha's
    deliveries)."""
    from tenants.customers.models import Customer
    from tenants.models import Channel

    alpha = Channel.objects.get(code="alpha")
    customer_id = funded_wallet(channel_id=alpha.pk, units=3)
    with schema_context("alpha"):
        Customer.objects.create(id=customer_id, external_ref=unique("rec"), name="Recording")
        for job in StampJob.objects.filter(status__in=[StampJob.Status.QUEUED, StampJob.Status.PROCESSING]):
            services._fail(job, code="abandoned", detail="left open by an earlier test")  # the claims below are ours
        endpoint = create_webhook_endpoint(url=f"https://{unique('hooks')}.example/in", events=["stamp.completed"])
    try:
        yield alpha, customer_id, endpoint.pk
    finally:
        with schema_context("alpha"):
            WebhookDelivery.objects.filter(endpoint_id=endpoint.pk).delete()
            WebhookEndpoint.objects.filter(pk=endpoint.pk).delete()


def claimed_job(alpha, customer_id: int, *, data: bytes, password: str | None = None) -> lanes.ClaimedJob:
    job = services.request_stamp(
        channel=alpha,
        customer_id=customer_id,
        request=services.StampRequest(data=data, page=1, box=BOX, password=password),
    )
    claimed = lanes.claim_job()
    assert claimed is not None and claimed.job.pk == job.pk
    return claimed


def xmin(table: str, column: str, value) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT xmin::text::bigint FROM {table} WHERE {column} = %s", [value])  # noqa: S608 - ours
        return cursor.fetchone()[0]


def test_the_recording_is_one_round_trip_and_one_transaction(alpha_customer, monkeypatch):
    alpha, customer_id, endpoint_id = alpha_customer
    monkeypatch.setattr(services, "queued", lambda **_: None)  # no drainer elsewhere takes our jobs
    with schema_context("alpha"):
        first = claimed_job(alpha, customer_id, data=text_pdf())
        services.run_stamp_job(channel=alpha, job_id=first.job.pk, claimed=first)  # (prepares its statements)

        claimed = claimed_job(alpha, customer_id, data=encrypted_pdf("rahasia"), password="rahasia")
        assert JobDocument.objects.get(pk=claimed.job.pk).sealed_password is not None
        with protocol.sent(connection) as sent:
            done = services.run_stamp_job(channel=alpha, job_id=claimed.job.pk, claimed=claimed)

        assert sent.round_trips == 1, sent.statements  # one statement, prepared; no BEGIN, no COMMIT
        (recording,) = sent.statements
        assert "issuer_serial" in recording and '"alpha".stamping_recorded' in recording
        stored = StampJob.objects.get(pk=claimed.job.pk)
        assert (stored.status, stored.unit, stored.serial) == ("stamped", "committed", done.serial)
        assert (done.status, done.unit, done.sha256_out) == ("stamped", "committed", stored.sha256_out)
        assert JobDocument.objects.get(pk=claimed.job.pk).sealed_password is None
        delivery = WebhookDelivery.objects.get(endpoint_id=endpoint_id, payload__stamp__id=claimed.job.pk)
        assert (delivery.event_type, delivery.status) == ("stamp.completed", "pending")
        assert delivery.payload["stamp"]["serial"] == done.serial
        assert delivery.payload["stamp"]["status"] == "stamped"
        written_by = {
            xmin('"alpha".stamping_stampjob', "id", claimed.job.pk),
            xmin('"alpha".edge_webhookdelivery', "id", delivery.pk),
        }
    written_by |= {
        xmin("public.issuer_serial", "serial", done.serial),
        xmin("public.ledger_transfer", "id", quota.commit_id(claimed.job.hold_id)),
    }
    assert len(written_by) == 1  # the serial, the unit, the job and its event: one transaction
    assert quota.wallet_balance(channel_id=alpha.pk, customer_id=customer_id) == {
        "available": 1,
        "held": 0,
        "used": 2,
    }


def test_a_claimed_job_is_stamped_on_its_intakes_inspection_and_a_repaired_one_is_inspected_again(
    alpha_customer, monkeypatch
):
    """The intake seals what it found in the document (``issuer.facts``) next to the upload; the
    claim returns it and the worker stamps without parsing the document again. A document the issuer
    rewrites before stamping (a repaired cross-reference table) has none, and is inspected again."""
    from issuer import facts
    from issuer.pdf import prepare
    from tests.issuer.test_repair import damaged

    alpha, customer_id, _endpoint = alpha_customer
    monkeypatch.setattr(services, "queued", lambda **_: None)  # no drainer elsewhere takes our jobs
    inspected: list[bytes] = []
    real = prepare.inspect_document
    monkeypatch.setattr(prepare, "inspect_document", lambda data, **kw: inspected.append(data) or real(data, **kw))
    with schema_context("alpha"):
        encrypted = encrypted_pdf("rahasia")
        claimed = claimed_job(alpha, customer_id, data=encrypted, password="rahasia")
        info = facts.unseal(claimed.facts)
        assert claimed.facts == JobDocument.objects.get(pk=claimed.job.pk).facts
        assert info is not None and info.encrypted and info.sha256 == claimed.job.sha256_in
        inspected.clear()  # (the intake's own inspection)
        done = services.run_stamp_job(channel=alpha, job_id=claimed.job.pk, claimed=claimed)
        assert (done.status, inspected) == ("stamped", [])

        upload = damaged("libreoffice-writer.pdf")
        repaired = claimed_job(alpha, customer_id, data=upload)
        assert repaired.facts is None and JobDocument.objects.get(pk=repaired.job.pk).facts is None
        inspected.clear()
        done = services.run_stamp_job(channel=alpha, job_id=repaired.job.pk, claimed=repaired)
        assert done.status == "stamped" and inspected[0] == upload
        assert Serial.objects.get(serial=done.serial).repaired


def test_a_refused_recording_writes_nothing_of_it(alpha_customer, monkeypatch):
    """The hold timed out and was swept while the job was signed: the ledger refuses inside the
    statement, so neither the serial nor the job's mark nor its event is written; the job fails
    with its unit back."""
    alpha, customer_id, endpoint_id = alpha_customer
    monkeypatch.setattr(services, "queued", lambda **_: None)
    with schema_context("alpha"):
        claimed = claimed_job(alpha, customer_id, data=text_pdf())
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE public.ledger_transfer SET timeout_at = now() - interval '1 second' WHERE id = %s",
                [claimed.job.hold_id],
            )
        quota.sweep_expired_pending()
        done = services.run_stamp_job(channel=alpha, job_id=claimed.job.pk, claimed=claimed)
        assert (done.status, done.unit, done.error_code) == ("failed", "released", "hold_lost")
        assert not WebhookDelivery.objects.filter(endpoint_id=endpoint_id, payload__stamp__id=claimed.job.pk).exists()
    assert not Serial.objects.filter(job_ref=f"alpha:{claimed.job.pk}", status="used").exists()
    assert quota.wallet_balance(channel_id=alpha.pk, customer_id=customer_id) == {
        "available": 3,
        "held": 0,
        "used": 0,
    }
