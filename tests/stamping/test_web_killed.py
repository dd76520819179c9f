"""A web process killed after the stamp request committed, before its waker counted the job and woke
the lane: the job and its held unit are there, and the sweeper gets the job stamped exactly once."""

from __future__ import annotations

import threading
import time

import pytest
from django_tenants.utils import schema_context

from billing import quota
from issuer.models import Serial
from stamping import admission, lanes, services
from stamping.models import StampJob
from tests.billing.factories import funded_wallet, unique
from tests.e2e.http import HttpClient
from tests.fixtures.pdfs.factory import text_pdf
from tests.live import start_server

pytestmark = pytest.mark.slow


def test_web_process_killed_before_the_wake_leaves_a_job_the_sweeper_drains_once(
    live_db, tmp_path, channel_keys, monkeypatch
):
    from tenants.customers.models import Customer
    from tenants.models import Channel

    alpha = Channel.objects.get(code="alpha")
    customer_id = funded_wallet(channel_id=alpha.pk, units=1)
    with schema_context("alpha"):
        Customer.objects.create(id=customer_id, external_ref=unique("c"), name="Killed Web")

    marker = tmp_path / "reached"
    server, url = start_server(
        tmp_path, workers=1, env={"GATEWAY_FAULT_POINT": "stamping.before_wake", "GATEWAY_FAULT_MARKER": str(marker)}
    )
    answers: list = []
    try:
        api = HttpClient(url, "alpha.test", channel_keys["alpha"])
        form = {"customer": customer_id, "page": 1, "llx": 400, "lly": 50, "urx": 500, "ury": 150}

        def send() -> None:
            try:
                answers.append(api.post("/api/v1/stamps", form=form, files=[("document", "a.pdf", text_pdf())]))
            except OSError as exc:  # the connection dies with the process
                answers.append(exc)

        thread = threading.Thread(target=send, daemon=True)
        thread.start()
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert time.monotonic() < deadline, "the request never reached the commit:\n" + server.output()
            time.sleep(0.05)
        server.kill()  # SIGKILL, after the commit, before the wake
        thread.join(timeout=30)
    finally:
        server.stop()
    assert len(answers) == 1 and isinstance(answers[0], OSError)  # the client never got its answer

    # Committed with its unit held, but nobody was told.
    with schema_context("alpha"):
        job = StampJob.objects.get(customer_id=customer_id)
    assert (job.status, job.unit) == ("queued", "held")
    assert quota.wallet_balance(channel_id=alpha.pk, customer_id=customer_id) == {"available": 0, "held": 1, "used": 0}

    # The sweeper (every minute in production) wakes the lane and recounts the backlog.
    published: list[str] = []
    monkeypatch.setattr(lanes, "_publish", lambda schema, **_: published.append(schema) or True)
    with schema_context("alpha"):
        services.resume_stale_jobs()
        backlog = admission.client().get(admission._key("backlog", "alpha"))
        assert int(backlog) == admission.count_backlog() >= 1
        done = services.run_stamp_job(channel=alpha, job_id=job.pk)
        again = services.run_stamp_job(channel=alpha, job_id=job.pk)  # a second drainer finds it done
    assert "alpha" in published
    assert (done.status, done.unit) == (again.status, again.unit) == ("stamped", "committed")
    assert quota.wallet_balance(channel_id=alpha.pk, customer_id=customer_id) == {"available": 0, "held": 0, "used": 1}
    assert Serial.objects.filter(job_ref=f"alpha:{job.pk}", status="used").count() == 1
