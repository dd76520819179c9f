"""The compat facade over real processes: gunicorn answers the distributor client's calls and a real
Celery worker makes the stamp while docSigningZ waits for it (COMPAT_SIGN_WAIT_SECONDS)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django_tenants.utils import schema_context

from billing import quota
from billing.reconciliation import check_one_serial_per_committed_unit
from faces.compat.accounts import create_compat_user
from gateway.models import ApiKey
from issuer.selectors import verify_document
from tests.billing.factories import funded_wallet, unique
from tests.e2e.http import HttpClient
from tests.fixtures.pdfs.factory import text_pdf

pytestmark = pytest.mark.slow
PASSWORD = "kasir-pass-9876"


def test_a_distributor_client_stamps_through_the_facade_with_a_real_worker(live_db, gateway_url, stamping_worker):
    from tenants.customers.models import Customer
    from tenants.models import Channel

    alpha = Channel.objects.get(code="alpha")
    customer_id = funded_wallet(channel_id=alpha.pk, units=1)
    username = unique("kasir")
    with schema_context("alpha"):
        Customer.objects.create(id=customer_id, external_ref=unique("c"), name="Distributor")
        create_compat_user(
            channel=alpha,
            username=username,
            password=PASSWORD,
            customer_id=customer_id,
            api_key=ApiKey.objects.filter(channel=alpha).order_by("pk").first(),
        )
    anonymous = HttpClient(gateway_url, "alpha.test")
    login = anonymous.post("/compat/api/users/login", form={"user": username, "password": PASSWORD}).json()
    assert login["statusCode"] == "00"
    bearer = {"Authorization": f"Bearer {login['token']}"}
    api = HttpClient(gateway_url, "alpha.test")

    uploaded = api.post(
        "/compat/fileupload/uploaddoc2", files=[("file", "surat.pdf", text_pdf())], form={"token": login["token"]}
    ).json()
    assert uploaded["statusCode"] == "00"
    reserved = api.post(
        "/compat/chanel/stampv2",
        json_body={"isUpload": False, "namadoc": "surat-pernyataan", "namafile": "surat.pdf", "nodoc": "SP/9",
                   "tgldoc": "2026-11-29", "snOnly": False, "nilaidoc": "10000"},
        headers=bearer,
    ).json()  # fmt: skip
    assert reserved["statusCode"] == "00"
    serial = reserved["result"]["sn"]
    signed = api.post(
        "/compat/keystamp/adapter/docSigningZ",
        json_body={"refToken": serial, "docId": uploaded["id"], "visLLX": 400, "visLLY": 50, "visURX": 500,
                   "visURY": 150, "visSignaturePage": 1, "reason": "CPNS", "location": "Jakarta", "docpass": False,
                   "certificatelevel": "NOT_CERTIFIED", "onPrem": False, "retryFlag": "0"},
        headers=bearer,
    )  # fmt: skip
    assert signed.status == 200, signed.text
    assert signed.json()["errorCode"] == "00"
    path = urlsplit(signed.json()["urlFile"]).path
    pdf = api.get(path, headers=bearer)
    assert pdf.status == 200
    report = verify_document(pdf.body)
    assert report["valid"] and [s["serial"] for s in report["stamps"]] == [serial]
    saldo = api.get("/compat/function/saldopos", headers=bearer).json()["result"]
    assert (saldo["saldo"], saldo["notstamp"]) == (0, 0)
    assert quota.wallet_balance(channel_id=alpha.pk, customer_id=customer_id) == {"available": 0, "held": 0, "used": 1}
    assert check_one_serial_per_committed_unit(channel_id=alpha.pk).violations == []


def test_a_batch_is_called_back_by_a_real_worker(live_db, gateway_url, stamping_worker):
    """The batch's results reach the client's return_url: the outbox task runs on the real worker."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from tenants.customers.models import Customer
    from tenants.models import Channel
    from tests.e2e.test_journey import wait_for

    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the http.server API
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        alpha = Channel.objects.get(code="alpha")
        customer_id = funded_wallet(channel_id=alpha.pk, units=2)
        username = unique("kasir")
        with schema_context("alpha"):
            Customer.objects.create(id=customer_id, external_ref=unique("c"), name="Distributor")
            create_compat_user(
                channel=alpha, username=username, password=PASSWORD, customer_id=customer_id,
                api_key=ApiKey.objects.filter(channel=alpha).order_by("pk").first(),
            )  # fmt: skip
        api = HttpClient(gateway_url, "alpha.test")
        token = api.post("/compat/api/users/login", json_body={"user": username, "password": PASSWORD}).json()["token"]
        bearer = {"Authorization": f"Bearer {token}"}
        url = f"http://127.0.0.1:{receiver.server_address[1]}/cb"
        documents = [{"namadoc": "kuitansi", "nodoc": f"KW/{i}", "tgldoc": "2026-11-29"} for i in range(2)]
        batch = api.post(
            "/compat/api/v2/serialnumber/batch", json_body={"return_url": url, "document": documents}, headers=bearer
        ).json()
        assert batch["statusCode"] == "00", batch
        wait_for(lambda: len(received), lambda n: n == 2)
        assert {body["result"]["batchId"] for body in received} == {batch["result"]["batchId"]}
        status = api.get(f"/compat/snqr/status-batch?batchId={batch['result']['batchId']}", headers=bearer).json()
        assert sorted(r["serialNumber"] for r in status["result"]["data"]) == sorted(
            body["result"]["serialNumber"] for body in received
        )
        saldo = api.get("/compat/function/saldopos", headers=bearer).json()["result"]
        assert (saldo["saldo"], saldo["notstamp"]) == (0, 2)
    finally:
        receiver.shutdown()
        receiver.server_close()
