"""The whole journey over real HTTP against a running server and a real Celery worker:
customer -> order -> the simulator pays -> stamp -> poll -> download -> verify by serial and by upload."""

from __future__ import annotations

import time

import pytest

from billing import quota, reconciliation
from tests.billing.factories import unique
from tests.e2e.http import HttpClient
from tests.fixtures.pdfs.factory import text_pdf

pytestmark = pytest.mark.slow


def wait_for(fetch, done, *, timeout=90.0):
    """Poll ``fetch()`` until ``done(result)``; fail after ``timeout`` seconds. Waits for an event, not a time."""
    deadline = time.monotonic() + timeout
    while True:
        result = fetch()
        if done(result):
            return result
        assert time.monotonic() < deadline, f"gave up waiting; last answer: {result}"
        time.sleep(0.1)


def test_the_whole_journey(live_db, gateway_url, stamping_worker, channel_keys):
    from tenants.models import Channel

    alpha = Channel.objects.get(code="alpha")
    quota.allocate_stock(channel_id=alpha.pk, units=5, reference=unique("dep"))
    api = HttpClient(gateway_url, "alpha.test", channel_keys["alpha"])

    customer = api.post("/api/v1/customers", json_body={"external_ref": unique("c"), "name": "Rina"}).json()
    order = api.post(
        "/api/v1/orders",
        json_body={"customer": customer["id"], "quantity": 1},
        headers={"Idempotency-Key": unique("order")},
    ).json()
    paid = HttpClient(gateway_url, "alpha.test").csrf_form(f"/pay/simulator/{order['id']}", {"action": "pay"})
    assert "Payment sent, waiting for confirmation." in paid.text  # a worker delivers the webhook
    wait_for(lambda: api.get(f"/api/v1/orders/{order['id']}").json(), lambda o: o["status"] == "credited")
    assert api.get(f"/api/v1/customers/{customer['id']}").json()["quota"]["available"] == 1

    document = text_pdf()
    accepted = api.post(
        "/api/v1/stamps",
        form={
            "customer": customer["id"],
            "page": 1,
            "llx": 400,
            "lly": 50,
            "urx": 500,
            "ury": 150,
            "document_type": "surat-pernyataan",
            "document_number": "SP-001",
            "reason": "CPNS 2026",
        },
        files=[("document", "pernyataan.pdf", document)],
        headers={"Idempotency-Key": unique("stamp")},
    )
    assert accepted.status == 202, accepted.text
    job = accepted.json()
    assert job["status"] in ("queued", "processing", "stamped") and job["unit"] in ("held", "committed")
    assert job["queue"]["position"] >= 1 and job["queue"]["eta_seconds"] >= 1
    assert accepted.headers["Location"] == f"/api/v1/stamps/{job['id']}"

    done = wait_for(
        lambda: api.get(f"/api/v1/stamps/{job['id']}").json(), lambda j: j["status"] in ("stamped", "failed")
    )
    assert (done["status"], done["unit"]) == ("stamped", "committed"), done
    assert api.get(f"/api/v1/customers/{customer['id']}").json()["quota"] == {"available": 0, "held": 0, "used": 1}

    download = api.get(done["document_url"])
    assert download.status == 200
    assert download.headers["Content-Type"] == "application/pdf"
    stamped = download.body
    assert stamped.startswith(document[:8]) and len(stamped) > len(document)

    issuer = HttpClient(gateway_url, "issuer.test")
    by_serial = issuer.get(f"/api/v1/verify/{done['serial']}").json()
    assert by_serial["status"] == "used" and by_serial["valid"] is True
    assert by_serial["channel"]["code"] == "alpha"
    by_upload = issuer.post("/api/v1/verify", files=[("document", "stamped.pdf", stamped)]).json()
    assert by_upload["valid"] is True, by_upload
    assert [s["serial"] for s in by_upload["stamps"]] == [done["serial"]]
    tampered = issuer.post("/api/v1/verify", files=[("document", "x.pdf", stamped + b"\n% appended\n")]).json()
    assert tampered["valid"] is False

    for check in (
        reconciliation.check_books_balance,
        reconciliation.check_units_conserved,
        lambda: reconciliation.check_one_serial_per_committed_unit(alpha.pk),  # other channels are test doubles
    ):
        assert check().ok, check().violations


def test_a_batch_shows_progress_until_every_document_is_done(live_db, gateway_url, stamping_worker, channel_keys):
    from django_tenants.utils import schema_context

    from tenants.customers.models import Customer
    from tenants.models import Channel
    from tests.billing.factories import funded_wallet

    alpha = Channel.objects.get(code="alpha")
    customer_id = funded_wallet(channel_id=alpha.pk, units=3)
    with schema_context("alpha"):
        Customer.objects.create(id=customer_id, external_ref=unique("c"), name="Batch")
    api = HttpClient(gateway_url, "alpha.test", channel_keys["alpha"])
    accepted = api.post(
        "/api/v1/batches",
        form={"customer": customer_id, "page": 1, "llx": 40, "lly": 40, "urx": 140, "ury": 140},
        files=[("documents", f"doc{i}.pdf", text_pdf(pages=i + 1)) for i in range(3)],
    )
    assert accepted.status == 202, accepted.text
    batch_id = accepted.json()["id"]
    final = wait_for(lambda: api.get(f"/api/v1/batches/{batch_id}").json(), lambda b: b["finished"])
    assert final["counts"]["stamped"] == 3 and final["progress"] == 1.0
    assert quota.wallet_balance(channel_id=alpha.pk, customer_id=customer_id) == {"available": 0, "held": 0, "used": 3}
