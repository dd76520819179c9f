"""The compat facade driven as distributor clients drive the issuer's API: login, saldo, upload,
stampv2, docSigningZ, download, status, with JSON and form bodies, string codes and `false` in
string fields. The stamping worker's step runs in process here (tests/compat/test_live.py runs a
real worker); `COMPAT_SIGN_WAIT_SECONDS = 0` makes docSigningZ answer before the stamp is made,
which is exactly the issuer API's timeout that lost units in 2022 and 2024."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_context

from billing import quota
from billing.reconciliation import check_one_serial_per_committed_unit, check_units_conserved
from faces.compat.accounts import create_compat_user, issue_token
from gateway.models import ApiKey
from issuer.models import Serial
from issuer.selectors import verify_document
from stamping import services
from stamping.models import SerialReservation, StampJob
from tests.billing.factories import funded_wallet
from tests.fixtures.pdfs.factory import text_pdf

pytestmark = pytest.mark.django_db
PASSWORD = "kasir-pass-9876"


@pytest.fixture(autouse=True)
def _answer_at_once(settings):
    settings.COMPAT_SIGN_WAIT_SECONDS = 0


@pytest.fixture
def alpha(channels):
    return channels["alpha"]


def _compat_user(channel, username: str, units: int):
    from tenants.customers.models import Customer

    customer_id = funded_wallet(channel_id=channel.pk, units=units)
    with schema_context(channel.schema_name):
        customer = Customer.objects.create(id=customer_id, external_ref=f"c-{customer_id}", name="Distributor")
        user = create_compat_user(
            channel=channel,
            username=username,
            password=PASSWORD,
            customer_id=customer.pk,
            api_key=ApiKey.objects.filter(channel=channel).order_by("pk").first(),
            email="kasir@example.test",
        )
    return user


@pytest.fixture
def kasir(alpha):
    return _compat_user(alpha, "kasir1", units=2)


def client(host="alpha.test", token=None) -> Client:
    headers = {"HTTP_HOST": host}
    if token:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return Client(**headers)


def post_json(c: Client, path: str, body: dict):
    return c.post(path, data=json.dumps(body), content_type="application/json")


def login(host="alpha.test", user="kasir1", form=False) -> str:
    body = {"user": user, "password": PASSWORD}
    answer = client(host).post("/compat/api/users/login", data=body) if form else post_json(
        client(host), "/compat/api/users/login", body
    )
    assert answer.status_code == 200, answer.content
    data = answer.json()
    assert data["statusCode"] == "00" and data["message"] == "success"
    assert data["result"]["data"]["login"]["token"] == data["token"]
    assert data["result"]["data"]["login"]["user"]["email"] == "kasir@example.test"
    return data["token"]


def saldo(token) -> tuple[int, int]:
    result = client(token=token).get("/compat/function/saldopos").json()["result"]
    assert result["status"] == "00"
    return result["saldo"], result["notstamp"]


def upload(token, name="surat.pdf") -> str:
    from django.core.files.uploadedfile import SimpleUploadedFile

    answer = client().post(
        "/compat/fileupload/uploaddoc2",
        data={"file": SimpleUploadedFile(name, text_pdf(), content_type="application/pdf"), "token": token},
    )
    assert answer.status_code == 200, answer.content
    assert answer.json()["statusCode"] == "00" and answer.json()["name"] == name
    return answer.json()["id"]


def stampv2(token, form=False, **fields) -> dict:
    body = {
        "isUpload": False, "idfile": False, "namadoc": "Surat Pernyataan", "namafile": "surat.pdf", "nilaidoc": "10000",
        "namejidentitas": "KTP", "noidentitas": "3201010101010001", "namedipungut": "Budi", "snOnly": False,
        "nodoc": "SP/1", "tgldoc": "2026-11-29",
    } | fields  # fmt: skip
    if form:
        body = {k: str(v).lower() if isinstance(v, bool) else v for k, v in body.items()}
        return client(token=token).post("/compat/chanel/stampv2", data=body).json()
    return post_json(client(token=token), "/compat/chanel/stampv2", body).json()


def sign(token, serial, doc_id, **fields):
    body = {
        "certificatelevel": "NOT_CERTIFIED", "dest": f"/sharefolder/SIGNED/{serial}.pdf", "docpass": "",
        "jwToken": token, "location": "Jakarta", "profileName": "emeteraicertificateSigner", "reason": "Meterai",
        "refToken": serial, "spesimenPath": f"/sharefolder/STAMP/{serial}.png", "src": "/sharefolder/UNSIGNED/x.pdf",
        "visLLX": 400, "visLLY": 50, "visURX": 500, "visURY": 150, "visSignaturePage": 1, "docId": doc_id,
        "onPrem": False, "retryFlag": "0",
    } | fields  # fmt: skip
    return post_json(client(token=token), "/compat/keystamp/adapter/docSigningZ", body)


def run_worker_step(alpha, serial):
    """What the stamping worker does with the reservation's job (tests/stamping runs it the same way)."""
    with schema_context("alpha"):
        job = SerialReservation.objects.get(serial=serial).job
        return services.run_stamp_job(channel=alpha, job_id=job.pk)


def wallet(alpha, kasir):
    return quota.wallet_balance(channel_id=alpha.pk, customer_id=kasir.customer_id)


def books_clean(alpha) -> None:
    """`manage.py reconcile` finds nothing wrong (every invariant, every channel)."""
    assert check_one_serial_per_committed_unit(channel_id=alpha.pk).violations == []
    assert check_units_conserved().violations == []
    call_command("reconcile", "--no-store")  # exits 1 on any violation


def test_a_distributor_client_stamps_end_to_end_and_the_unit_is_spent_once(alpha, kasir):
    token = login()
    assert saldo(token) == (2, 0)
    types = client(token=token).get("/compat/jenisdoc").json()
    assert types["statusCode"] == "00" and {"id", "kode", "nama"} <= set(types["result"][0])
    doc_id = upload(token)

    reserved = stampv2(token, isUpload=True)
    assert reserved["statusCode"] == "00" and reserved["message"] == "success"
    serial = reserved["result"]["sn"]
    assert len(serial) == 22 and reserved["result"]["filenameQR"] == f"{serial}.jpg"
    import base64

    assert base64.b64decode(reserved["result"]["image"])[:3] == b"\xff\xd8\xff"  # a JPEG
    assert saldo(token) == (1, 1)  # held, not spent
    assert wallet(alpha, kasir) == {"available": 1, "held": 1, "used": 0}

    first = sign(token, serial, doc_id)  # the stamp is not made yet: the issuer API's timeout
    assert first.status_code == 503
    assert (first.json()["status"], first.json()["errorCode"]) == ("False", "97")
    assert first["Retry-After"] == "5"
    again = sign(token, serial, doc_id, retryFlag="1")  # a retry before the worker ran: the same job
    assert again.json()["errorCode"] == "97"
    with schema_context("alpha"):
        assert StampJob.objects.filter(serial=serial).count() == 1

    assert run_worker_step(alpha, serial).status == "stamped"
    done = sign(token, serial, doc_id, retryFlag="1")
    assert done.status_code == 200, done.content
    assert (done.json()["status"], done.json()["errorCode"]) == ("True", "00")
    assert done.json()["urlFile"] == f"http://alpha.test/compat/getfile3/{serial}.pdf"
    assert sign(token, serial, doc_id, retryFlag="1").json()["urlFile"] == done.json()["urlFile"]

    pdf = client(token=token).get(f"/compat/getfile3/{serial}.pdf")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    report = verify_document(pdf.content)
    assert report["valid"] and [s["serial"] for s in report["stamps"]] == [serial]
    status = client(token=token).get(f"/compat/chanel/stamp/ext?filter={serial}").json()
    assert status["result"]["total"] == 1 and status["result"]["data"][0]["status"] == "STAMP"
    assert saldo(token) == (1, 0)
    assert wallet(alpha, kasir) == {"available": 1, "held": 0, "used": 1}
    assert Serial.objects.filter(serial=serial, status="used").count() == 1
    books_clean(alpha)


def test_a_reserved_serial_is_not_shown_as_issued_until_the_stamp_is_recorded(alpha, kasir, client_for):
    """The job carries its reserved serial from the start; the storefront API shows it only once stamped
    (a verification link to it would find nothing before)."""
    token = login()
    doc_id = upload(token)
    serial = stampv2(token)["result"]["sn"]
    assert sign(token, serial, doc_id).status_code == 503  # queued, not stamped yet
    with schema_context("alpha"):
        job_id = SerialReservation.objects.get(serial=serial).job_id
    api = client_for("alpha")
    assert api.get(f"/api/v1/stamps/{job_id}").json()["serial"] is None
    assert run_worker_step(alpha, serial).status == "stamped"
    assert api.get(f"/api/v1/stamps/{job_id}").json()["serial"] == serial


def test_form_bodies_and_false_in_string_fields_are_accepted(alpha, kasir):
    token = login(form=True)
    reserved = stampv2(token, form=True, namadoc=False, nodoc="false", tgldoc="29-11-2026", isUpload="false")
    assert reserved["statusCode"] == "00" and "filenameQR" not in reserved["result"]
    with schema_context("alpha"):
        row = SerialReservation.objects.get(serial=reserved["result"]["sn"])
    assert (row.document_type, row.document_number, str(row.document_date)) == ("", "", "2026-11-29")
    form_saldo = client(token=token).post("/compat/function/saldopos", data={"token": token}).json()
    assert (form_saldo["result"]["saldo"], form_saldo["result"]["notstamp"]) == (1, 1)


def test_a_failed_stamp_gives_the_unit_back_and_a_retry_of_the_serial_spends_exactly_one(alpha, kasir):
    token = login()
    doc_id = upload(token)
    serial = stampv2(token)["result"]["sn"]
    assert sign(token, serial, doc_id).json()["errorCode"] == "97"
    with schema_context("alpha"):  # the issuer refuses this attempt (its profile is withdrawn meanwhile)
        StampJob.objects.filter(serial=serial).update(profile="no-such-profile")
    assert run_worker_step(alpha, serial).status == "failed"
    assert wallet(alpha, kasir) == {"available": 2, "held": 0, "used": 0}  # no unit is gone
    assert saldo(token) == (2, 1)  # the serial stays reserved for the retry
    status = client(token=token).get(f"/compat/chanel/stamp/ext?filter={serial}").json()
    assert status["result"]["data"][0]["status"] == "NOTSTAMP"

    retried = sign(token, serial, doc_id, retryFlag="1")  # the retry holds a unit again and queues a new job
    assert retried.json()["errorCode"] == "97"
    assert wallet(alpha, kasir) == {"available": 1, "held": 1, "used": 0}
    assert run_worker_step(alpha, serial).status == "stamped"
    assert sign(token, serial, doc_id, retryFlag="1").json()["errorCode"] == "00"
    assert wallet(alpha, kasir) == {"available": 1, "held": 0, "used": 1}  # exactly one unit in the end
    assert Serial.objects.filter(serial=serial).count() == 1
    books_clean(alpha)


def test_a_serial_never_stamped_comes_back_when_its_hold_expires(alpha, kasir):
    token = login()
    doc_id = upload(token)
    serial = stampv2(token)["result"]["sn"]
    assert saldo(token) == (1, 1)
    with schema_context("alpha"), connection.cursor() as cursor:
        row = SerialReservation.objects.get(serial=serial)
        expire = "UPDATE ledger_transfer SET timeout_at = now() - interval '1 second' WHERE id = %s"
        cursor.execute(expire, [row.hold_id])
        SerialReservation.objects.filter(pk=row.pk).update(expires_at=row.created_at)
    assert quota.sweep_expired_pending() >= 1  # the ledger's sweeper (billing.sweep_expired_pending)
    assert saldo(token) == (2, 0)
    late = sign(token, serial, doc_id)
    assert (late.status_code, late.json()["errorCode"], late.json()["code"]) == (410, "86", "reservation_expired")
    assert wallet(alpha, kasir) == {"available": 2, "held": 0, "used": 0}
    with schema_context("alpha"):
        assert not StampJob.objects.filter(serial=serial).exists()
    books_clean(alpha)


def test_no_quota_is_refused_in_the_facade_shape_and_holds_nothing(alpha, kasir):
    token = login()
    stampv2(token)
    stampv2(token)
    refused = stampv2(token)
    assert refused["statusCode"] == "03" and refused["message"] == "error"
    assert refused["code"] == "insufficient_quota" and refused["result"]["err"]
    assert refused["request_id"].startswith("req_")
    assert saldo(token) == (0, 2)


def test_a_token_of_one_channel_is_refused_on_another_channels_host(alpha, channels, kasir):
    _compat_user(channels["beta"], "kasir1", units=1)  # the same user name on beta
    token = login()
    answer = client(host="beta.test", token=token).get("/compat/function/saldopos")
    assert answer.status_code == 401
    assert answer.json()["statusCode"] == "01" and answer.json()["code"] == "compat_invalid_token"
    assert login(host="beta.test") != token


def test_an_expired_or_forged_token_answers_01_and_a_new_login_works(alpha, kasir):
    import time

    old = issue_token(channel=alpha, user=kasir, now=time.time() - 24 * 3600 - 5)
    expired = client(token=old).get("/compat/function/saldopos")
    assert (expired.status_code, expired.json()["statusCode"]) == (401, "01")
    assert "expired" in expired.json()["result"]["message"]
    forged = client(token=old[:-4] + "AAAA").get("/compat/jenisdoc")
    assert forged.json()["statusCode"] == "01"
    missing = client().get("/compat/jenisdoc")
    assert missing.json()["statusCode"] == "01"
    assert saldo(login()) == (2, 0)


def test_a_wrong_password_answers_01(alpha, kasir):
    answer = post_json(client(), "/compat/api/users/login", {"user": "kasir1", "password": "wrong"})
    assert (answer.status_code, answer.json()["statusCode"]) == (401, "01")


def test_a_busy_lane_refuses_docsigningz_with_the_retry_time_and_takes_nothing(alpha, kasir, settings):
    token = login()
    doc_id = upload(token)
    serial = stampv2(token)["result"]["sn"]
    settings.STAMPING_CHANNEL_BACKLOG_LIMIT = 0
    busy = sign(token, serial, doc_id)
    assert busy.status_code == 503
    body = busy.json()
    assert (body["status"], body["errorCode"], body["code"]) == ("False", "89", "overloaded")
    assert body["retry_after"] >= 1 and busy["Retry-After"] == str(body["retry_after"])
    with schema_context("alpha"):
        assert not StampJob.objects.filter(serial=serial).exists()
    assert wallet(alpha, kasir) == {"available": 1, "held": 1, "used": 0}  # still only the reservation's hold


def test_the_api_key_rate_limit_applies_to_facade_calls(alpha, kasir):
    from tenants.models import Channel

    Channel.objects.filter(pk=alpha.pk).update(rate_limit_per_key=1, rate_limit_burst=1)
    from gateway.middleware import TenantMiddleware

    TenantMiddleware.forget()
    token = login()
    answers = [client(token=token).get("/compat/jenisdoc") for _ in range(5)]
    limited = [a for a in answers if a.status_code == 429]
    assert limited, [a.status_code for a in answers]
    assert limited[0].json()["statusCode"] == "08" and limited[0].json()["code"] == "rate_limited"
    assert limited[0].json()["retry_after"] >= 1


def test_a_body_that_is_not_an_object_answers_02_not_a_server_error(alpha, kasir):
    token = login()
    for path in ("/compat/api/users/login", "/compat/chanel/stampv2"):
        answer = client(token=token).post(path, data="[1, 2]", content_type="application/json")
        assert (answer.status_code, answer.json()["statusCode"]) == (400, "02"), path
    assert saldo(token) == (2, 0)
