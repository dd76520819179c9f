"""A stamp whose worker is killed mid-way (SIGKILL with the stamp signed, just before the one statement
that records its serial, unit and job) ends stamped exactly once after another worker picks the
redelivered task up: never both, never neither."""

from __future__ import annotations

import time

import pytest
from django_tenants.utils import schema_context

from billing import quota, reconciliation
from issuer.models import Serial
from stamping import services
from stamping.models import StampJob
from stamping.tasks import drain_lane_task
from tests.billing.factories import funded_wallet, unique
from tests.fixtures.pdfs.factory import text_pdf
from tests.live import start_worker

pytestmark = pytest.mark.slow

QUEUE = "stamping-crash-test"
FAST_REDELIVERY = {"CELERY_VISIBILITY_TIMEOUT": "3"}


def wait_until(predicate, *, timeout=90.0, what=""):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.fixture(autouse=True)
def alpha_has_no_leftover_jobs(live_db):
    """These tests drain channel alpha and count on finding only their own job. A job an earlier live
    test left open (a slow machine, a failure) would be claimed here instead, and one failure would
    cascade into these tests: end such jobs first, their units released, as the stale-job sweeper would."""
    with schema_context("alpha"):
        for job in StampJob.objects.filter(status__in=[StampJob.Status.QUEUED, StampJob.Status.PROCESSING]):
            services._fail(job, code="abandoned", detail="left open by an earlier test")


def queued_job_in_test_queue(monkeypatch, *, name: str):
    """A committed alpha job with one unit held, and its drainer published to this file's own queue
    (not woken through the lanes). Returns (alpha, job, job_ref)."""
    from tenants.customers.models import Customer
    from tenants.models import Channel

    alpha = Channel.objects.get(code="alpha")
    customer_id = funded_wallet(channel_id=alpha.pk, units=1)
    monkeypatch.setattr(services, "queued", lambda **_: None)  # we publish to this test's own queue below
    with schema_context("alpha"):
        customer = Customer.objects.create(id=customer_id, external_ref=unique("c"), name=name)
        job = services.request_stamp(
            channel=alpha,
            customer_id=customer.pk,
            request=services.StampRequest(data=text_pdf(), page=1, box=(400.0, 50.0, 500.0, 150.0)),
        )
    drain_lane_task.apply_async(args=["alpha"], queue=QUEUE)
    return alpha, job, f"alpha:{job.pk}"


def test_worker_killed_before_the_recording_then_redelivered_stamps_once(live_db, tmp_path, monkeypatch):
    alpha, job, job_ref = queued_job_in_test_queue(monkeypatch, name="Crash")

    marker = tmp_path / "reached"
    doomed = start_worker(
        tmp_path,
        name="doomed",
        queues=QUEUE,
        concurrency=1,
        env=FAST_REDELIVERY
        | {"GATEWAY_FAULT_POINT": "stamping.before_recording", "GATEWAY_FAULT_MARKER": str(marker)},
    )
    try:
        wait_until(marker.exists, what="the worker to reach the recording")
    finally:
        doomed.kill()  # SIGKILL to the worker's whole process group
        doomed.stop()

    # Nothing was recorded: the unit is still held, no serial is used, the job is open.
    with schema_context("alpha"):
        assert StampJob.objects.get(pk=job.pk).status == "processing"
    wallet = quota.wallet_balance(channel_id=alpha.pk, customer_id=job.customer_id)
    assert wallet == {"available": 0, "held": 1, "used": 0}
    assert not Serial.objects.filter(job_ref=job_ref, status="used").exists()

    # After the lease, the sweeper takes the job back and wakes the lane; the dead worker's task also
    # comes back from the broker. Either way another worker finishes the job - once.
    from datetime import timedelta

    with schema_context("alpha"):
        assert services.resume_stale_jobs(older_than=timedelta(0)) == 1
    rescuer = start_worker(tmp_path, name="rescuer", queues=f"{QUEUE},stamping", concurrency=1, env=FAST_REDELIVERY)
    try:

        def finished():
            with schema_context("alpha"):
                return StampJob.objects.get(pk=job.pk).status in ("stamped", "failed")

        wait_until(finished, what="the redelivered task to finish the job")
    finally:
        rescuer.stop()

    with schema_context("alpha"):
        done = StampJob.objects.get(pk=job.pk)
    assert (done.status, done.unit) == ("stamped", "committed")
    assert Serial.objects.filter(job_ref=job_ref, status="used").count() == 1
    assert Serial.objects.get(job_ref=job_ref, status="used").serial == done.serial
    wallet = quota.wallet_balance(channel_id=alpha.pk, customer_id=job.customer_id)
    assert wallet == {"available": 0, "held": 0, "used": 1}
    for check in (
        reconciliation.check_books_balance,
        reconciliation.check_account_totals_match_transfers,
        reconciliation.check_units_conserved,
        lambda: reconciliation.check_one_serial_per_committed_unit(alpha.pk),  # other channels are test doubles
    ):
        result = check()
        assert result.ok, (result.name, result.violations)


def test_a_killed_workers_job_is_taken_back_at_once_not_after_the_lease(live_db, tmp_path, monkeypatch):
    """The claim holds an owner lock on the worker's own connection: while the worker lives the
    sweeper leaves its job alone; once it is killed (its connection gone) the very next sweep takes
    the job back, with the 2-minute lease nowhere near run out."""
    alpha, job, job_ref = queued_job_in_test_queue(monkeypatch, name="Owner Lost")

    marker = tmp_path / "reached"
    doomed = start_worker(
        tmp_path,
        name="doomed-owner",
        queues=QUEUE,
        concurrency=1,
        env={"GATEWAY_FAULT_POINT": "stamping.before_recording", "GATEWAY_FAULT_MARKER": str(marker)},
    )
    try:
        wait_until(marker.exists, what="the worker to reach the recording")
        # Alive (stopped just before its recording): its job is its own.
        with schema_context("alpha"):
            assert services.resume_stale_jobs() == 0
            assert StampJob.objects.get(pk=job.pk).status == "processing"
    finally:
        doomed.kill()  # SIGKILL to the worker's whole process group
        doomed.stop()

    # The server notices the closed connection and drops its locks; the sweep with the default lease
    # (2 minutes, far from expired) takes the job back as soon as that has happened.
    taken_back = []

    def swept():
        with schema_context("alpha"):
            taken_back.append(services.resume_stale_jobs())
        return sum(taken_back) > 0

    wait_until(swept, timeout=30, what="the sweeper to take the dead worker's job back")
    assert sum(taken_back) == 1
    with schema_context("alpha"):
        queued = StampJob.objects.get(pk=job.pk)
    assert (queued.status, queued.unit) == ("queued", "held")
    assert not Serial.objects.filter(job_ref=job_ref, status="used").exists()

    rescuer = start_worker(tmp_path, name="rescuer-owner", queues=f"{QUEUE},stamping", concurrency=1)
    try:

        def finished():
            with schema_context("alpha"):
                return StampJob.objects.get(pk=job.pk).status in ("stamped", "failed")

        wait_until(finished, what="another worker to finish the job")
    finally:
        rescuer.stop()

    with schema_context("alpha"):
        done = StampJob.objects.get(pk=job.pk)
    assert (done.status, done.unit, done.attempts) == ("stamped", "committed", 2)
    assert Serial.objects.filter(job_ref=job_ref, status="used").count() == 1
    wallet = quota.wallet_balance(channel_id=alpha.pk, customer_id=job.customer_id)
    assert wallet == {"available": 0, "held": 0, "used": 1}
    result = reconciliation.check_one_serial_per_committed_unit(alpha.pk)
    assert result.ok, result.violations
