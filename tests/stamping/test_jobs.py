"""Stamping jobs in process: request holds a unit, the worker step stamps and commits it - or releases it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from billing import quota
from issuer.errors import DocumentError
from issuer.models import Serial
from stamping import services
from stamping.errors import InsufficientQuota
from stamping.models import StampJob
from tests.billing.factories import funded_wallet
from tests.fixtures.pdfs.factory import text_pdf

pytestmark = pytest.mark.django_db

BOX = (400.0, 50.0, 500.0, 150.0)


@pytest.fixture
def alpha(channels):
    return channels["alpha"]


@pytest.fixture
def customer(alpha):
    from tenants.customers.models import Customer

    customer_id = funded_wallet(channel_id=alpha.pk, units=2)
    with schema_context("alpha"):
        yield Customer.objects.create(id=customer_id, external_ref=f"c-{customer_id}", name="Wallet Owner")


def wallet(alpha, customer):
    return quota.wallet_balance(channel_id=alpha.pk, customer_id=customer.pk)


def request(**overrides) -> services.StampRequest:
    fields = {"data": text_pdf(), "page": 1, "box": BOX, "file_name": "surat.pdf"} | overrides
    return services.StampRequest(**fields)


def test_the_returned_job_is_the_row_the_intake_wrote(alpha, customer):
    """request_stamp answers without reading the row back: what it returns must be what was written."""
    from datetime import date

    fields = {"document_type": "Surat Pernyataan", "document_number": "SP/7", "document_date": date(2026, 11, 2),
              "reason": "Kontrak", "location": "Bandung", "password": None}
    with schema_context("alpha"):
        job = services.request_stamp(channel=alpha, customer_id=customer.pk, request=request(**fields))
        stored = StampJob.objects.get(pk=job.pk)
    assert not job._state.adding
    names = [field.attname for field in StampJob._meta.concrete_fields]
    assert {n: getattr(job, n) for n in names} == {n: getattr(stored, n) for n in names}


def test_request_holds_one_unit_and_the_worker_stamps_and_commits_it(alpha, customer):
    with schema_context("alpha"):
        job = services.request_stamp(channel=alpha, customer_id=customer.pk, request=request())
        assert (job.status, job.unit) == ("queued", "held")
        assert wallet(alpha, customer) == {"available": 1, "held": 1, "used": 0}
        done = services.run_stamp_job(channel=alpha, job_id=job.pk)
    assert (done.status, done.unit) == ("stamped", "committed")
    assert len(done.serial) == 22
    assert wallet(alpha, customer) == {"available": 1, "held": 0, "used": 1}
    serial = Serial.objects.get(serial=done.serial)
    assert (serial.status, serial.channel_id, serial.job_ref) == ("used", alpha.pk, f"alpha:{job.pk}")


def test_running_a_job_again_changes_nothing(alpha, customer):
    with schema_context("alpha"):
        job = services.request_stamp(channel=alpha, customer_id=customer.pk, request=request())
        first = services.run_stamp_job(channel=alpha, job_id=job.pk)
        again = services.run_stamp_job(channel=alpha, job_id=job.pk)  # a redelivered task
    assert again.serial == first.serial
    assert wallet(alpha, customer) == {"available": 1, "held": 0, "used": 1}
    assert Serial.objects.filter(job_ref=f"alpha:{job.pk}", status="used").count() == 1


def test_a_bad_document_is_refused_at_the_door_and_holds_nothing(alpha, customer):
    with schema_context("alpha"), pytest.raises(DocumentError) as refusal:
        services.request_stamp(channel=alpha, customer_id=customer.pk, request=request(data=b"not a pdf at all"))
    assert refusal.value.code == "not_a_pdf"
    assert wallet(alpha, customer) == {"available": 2, "held": 0, "used": 0}
    with schema_context("alpha"):
        assert StampJob.objects.count() == 0


def test_no_quota_is_refused_and_writes_nothing(alpha, customer):
    with schema_context("alpha"):
        for _ in range(2):
            services.request_stamp(channel=alpha, customer_id=customer.pk, request=request())
        with pytest.raises(InsufficientQuota):
            services.request_stamp(channel=alpha, customer_id=customer.pk, request=request())
        assert StampJob.objects.count() == 2
    assert wallet(alpha, customer) == {"available": 0, "held": 2, "used": 0}


def test_a_final_failure_releases_the_unit_and_records_no_used_serial(alpha, customer):
    with schema_context("alpha"):
        job = services.request_stamp(channel=alpha, customer_id=customer.pk, request=request())
        StampJob.objects.filter(pk=job.pk).update(profile="no-such-profile")  # the issuer will refuse it
        done = services.run_stamp_job(channel=alpha, job_id=job.pk)
    assert (done.status, done.unit, done.error_code) == ("failed", "released", "unknown_profile")
    assert wallet(alpha, customer) == {"available": 2, "held": 0, "used": 0}
    assert not Serial.objects.filter(job_ref=f"alpha:{job.pk}", status="used").exists()


def test_a_job_whose_hold_was_swept_fails_without_stamping(alpha, customer):
    with schema_context("alpha"):
        job = services.request_stamp(channel=alpha, customer_id=customer.pk, request=request())
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE ledger_transfer SET timeout_at = now() - interval '1 second' WHERE id = %s", [job.hold_id]
            )
        quota.sweep_expired_pending()
        done = services.run_stamp_job(channel=alpha, job_id=job.pk)
    assert (done.status, done.unit, done.error_code) == ("failed", "released", "hold_lost")
    assert wallet(alpha, customer) == {"available": 2, "held": 0, "used": 0}
    assert not Serial.objects.filter(job_ref=f"alpha:{job.pk}", status="used").exists()


def test_jobs_of_a_vanished_worker_are_taken_back_and_run_once(alpha, customer):
    from django.utils import timezone

    from stamping import lanes

    with schema_context("alpha"):
        job = services.request_stamp(channel=alpha, customer_id=customer.pk, request=request())
        assert lanes.claim_next() == job.pk  # a worker claims it ... and dies
        assert lanes.claim_next() is None  # nobody else can claim it meanwhile
        StampJob.objects.filter(pk=job.pk).update(claimed_at=timezone.now() - timedelta(minutes=10))
        assert services.resume_stale_jobs() == 1
        assert services.resume_stale_jobs() == 0
        done, more = services.drain(channel=alpha)
    assert (done, more) == (1, False)
    assert wallet(alpha, customer) == {"available": 1, "held": 0, "used": 1}
    assert Serial.objects.filter(job_ref=f"alpha:{job.pk}", status="used").count() == 1


def test_a_lane_takes_the_oldest_job_first_and_leaves_others_channels_alone(alpha, customer, channels):
    from stamping import lanes

    with schema_context("alpha"):
        first = services.request_stamp(channel=alpha, customer_id=customer.pk, request=request())
        second = services.request_stamp(channel=alpha, customer_id=customer.pk, request=request())
        assert lanes.claim_next() == first.pk
        assert lanes.claim_next() == second.pk
    with schema_context("beta"):
        assert lanes.claim_next() is None


def test_a_claim_takes_one_job_and_a_job_given_back_is_claimable_again(alpha, customer):
    from stamping import lanes

    with schema_context("alpha"):
        first = services.request_stamp(channel=alpha, customer_id=customer.pk, request=request())
        second = services.request_stamp(channel=alpha, customer_id=customer.pk, request=request())
        claimed = lanes.claim_job()
        assert claimed.job.pk == first.pk
        assert list(StampJob.objects.filter(status="processing").values_list("pk", flat=True)) == [first.pk]
        lanes._give_back([first.pk])  # (what a claim that took two would do with the second)
        again = StampJob.objects.get(pk=first.pk)
        assert (again.status, again.attempts) == ("queued", 0)
        assert lanes.claim_next() == first.pk  # the oldest again
        assert lanes.claim_next() == second.pk


def _prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements WHERE from_sql = false")
        return sorted(row[0] for row in cursor.fetchall())


def test_a_stamps_statements_are_prepared_once_per_connection_and_per_channel(alpha, channels):
    """The claim and the recording (one statement: the serial's insert with the channel's
    ``stamping_recorded``, which commits the hold, marks the job and writes its event) are prepared
    (Django turns psycopg's preparing off; ``kernel.db.raw_cursor`` turns it on for them): once a
    stamp has run, the next prepares nothing new, and another channel's stamp on the same connection
    gets statements of its own that write its own schema's rows. (psycopg may drop
    them all after a ROLLBACK on the connection and prepare them again: the same statements.)"""
    from tenants.customers.models import Customer

    owners = {}
    for channel in (alpha, channels["beta"]):
        owners[channel.schema_name] = funded_wallet(channel_id=channel.pk, units=3)
        with schema_context(channel.schema_name):
            Customer.objects.create(id=owners[channel.schema_name], external_ref="prepared", name="Owner")

    def stamp(channel) -> str:
        job = services.request_stamp(channel=channel, customer_id=owners[channel.schema_name], request=request())
        assert services.drain(channel=channel) == (1, False)
        return job.pk

    with schema_context("alpha"):
        alpha_jobs = [stamp(alpha)]  # (the first prepares what it needs)
        alpha_jobs.append(stamp(alpha))
        after_two = _prepared_statements()
        alpha_jobs.append(stamp(alpha))
        assert _prepared_statements() == after_two
    assert any('"alpha".stamping_stampjob' in s for s in after_two)
    assert any("issuer_serial" in s and '"alpha".stamping_recorded' in s for s in after_two)
    with schema_context("beta"):
        beta_job = stamp(channels["beta"])
        assert any('"beta".stamping_stampjob' in s for s in _prepared_statements())
        assert any('"beta".stamping_recorded' in s for s in _prepared_statements())
        assert StampJob.objects.get(pk=beta_job).status == "stamped"
        assert not StampJob.objects.filter(pk__in=alpha_jobs).exists()
    with schema_context("alpha"):
        assert {job.status for job in StampJob.objects.filter(pk__in=alpha_jobs)} == {"stamped"}
        assert not StampJob.objects.filter(pk=beta_job).exists()


def test_after_redis_restarts_the_sweeper_starts_the_lanes_with_work_over_at_once(alpha, customer, monkeypatch):
    """Drainers whose slice ended while Redis was down could not publish their next one; Redis, back
    from its append-only file, still counts their tokens. The sweeper sees Redis's new run id and
    starts the tokens of every lane with work over on that sweep, not when the once-a-minute reset
    comes round (its key came back from the file too)."""
    from stamping import admission, lanes

    published: list[str] = []
    monkeypatch.setattr(lanes, "_publish", lambda schema, **_: published.append(schema) or True)
    client = admission.client()
    noted = lanes._run_id_key()
    client.delete(noted)
    assert not lanes.redis_restarted()  # nothing noted yet (a first start, or a Redis that lost it all)
    assert not lanes.redis_restarted()  # the same server as last time
    client.set(noted, "the-run-before-the-restart")
    assert lanes.redis_restarted()
    assert not lanes.redis_restarted()  # told once: the next sweep sees the same server

    with schema_context("alpha"):
        services.request_stamp(channel=alpha, customer_id=customer.pk, request=request())
        tokens, generation = lanes._token_key("alpha"), lanes._generation_key("alpha")
        client.set(tokens, alpha.stamping_concurrency)  # every token held, by tasks lost with the outage
        client.set(admission._key("lane-reset", "alpha"), 1, ex=60)  # the regular reset is not due
        before = client.get(generation)
        services.resume_stale_jobs()
        assert client.get(generation) == before and published == []  # asleep: no free token
        services.resume_stale_jobs(redis_restarted=True)
        assert client.get(generation) != before
        assert published == ["alpha"]  # a drainer for the one job
    client.delete(tokens, admission._key("lane-reset", "alpha"))


def test_a_lane_that_cannot_be_swept_leaves_the_others_swept_and_the_restart_told_again(channels, monkeypatch):
    """One channel whose sweep fails (its schema broken, say) is skipped, not the end of the sweep:
    the channels after it are still swept. Redis had started again, and a lane missed that start
    over, so the next sweep is told of the restart again; once every lane is swept, it is not."""
    from stamping import admission, lanes, tasks

    swept: list[tuple[str, bool]] = []
    broken = {"alpha"}

    def resume(*, redis_restarted=False, **_):
        if connection.schema_name in broken:
            raise RuntimeError("relation does not exist")
        swept.append((connection.schema_name, redis_restarted))
        return 0

    monkeypatch.setattr(services, "resume_stale_jobs", resume)
    noted = lanes._run_id_key()
    admission.client().set(noted, "the-run-before-the-restart")
    tasks.resume_stale_jobs_task()
    others = {code for code in channels if code != "alpha"}
    assert others and {schema for schema, _ in swept} >= others
    assert all(restarted for _, restarted in swept)
    assert "alpha" not in {schema for schema, _ in swept}

    swept.clear()
    broken.clear()
    tasks.resume_stale_jobs_task()  # told again: alpha's tokens start over now
    assert ("alpha", True) in swept and all(restarted for _, restarted in swept)
    swept.clear()
    tasks.resume_stale_jobs_task()  # every lane swept last time: no restart to tell
    assert swept and not any(restarted for _, restarted in swept)
