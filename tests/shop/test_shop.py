"""The reference storefront (/shop/ on a channel's host) through the real HTTP stack: the one-time
sign-in link, buying units (one order per form, even sent twice), a pause shown as an honest waiting
page, incidents on every page, Indonesian by default."""

from __future__ import annotations

import hashlib
import re

import pytest
from django.core.cache import cache
from django_tenants.utils import schema_context

from billing import quota
from billing.retail.models import Order
from tests.billing.factories import unique

pytestmark = pytest.mark.django_db

SENT: list[dict] = []


def remember_link(*, channel, email: str, link: str) -> None:
    """The test's sender: keeps what the console sender would print."""
    SENT.append({"channel": channel.code, "email": email, "link": link})


@pytest.fixture(autouse=True)
def _sender(settings):
    settings.SHOP_LINK_SENDER = "tests.shop.test_shop.remember_link"
    SENT.clear()


@pytest.fixture
def alpha(channels):
    channel = channels["alpha"]
    quota.allocate_stock(channel_id=channel.pk, units=50, reference=unique("dep"))
    return channel


@pytest.fixture
def shop(client_for):
    return client_for("alpha", key=None)


def sign_in(shop, email: str) -> None:
    assert shop.post("/shop/signin", {"email": email}).status_code == 200
    path = SENT[-1]["link"].split("alpha.test", 1)[1]
    assert shop.post(path).status_code == 303


def test_the_storefront_speaks_indonesian_by_default_and_english_on_request(shop, alpha) -> None:
    page = shop.get("/shop/")
    html = page.content.decode()
    assert page.status_code == 200 and '<html lang="id">' in html
    assert "Bubuhkan e-Meterai pada dokumen Anda" in html and "Kirimi saya tautan masuk" in html
    english = shop.get("/shop/", HTTP_ACCEPT_LANGUAGE="en-GB,en;q=0.8").content.decode()
    assert "Stamp your document with an e-Meterai" in english


def test_a_one_time_link_signs_in_once_and_its_token_is_stored_hashed(shop, alpha) -> None:
    email = f"{unique('ayu')}@example.com"
    sent = shop.post("/shop/signin", {"email": email.upper()})
    assert sent.status_code == 200 and email in sent.content.decode()
    assert len(SENT) == 1 and SENT[0]["email"] == email and SENT[0]["channel"] == "alpha"
    link = SENT[0]["link"]
    assert link.startswith("http://alpha.test/shop/signin/")
    token = link.rsplit("/", 1)[1]
    assert cache.get(f"shop:signin:{hashlib.sha256(token.encode()).hexdigest()}") == email
    assert cache.get(f"shop:signin:{token}") is None  # only the digest is a key

    path = link.split("alpha.test", 1)[1]
    assert shop.get(path).status_code == 200  # a mail scanner's GET does not use it up
    signed = shop.post(path)
    assert signed.status_code == 303 and signed["Location"] == "/shop/"
    home = shop.get("/shop/").content.decode()
    assert email in home and "Meterai saya" in home

    other = type(shop)(HTTP_HOST="alpha.test")
    again = other.post(path)  # the same link a second time
    assert again.status_code == 400 and "sudah kedaluwarsa atau sudah dipakai" in again.content.decode()
    with schema_context("alpha"):
        from tenants.customers.models import Customer

        assert Customer.objects.filter(external_ref=f"email:{email}").count() == 1


def test_asking_for_links_is_throttled_per_address(shop, alpha, settings) -> None:
    settings.LOGIN_THROTTLES = ((2, 600), (100, 1))
    email = f"{unique('budi')}@example.com"
    assert shop.post("/shop/signin", {"email": email}).status_code == 200
    assert shop.post("/shop/signin", {"email": email}).status_code == 200
    refused = shop.post("/shop/signin", {"email": email})
    assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1
    assert "Terlalu banyak permintaan masuk" in refused.content.decode()
    assert len(SENT) == 2  # nothing sent for the refused one


def test_buying_units_makes_one_order_per_form_and_sends_to_the_pay_page(shop, alpha) -> None:
    sign_in(shop, f"{unique('citra')}@example.com")
    form = {"quantity": "2", "token": unique("form")}
    first = shop.post("/shop/buy", form)
    again = shop.post("/shop/buy", form)  # a double tap, or a retry after a lost answer
    assert first.status_code == again.status_code == 303
    assert first["Location"] == again["Location"]
    order_id = re.search(r"/shop/orders/(\w+)$", first["Location"])[1]
    with schema_context("alpha"):
        order = Order.objects.get(pk=order_id)
        assert Order.objects.filter(customer=order.customer).count() == 1
    page = shop.get(first["Location"]).content.decode()
    assert f'href="/pay/simulator/{order_id}"' in page
    assert "Rp\u00a0" in page and "Menunggu pembayaran Anda" in page and 'http-equiv="refresh"' in page


def test_a_purchase_pause_is_a_waiting_page_that_retries_not_an_error(shop, alpha) -> None:
    from stamping.brownout import services as brownout

    sign_in(shop, f"{unique('dewi')}@example.com")
    brownout.pause(kind="purchases", channel=alpha, reason="Deadline surge.", actor="ops")
    home = shop.get("/shop/").content.decode()
    assert 'data-testid="shop-pause"' in home
    refused = shop.post("/shop/buy", {"quantity": "1", "token": unique("form")})
    html = refused.content.decode()
    assert refused.status_code == 503 and refused["Retry-After"]
    assert "Pembelian baru dijeda" in html and "purchases_paused" in html
    assert 'http-equiv="refresh"' in html and "Traceback" not in html
    with schema_context("alpha"):
        assert not Order.objects.filter(customer__external_ref__startswith="email:dewi").exists()


def test_an_open_incident_shows_on_every_storefront_page(shop, alpha) -> None:
    from issuer.incidents import create_incident_note

    create_incident_note(title="Signing is slow", body="We are on it.", severity="major")
    assert "Signing is slow" in shop.get("/shop/").content.decode()
    sign_in(shop, f"{unique('eka')}@example.com")
    assert "Signing is slow" in shop.get("/shop/").content.decode()


def test_the_storefront_can_be_switched_off_per_channel(shop, alpha, settings) -> None:
    settings.SHOP_DISABLED_CHANNELS = ["alpha"]
    assert shop.get("/shop/").status_code == 404


# ---------------------------------------------------------------- stamping from the storefront


@pytest.fixture
def applicant(shop, alpha):
    """A signed-in applicant with 3 units in the wallet."""
    from tenants.customers.models import Customer
    from tests.billing.factories import funded_wallet

    email = f"{unique('fajar')}@example.com"
    customer_id = funded_wallet(channel_id=alpha.pk, units=3)
    with schema_context("alpha"):
        Customer.objects.create(id=customer_id, external_ref=f"email:{email}", name="Fajar", email=email)
    sign_in(shop, email)
    return customer_id


def test_an_applicant_stamps_watches_the_queue_downloads_and_finds_the_stamp(shop, alpha, applicant) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    from stamping import services as stamping
    from tests.fixtures.pdfs.factory import text_pdf

    assert "Bubuhkan dengan satu unit" in shop.get("/shop/stamp").content.decode()
    document = SimpleUploadedFile("lamaran.pdf", text_pdf(), content_type="application/pdf")
    form = {"document": document, "preset": "custom", "page": "1", "llx": "40", "lly": "40", "urx": "140", "ury": "140"}
    sent = shop.post("/shop/stamp", form)
    assert sent.status_code == 303
    job_path = sent["Location"]
    waiting = shop.get(job_path).content.decode()
    assert "Urutan Anda dalam antrean: <strong>1</strong>" in waiting and "detik" in waiting
    assert 'data-live-src="' in waiting  # live.js refreshes the part with the position
    assert quota.wallet_balance(channel_id=alpha.pk, customer_id=applicant)["held"] == 1

    with schema_context("alpha"):
        assert stamping.drain(channel=alpha, time_slice=60) == (1, False)
    done = shop.get(job_path + "?partial=1").content.decode()
    assert 'data-testid="job-done"' in done and "Unduh PDF bermeterai" in done
    pdf = shop.get(job_path + "/document")
    assert pdf["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF-")
    home = shop.get("/shop/").content.decode()
    assert "lamaran.pdf" in home and "tautan verifikasi" in home and "/v/" in home
    assert quota.wallet_balance(channel_id=alpha.pk, customer_id=applicant) == {"available": 2, "held": 0, "used": 1}

    stranger = type(shop)(HTTP_HOST="alpha.test")
    sign_in(stranger, f"{unique('gita')}@example.com")
    assert stranger.get(job_path).status_code == 404  # another applicant's stamp is not there


def test_a_full_queue_is_a_waiting_page_with_place_and_eta_that_comes_back_by_itself(
    shop, alpha, applicant, settings
) -> None:
    settings.STAMPING_CHANNEL_BACKLOG_LIMIT = 0
    page = shop.get("/shop/stamp")
    html = page.content.decode()
    assert page.status_code == 503 and int(page["Retry-After"]) >= 1
    assert 'data-testid="shop-waiting"' in html and "Urutan Anda dalam antrean" in html
    assert 'http-equiv="refresh"' in html and "url=/shop/stamp" in html and "Traceback" not in html
    assert "Bubuhkan dengan satu unit" not in html  # no form to fill while nothing would be taken


@pytest.mark.parametrize(("shop_env", "expected"), [(None, "False"), ("true", "ImproperlyConfigured")])
def test_production_keeps_the_storefront_off_without_a_real_link_sender(tmp_path, shop_env, expected) -> None:
    """Production with the documented minimal environment: no sender named, the storefront is off;
    switched on with the console sender (links only in a log), it refuses to start."""
    import os
    import subprocess
    import sys

    from tests.gateway.test_production_settings import ROOT, documented_environment

    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"), **documented_environment()}
    env["GATEWAY_DATA_DIR"] = str(tmp_path)
    if shop_env:
        env["GATEWAY_SHOP"] = shop_env
    code = "import django; django.setup(); from django.conf import settings; print(settings.SHOP_ENABLED)"
    result = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True)
    assert expected in result.stdout + result.stderr


def test_the_placement_preview_shows_the_page_to_its_uploader_only(shop, alpha, applicant) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests.fixtures.pdfs.factory import text_pdf

    document = SimpleUploadedFile("lamaran.pdf", text_pdf(), content_type="application/pdf")
    info = shop.post("/shop/stamp/preview", {"document": document, "page": "1"}).json()
    assert info["pages"] == 1 and info["page"] == 1
    assert round(info["width"]) == 595 and round(info["height"]) == 842  # A4, in points
    image = shop.get(info["image"])
    assert image.status_code == 200 and image["Content-Type"] == "image/png" and image.content[:4] == b"\x89PNG"
    refused = shop.post("/shop/stamp/preview", {"document": SimpleUploadedFile("x.pdf", b"not a pdf")})
    assert refused.status_code == 415 and refused["Content-Type"] == "application/problem+json"  # as the API

    stranger = type(shop)(HTTP_HOST="alpha.test")
    sign_in(stranger, f"{unique('hadi')}@example.com")
    assert stranger.get(info["image"]).status_code == 404


def test_a_stamp_form_sent_twice_stamps_once_and_charges_one_unit(shop, alpha, applicant) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests.fixtures.pdfs.factory import text_pdf

    token = unique("form")  # (Redis outlives the test database: a fixed token could meet an old claim)

    def send():
        document = SimpleUploadedFile("cv.pdf", text_pdf(), content_type="application/pdf")
        form = {"document": document, "preset": "custom", "page": "1", "llx": "40", "lly": "40", "urx": "140",
                "ury": "140", "token": token}  # fmt: skip
        return shop.post("/shop/stamp", form)

    first, again = send(), send()
    assert first.status_code == again.status_code == 303 and first["Location"] == again["Location"]
    assert quota.wallet_balance(channel_id=alpha.pk, customer_id=applicant)["held"] == 1


def test_a_new_applicants_link_survives_a_registration_pause(shop, alpha) -> None:
    from stamping.brownout import services as brownout

    shop.post("/shop/signin", {"email": f"{unique('indah')}@example.com"})
    path = SENT[-1]["link"].split("alpha.test", 1)[1]
    brownout.pause(kind="registrations", channel=alpha, reason="Too many sign-ups.", actor="ops")
    waiting = shop.post(path)
    assert waiting.status_code == 503 and "Pendaftaran pelanggan baru dijeda" in waiting.content.decode()
    brownout.resume(kind="registrations", channel=alpha, actor="ops")
    from stamping.brownout.selectors import forget

    forget()
    assert shop.post(path).status_code == 303  # the same link still signs in once the pause is lifted


# ---------------------------------------------------------------- the suggested empty place and its rate limit


def test_the_placement_preview_suggests_the_empty_place_the_storefront_api_suggests(
    shop, alpha, applicant, client_for
) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests.fixtures.pdfs.factory import text_pdf

    pdf = text_pdf()
    info = shop.post("/shop/stamp/preview", {"document": SimpleUploadedFile("cv.pdf", pdf), "page": "1"}).json()
    api = client_for("alpha").post("/api/v1/stamps/preview", {"document": SimpleUploadedFile("cv.pdf", pdf)})
    assert api.status_code == 200, api.content
    assert info["suggested_box"] == api.json()["suggested_box"]  # the same service, the same answer
    assert info["suggested_box_covers_content"] is False
    llx, lly, urx, ury = info["suggested_box"]
    assert 0 <= llx < urx <= info["width"] and 0 <= lly < ury <= info["height"] and urx - llx == 100
    # the page shown is the API's own rendering of it (72 dpi)
    png = shop.get(info["image"]).content
    assert png[:4] == b"\x89PNG" and int.from_bytes(png[16:20], "big") == api.json()["image"]["width"]

    refused = shop.post("/shop/stamp/preview", {"document": SimpleUploadedFile("x.pdf", b"%PDF-1.7 cut short")})
    api_refused = client_for("alpha").post(
        "/api/v1/stamps/preview", {"document": SimpleUploadedFile("x.pdf", b"%PDF-1.7 cut short")}
    )
    assert refused["Content-Type"] == "application/problem+json" and refused.json()["request_id"]
    assert (refused.status_code, refused.json()["code"]) == (api_refused.status_code, api_refused.json()["code"])


def test_without_javascript_the_box_form_is_filled_with_the_suggestion_and_the_pdf_is_kept(
    shop, alpha, applicant
) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    from issuer.checks import preview_document
    from stamping.models import StampJob
    from tests.fixtures.pdfs.factory import text_pdf

    pdf = text_pdf()
    expected = preview_document(data=pdf, page=1)["suggested_box"]
    form = {"document": SimpleUploadedFile("surat.pdf", pdf), "preset": "cpns", "page": "1", "suggest": "1"}
    page = shop.post("/shop/stamp", form)
    html = page.content.decode()
    assert page.status_code == 200 and 'data-testid="shop-suggestion"' in html and "surat.pdf" in html
    filled = [float(re.search(rf'name="{n}" value="([^"]+)"', html).group(1)) for n in ("llx", "lly", "urx", "ury")]
    assert filled == expected
    assert re.search(r'name="preset" value="custom"[^>]*checked', html)
    token = re.search(r'name="preview" value="([^"]+)"', html).group(1)
    assert f"/shop/stamp/preview/{token}/1.png" in html  # the page, with the place drawn on it

    # The applicant only presses "stamp": the kept PDF, the filled-in box.
    box = dict(zip(("llx", "lly", "urx", "ury"), (f"{v:g}" for v in expected), strict=True))
    sent = shop.post("/shop/stamp", {"preset": "custom", "page": "1", "preview": token, "token": unique("f"), **box})
    assert sent.status_code == 303, sent.content.decode()[:2000]
    with schema_context("alpha"):
        job = StampJob.objects.get(pk=sent["Location"].rsplit("/", 1)[1])
    assert [job.llx, job.lly, job.urx, job.ury] == expected and job.file_name == "surat.pdf"

    stranger = type(shop)(HTTP_HOST="alpha.test")
    sign_in(stranger, f"{unique('joko')}@example.com")
    theirs = stranger.post("/shop/stamp", {"preset": "custom", "page": "1", "preview": token, **box})
    assert theirs.status_code == 400  # another applicant's kept PDF is not theirs to stamp


@pytest.fixture
def fresh_preview_buckets(settings):
    import uuid

    settings.RATE_LIMIT_NAMESPACE = f"shop-preview-{uuid.uuid4().hex}"
    return settings


def test_previews_are_rate_limited_per_applicant_with_a_429_problem_and_a_friendly_page(
    shop, alpha, applicant, fresh_preview_buckets
) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests.fixtures.pdfs.factory import text_pdf

    fresh_preview_buckets.SHOP_PREVIEW_RATE_LIMITS = ((1, 2), (1000, 1000))  # a burst of 2 per applicant
    pdf = text_pdf()

    def preview(client):
        return client.post("/shop/stamp/preview", {"document": SimpleUploadedFile("cv.pdf", pdf)})

    first = preview(shop)
    assert first.status_code == 200 and preview(shop).status_code == 200
    refused = preview(shop)
    assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1
    assert refused["Content-Type"] == "application/problem+json" and refused.json()["code"] == "rate_limited"
    assert refused.json()["title"] == "Terlalu banyak permintaan" and refused["RateLimit"]
    page = shop.get(first.json()["image"], HTTP_ACCEPT="text/html,*/*")  # a page asked for: the friendly one
    assert page.status_code == 429 and int(page["Retry-After"]) >= 1
    html = page.content.decode()
    assert 'data-testid="shop-refused"' in html and "rate_limited" in html and "url=/shop/stamp" in html
    form = {"document": SimpleUploadedFile("cv.pdf", pdf), "preset": "custom", "page": "1", "suggest": "1"}
    without_script = shop.post("/shop/stamp", form, HTTP_ACCEPT="text/html")  # "find an empty place" too
    assert without_script.status_code == 429 and 'data-testid="shop-refused"' in without_script.content.decode()

    other = type(shop)(HTTP_HOST="alpha.test")  # another applicant at the same address has their own bucket
    sign_in(other, f"{unique('kiki')}@example.com")
    assert preview(other).status_code == 200


def test_previews_are_rate_limited_per_client_address(shop, alpha, applicant, fresh_preview_buckets) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests.fixtures.pdfs.factory import text_pdf

    fresh_preview_buckets.SHOP_PREVIEW_RATE_LIMITS = ((1000, 1000), (1, 2))  # a burst of 2 per address
    pdf = text_pdf()

    def preview(client, address="127.0.0.1"):
        return client.post("/shop/stamp/preview", {"document": SimpleUploadedFile("cv.pdf", pdf)}, REMOTE_ADDR=address)

    assert preview(shop).status_code == 200
    other = type(shop)(HTTP_HOST="alpha.test")
    sign_in(other, f"{unique('lina')}@example.com")
    assert preview(other).status_code == 200
    refused = preview(shop)  # a third from the address, whoever is signed in
    assert refused.status_code == 429 and refused.json()["code"] == "rate_limited"
    assert preview(other, "198.51.100.7").status_code == 200  # another address still may
