"""The retention sweeper deletes what is due and nothing else: stamped PDFs past
STAMPED_DOCUMENT_RETENTION_DAYS, uploads of jobs ended more than UPLOAD_RETENTION_DAYS ago (a stamped
job's with its stamped document); never the upload of a job still queued, never a serial or a job."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_tenants.utils import schema_context

from issuer.models import Serial, StampedDocument
from stamping import retention, services
from stamping.models import JobDocument, StampJob
from tests.billing.factories import funded_wallet, unique
from tests.fixtures.pdfs.factory import text_pdf

pytestmark = pytest.mark.django_db

BOX = (40.0, 40.0, 140.0, 140.0)


@pytest.fixture(autouse=True)
def _retention(settings):
    settings.STAMPED_DOCUMENT_RETENTION_DAYS = 90
    settings.UPLOAD_RETENTION_DAYS = 7


@pytest.fixture
def make_job(channels):
    from tenants.customers.models import Customer

    alpha = channels["alpha"]
    customer_id = funded_wallet(channel_id=alpha.pk, units=6)
    with schema_context("alpha"):
        Customer.objects.create(id=customer_id, external_ref=unique("c"), name="Keeper")

    def make(*, stamped: bool, ended_days_ago: float | None = None, stamped_doc_days_ago: float | None = None,
             created_days_ago: float | None = None) -> StampJob:  # fmt: skip
        now = timezone.now()
        with schema_context("alpha"):
            request = services.StampRequest(data=text_pdf(), page=1, box=BOX, file_name="a.pdf")
            job = services.request_stamp(channel=alpha, customer_id=customer_id, request=request)
            if stamped:
                job = services.run_stamp_job(channel=alpha, job_id=job.pk)
                assert job.status == "stamped"
            elif ended_days_ago is not None:
                StampJob.objects.filter(pk=job.pk).update(profile="no-such-profile")
                job = services.run_stamp_job(channel=alpha, job_id=job.pk)
                assert job.status == "failed"
            changes = {}
            if ended_days_ago is not None:
                changes["finished_at"] = now - timedelta(days=ended_days_ago)
            if created_days_ago is not None:
                changes["created_at"] = now - timedelta(days=created_days_ago)
            StampJob.objects.filter(pk=job.pk).update(**changes)
            job.refresh_from_db()
        if stamped_doc_days_ago is not None:
            StampedDocument.objects.filter(serial__serial=job.serial).update(
                created_at=now - timedelta(days=stamped_doc_days_ago)
            )
        return job

    return make


def upload_kept(job: StampJob) -> bool:
    with schema_context("alpha"):
        return JobDocument.objects.filter(pk=job.pk).exists()


def stamped_kept(job: StampJob) -> bool:
    return StampedDocument.objects.filter(serial__serial=job.serial).exists()


def test_the_sweeper_removes_only_what_is_due(make_job, client_for):
    old = make_job(stamped=True, ended_days_ago=10, stamped_doc_days_ago=100)
    just_kept = make_job(stamped=True, ended_days_ago=6.9, stamped_doc_days_ago=89.9)
    recent = make_job(stamped=True)
    failed_long_ago = make_job(stamped=False, ended_days_ago=8)
    still_queued = make_job(stamped=False, created_days_ago=30)  # never ended: its worker still needs it

    dry = retention.sweep(dry_run=True)
    assert dry["stamped_documents"] >= 1 and dry["uploads"] >= 2
    assert upload_kept(old) and stamped_kept(old)  # a dry run deletes nothing

    result = retention.sweep()
    assert result["stamped_documents"] >= 1 and result["uploads"] >= 2
    assert not upload_kept(old) and not stamped_kept(old)
    assert not upload_kept(failed_long_ago)
    assert upload_kept(just_kept) and stamped_kept(just_kept)
    assert upload_kept(recent) and stamped_kept(recent)
    assert upload_kept(still_queued)
    # the stamp itself stays: its serial used, its job stamped
    assert Serial.objects.get(serial=old.serial).status == "used"
    with schema_context("alpha"):
        assert StampJob.objects.get(pk=old.pk).status == "stamped"
    # and nothing is left due: a second run deletes nothing
    assert retention.sweep() == {"stamped_documents": 0, "uploads": 0}

    api = client_for("alpha")
    gone = api.get(f"/api/v1/stamps/{old.pk}/document")
    assert gone.status_code == 410
    assert gone["Content-Type"] == "application/problem+json" and gone.json()["code"] == "document_purged"
    assert api.get(f"/api/v1/stamps/{recent.pk}/document").status_code == 200
    verified = client_for(None).get(f"/api/v1/verify/{old.serial}")
    assert verified.status_code == 200, verified.content


def test_a_stamped_upload_is_kept_as_long_as_the_stamped_document_built_on_it(make_job, client_for):
    # Ended 10 days ago (past the upload's 7), its stamped document 10 days old (within its 90): the
    # registry keeps only what the stamp appended, so the upload stays for the download.
    kept = make_job(stamped=True, ended_days_ago=10, stamped_doc_days_ago=10)
    stored = StampedDocument.objects.get(serial__serial=kept.serial)
    with schema_context("alpha"):
        upload = bytes(JobDocument.objects.get(pk=kept.pk).original)
    assert stored.base_size == len(upload) and len(stored.pdf) < stored.size

    assert retention.sweep(dry_run=True)["uploads"] == retention.sweep()["uploads"]
    assert upload_kept(kept) and stamped_kept(kept)
    response = client_for("alpha").get(f"/api/v1/stamps/{kept.pk}/document")
    assert response.status_code == 200
    body = b"".join(response) if response.streaming else response.content
    assert body.startswith(upload) and len(body) == stored.size
    assert hashlib.sha256(body).hexdigest() == kept.sha256_out == response["ETag"].strip('"')

    # Its stamped document past retention: both go in the same sweep.
    StampedDocument.objects.filter(pk=stored.pk).update(created_at=timezone.now() - timedelta(days=100))
    assert retention.sweep(dry_run=True)["uploads"] >= 1
    retention.sweep()
    assert not upload_kept(kept) and not stamped_kept(kept)


def test_a_stamped_document_whose_upload_is_gone_answers_purged_not_a_broken_file(make_job, client_for):
    job = make_job(stamped=True)
    with schema_context("alpha"):
        JobDocument.objects.filter(pk=job.pk).delete()  # (by hand: the sweeper never does this)
    gone = client_for("alpha").get(f"/api/v1/stamps/{job.pk}/document")
    assert gone.status_code == 410 and gone.json()["code"] == "document_purged"


def test_a_retention_of_zero_keeps_everything(make_job, settings):
    settings.STAMPED_DOCUMENT_RETENTION_DAYS = 0
    settings.UPLOAD_RETENTION_DAYS = 0
    old = make_job(stamped=True, ended_days_ago=400, stamped_doc_days_ago=400)
    assert retention.sweep() == {"stamped_documents": 0, "uploads": 0}
    assert upload_kept(old) and stamped_kept(old)


def test_the_command_counts_then_deletes(make_job):
    old = make_job(stamped=True, ended_days_ago=10, stamped_doc_days_ago=100)
    out = StringIO()
    call_command("purge_documents", "--dry-run", stdout=out)
    assert "due" in out.getvalue() and stamped_kept(old)
    call_command("purge_documents", stdout=out)
    assert "deleted" in out.getvalue() and not stamped_kept(old) and not upload_kept(old)
