"""A web worker SIGKILLed while it holds an ``Idempotency-Key`` (its stamp written, not committed): the
client's retry is served as soon as PostgreSQL has dropped the dead process's connection, not after
the 5-minute lease, and exactly one job and one held unit result (issue #11)."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from django.db import connection
from django_tenants.utils import schema_context

from billing import quota
from gateway.idempotency import owner_lock_key
from tests.billing.factories import funded_wallet, unique
from tests.e2e.http import HttpClient
from tests.fixtures.pdfs.factory import text_pdf
from tests.live import private_broker, start_server

pytestmark = pytest.mark.slow


def _lock_is_free(lock: int) -> bool:
    """Whether no session holds ``lock`` (asked from a connection of our own, given back at once)."""
    params = connection.get_connection_params()
    for name in ("cursor_factory", "context", "prepare_threshold"):
        params.pop(name, None)
    with psycopg.connect(**params, autocommit=True) as other:
        got = other.execute("SELECT pg_try_advisory_lock(%s)", [lock]).fetchone()[0]
        if got:
            other.execute("SELECT pg_advisory_unlock(%s)", [lock])
    return got


def test_a_web_worker_killed_holding_a_key_leaves_it_to_an_immediate_retry(live_db, tmp_path, channel_keys):
    from gateway.models import ApiKey
    from issuer.models import Serial
    from stamping import services
    from stamping.models import StampJob
    from tenants.customers.models import Customer
    from tenants.models import Channel

    alpha = Channel.objects.get(code="alpha")
    customer_id = funded_wallet(channel_id=alpha.pk, units=2)
    with schema_context("alpha"):
        Customer.objects.create(id=customer_id, external_ref=unique("c"), name="Killed Mid-Request")
    key = unique("stamp")
    api_key = ApiKey.objects.get(prefix=channel_keys["alpha"].split("_")[1])
    lock = owner_lock_key(api_key_id=api_key.pk, key=key)
    form = {"customer": customer_id, "page": 1, "llx": 400, "lly": 50, "urx": 500, "ury": 150}
    document = text_pdf()

    marker = tmp_path / "reached"
    doomed, doomed_url = start_server(
        tmp_path,
        workers=1,
        env={
            "GATEWAY_FAULT_POINT": "idempotency.before_complete",
            "GATEWAY_FAULT_MARKER": str(marker),
            **private_broker(),  # the suite's e2e worker must not stamp the job this test inspects
        },
    )
    healthy, healthy_url = start_server(tmp_path, workers=1, env=private_broker())
    answers: list = []

    def send(url: str):
        return HttpClient(url, "alpha.test", channel_keys["alpha"]).post(
            "/api/v1/stamps", form=form, files=[("document", "a.pdf", document)], headers={"Idempotency-Key": key}
        )

    try:

        def first() -> None:
            try:
                answers.append(send(doomed_url))
            except OSError as exc:  # the connection dies with the process
                answers.append(exc)

        thread = threading.Thread(target=first, daemon=True)
        thread.start()
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert time.monotonic() < deadline, "the request never reached its completion:\n" + doomed.output()
            time.sleep(0.05)

        # The owner is alive (its job and hold written, not committed): a retry must wait for it.
        while_alive = send(healthy_url)
        assert while_alive.status == 409, while_alive.text
        assert while_alive.json()["code"] == "idempotency_request_in_progress"
        assert while_alive.headers["Retry-After"] == "1"

        doomed.kill()  # SIGKILL, mid-request, holding the key
        doomed.proc.wait(timeout=30)
        thread.join(timeout=30)
        assert len(answers) == 1 and isinstance(answers[0], OSError)  # the client never got an answer

        # PostgreSQL notices the closed connection (rolls back the work, drops the lock) at once;
        # wait for that condition, not for any lease.
        deadline = time.monotonic() + 30
        while not _lock_is_free(lock):
            assert time.monotonic() < deadline, "the dead owner's lock was never released"
            time.sleep(0.05)

        retry = send(healthy_url)
        assert retry.status == 202, retry.text
        assert "Idempotent-Replayed" not in retry.headers
        replay = send(healthy_url)
        assert replay.status == 202
        assert replay.headers["Idempotent-Replayed"] == "true"
        assert replay.body == retry.body
    finally:
        doomed.stop()
        healthy.stop()

    # Exactly one job and one held unit: the killed attempt's writes died with its transaction.
    with schema_context("alpha"):
        jobs = list(StampJob.objects.filter(customer_id=customer_id))
    assert [job.pk for job in jobs] == [retry.json()["id"]]
    assert (jobs[0].status, jobs[0].unit) == ("queued", "held")
    assert quota.wallet_balance(channel_id=alpha.pk, customer_id=customer_id) == {"available": 1, "held": 1, "used": 0}

    with schema_context("alpha"):  # and it is stamped once (no worker runs here: drain it in-process)
        done = services.run_stamp_job(channel=alpha, job_id=jobs[0].pk)
    assert (done.status, done.unit) == ("stamped", "committed")
    assert quota.wallet_balance(channel_id=alpha.pk, customer_id=customer_id) == {"available": 1, "held": 0, "used": 1}
    assert Serial.objects.filter(job_ref=f"alpha:{jobs[0].pk}", status="used").count() == 1
