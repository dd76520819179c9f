"""Two real concurrent calls with one job_ref (separate connections, committed data)."""

from __future__ import annotations

import pytest
from django.apps import apps

if not apps.ready:  # an engine-only run (-p no:django, see conftest.py): these need Django and the database
    pytest.skip("Django-level issuer tests need pytest-django", allow_module_level=True)

import threading
import uuid

from django.db import connections

from issuer.models import Serial
from issuer.services import stamp_document
from tests.fixtures.pdfs import factory


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_concurrent_calls_with_one_job_ref_record_one_used_serial(live_db) -> None:
    from tenants.models import Channel

    channel = Channel.objects.get(code="alpha")
    job_ref = f"race-{uuid.uuid4().hex}"
    data = factory.text_pdf()
    barrier = threading.Barrier(4)
    outcomes, failures = [], []

    def worker() -> None:
        try:
            barrier.wait(timeout=30)
            outcomes.append(
                stamp_document(channel=channel, data=data, page=1, box=(420, 60, 520, 160), job_ref=job_ref)
            )
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            failures.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=100)
    try:
        assert failures == []
        assert len({outcome.serial for outcome in outcomes}) == 1 and len(outcomes) == 4
        assert len({outcome.pdf for outcome in outcomes}) == 1
        assert sum(not outcome.replayed for outcome in outcomes) == 1
        rows = Serial.objects.filter(channel=channel, job_ref=job_ref)
        assert rows.filter(status="used").count() == 1
        superseded = rows.filter(status="void")
        assert all(row.void_reason.startswith("superseded") for row in superseded)
    finally:
        Serial.objects.filter(channel=channel, job_ref=job_ref).delete()
