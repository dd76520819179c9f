"""A drainer whose database goes away keeps its lane: the job is stamped as soon as the database takes
the worker again, without a sweeper (there is none in tests) and without waiting out a lease.

The outage is real and aimed at the worker alone: it connects as a role of its own, which is refused
logins (``NOLOGIN``) and has its sessions terminated while the drainer starts, then let back in.
"""

from __future__ import annotations

import time
import uuid

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from billing import quota
from stamping import admission, lanes, services
from stamping.models import StampJob
from stamping.tasks import drain_lane_task
from tests.billing.factories import funded_wallet, unique
from tests.fixtures.pdfs.factory import text_pdf
from tests.live import child_env, start_worker
from tests.stamping.test_worker_killed import alpha_has_no_leftover_jobs, wait_until  # noqa: F401 (fixture)

pytestmark = pytest.mark.slow

ROLE = "drainer_outage_test"
QUEUE = "stamping-outage-test"


def _sql(statement: str, params=None) -> list:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


@pytest.fixture
def worker_role():
    """A login role of the worker's own (a superuser, as the test's), let in again whatever happens."""
    if not _sql("SELECT 1 FROM pg_roles WHERE rolname = %s", [ROLE]):
        _sql(f"CREATE ROLE {ROLE} LOGIN SUPERUSER")
    yield ROLE
    _sql(f"ALTER ROLE {ROLE} LOGIN")


def test_a_drainer_that_loses_the_database_comes_back_and_stamps_the_job(
    live_db, tmp_path, monkeypatch, worker_role
):
    from tenants.customers.models import Customer
    from tenants.models import Channel

    alpha = Channel.objects.get(code="alpha")
    admission.client().delete(lanes._token_key("alpha"))
    customer_id = funded_wallet(channel_id=alpha.pk, units=1)
    monkeypatch.setattr(services, "queued", lambda **_: None)  # the lane is woken below, during the outage
    with schema_context("alpha"):
        Customer.objects.create(id=customer_id, external_ref=unique("c"), name="Outage")
        job = services.request_stamp(
            channel=alpha,
            customer_id=customer_id,
            request=services.StampRequest(data=text_pdf(), page=1, box=(400.0, 50.0, 500.0, 150.0)),
        )

    url = child_env()["DATABASE_URL"].replace("postgres://", "", 1).split("@", 1)[1]
    worker = start_worker(
        tmp_path,
        name=f"outage-{uuid.uuid4().hex[:6]}",
        queues=QUEUE,
        concurrency=1,
        env={"DATABASE_URL": f"postgres://{worker_role}@{url}"},
    )
    try:
        # The database refuses the worker: new logins, and the sessions it has.
        _sql(f"ALTER ROLE {worker_role} NOLOGIN")
        _sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", [worker_role])
        # The drainer, with the lane's token, on this test's own queue (other tests' workers may be
        # consuming ``stamping``); a drainer comes back on the queue it came from.
        lanes._update_slots_by("alpha", 1)
        drain_lane_task.apply_async(args=["alpha"], queue=QUEUE)
        wait_until(
            lambda: "database unavailable" in worker.log.read_text(), what="the drainer to meet the outage"
        )
        time.sleep(1.0)  # a retry or two meanwhile, refused as well
        with schema_context("alpha"):
            assert StampJob.objects.get(pk=job.pk).status == "queued"
        assert int(admission.client().get(lanes._token_key("alpha")) or 0) == 1  # the lane kept its drainer

        _sql(f"ALTER ROLE {worker_role} LOGIN")

        def finished():
            with schema_context("alpha"):
                return StampJob.objects.get(pk=job.pk).status in ("stamped", "failed")

        wait_until(finished, timeout=30.0, what="the drainer to come back and stamp the job")
        wait_until(lambda: not int(admission.client().get(lanes._token_key("alpha")) or 0), what="the token back")
    finally:
        worker.stop()

    with schema_context("alpha"):
        done = StampJob.objects.get(pk=job.pk)
    assert (done.status, done.unit, done.attempts) == ("stamped", "committed", 1)
    assert quota.wallet_balance(channel_id=alpha.pk, customer_id=customer_id) == {"available": 0, "held": 0, "used": 1}
