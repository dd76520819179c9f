"""The applicant's journey on the reference storefront in a real browser, on a phone (390 px) in
Indonesian and on a desktop (1280 px) in English, against the real gunicorn and a real Celery worker
(it delivers the simulator's payment and stamps the document): sign in with a one-time link, buy units
on the pay page, stamp a PDF, watch it finish, download it, find it with its verification link. Every
page visited must fit the screen (``scrollWidth <= innerWidth``).

Screenshots of each step: ``E2E_SCREENSHOT_DIR=/tmp/shop-shots .venv/bin/python -m pytest
tests/e2e/browser/test_shop.py -p no:cacheprovider -s`` (docs/translating.md).
"""

from __future__ import annotations

import re

import pytest

from billing import quota
from tests.billing.factories import unique
from tests.fixtures.pdfs.factory import text_pdf

pytestmark = pytest.mark.slow

TEXT = {
    "id": {
        "title": "Bubuhkan e-Meterai pada dokumen Anda",
        "send": "Kirimi saya tautan masuk",
        "sent": "Periksa e-mail Anda",
        "signin": "Masuk sekarang",
        "mine": "e-Meterai Anda",
        "buy": "Beli",
        "pay": "Bayar sekarang",
        "credited": "Unit sudah masuk ke saldo Anda",
        "stamp": "Bubuhkan meterai pada dokumen",
        "stamp_button": "Bubuhkan dengan satu unit",
        "other": "Dokumen lain",
        "place": "Tentukan sendiri letak meterai",
        "done": "Unduh PDF bermeterai",
        "verify": "tautan verifikasi",
    },
    "en": {
        "title": "Stamp your document with an e-Meterai",
        "send": "Send me a sign-in link",
        "sent": "Check your e-mail",
        "signin": "Sign in now",
        "mine": "Your e-Meterai",
        "buy": "Buy",
        "pay": "Pay now",
        "credited": "The units are in your balance",
        "stamp": "Stamp a document",
        "stamp_button": "Stamp with one unit",
        "other": "Another document",
        "place": "Place the stamp yourself",
        "done": "Download the stamped PDF",
        "verify": "verification link",
    },
}


def assert_fits(page) -> None:
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"{page.url} is {width[0]} px wide in a {width[1]} px window"


@pytest.mark.parametrize(("language", "width"), [("id", 390), ("en", 1280)])
def test_the_applicants_journey(live_db, browser, site, shots, gateway_url, stamping_worker, tmp_path, language, width):
    from django.test import override_settings
    from django_tenants.utils import schema_context
    from playwright.sync_api import expect

    from faces.shop import signin
    from tenants.models import Channel

    alpha = Channel.objects.get(code="alpha")
    quota.allocate_stock(channel_id=alpha.pk, units=10, reference=unique("dep"))
    text = TEXT[language]
    context = browser.new_context(
        viewport={"width": width, "height": 844}, locale="id-ID" if language == "id" else "en-GB"
    )
    context.set_default_timeout(20_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    step = iter(range(1, 100))

    def shoot(name: str) -> None:
        assert_fits(page)
        page.screenshot(path=str(shots / f"shop-{language}-{width}-{next(step):02d}-{name}.png"), full_page=True)

    try:
        page.goto(site("alpha", "/shop/"))
        expect(page.get_by_role("heading", name=text["title"])).to_be_visible()
        shoot("sign-in")
        email = f"{unique('ayu')}@example.com"
        page.get_by_role("textbox").fill(email)
        page.get_by_role("button", name=text["send"]).click()
        expect(page.get_by_role("heading", name=text["sent"])).to_be_visible()
        shoot("link-sent")

        # The server's sender is the console; the test makes a link the same way (same Redis) and opens it.
        links: list[str] = []
        with override_settings(SHOP_LINK_SENDER="tests.e2e.browser.test_shop.keep"), schema_context("alpha"):
            KEPT.clear()
            signin.send_link(
                channel=alpha, email=email, build_link=lambda token: site("alpha", f"/shop/signin/{token}")
            )
            links.extend(KEPT)
        page.goto(links[0])
        page.get_by_role("button", name=text["signin"]).click()
        expect(page.get_by_role("heading", name=text["mine"])).to_be_visible()
        shoot("signed-in")

        page.get_by_text(re.compile(r"^\s*2 unit")).click()
        page.get_by_role("button", name=text["buy"], exact=True).click()
        expect(page).to_have_url(re.compile(r"/shop/orders/\w+$"))
        order_url = page.url
        shoot("order")
        page.get_by_role("link", name=text["pay"]).click()
        page.get_by_role("button", name=re.compile(r"^(Pay|Bayar) Rp")).click()  # the simulator's own page
        page.goto(order_url)
        expect(page.get_by_text(text["credited"])).to_be_visible(timeout=60_000)  # the order page reloads itself
        shoot("paid")

        pdf = tmp_path / "lamaran.pdf"
        pdf.write_bytes(text_pdf())
        page.goto(site("alpha", "/shop/stamp"))
        shoot("stamp-form")
        page.locator("input[type=file]").set_input_files(str(pdf))
        preview = page.locator("#placement-page")
        expect(preview).to_be_visible()  # static/js/placement.js: the page, rendered by the server
        expect(preview).to_have_js_property("complete", True)
        preview.evaluate("el => el.scrollIntoView({block: 'start'})")
        shown = preview.bounding_box()
        if width < 600:  # a tap near the bottom-left corner: a 100 pt box there, kept inside the page
            preview.click(position={"x": shown["width"] * 0.1, "y": shown["height"] * 0.9})
        else:  # a drag with the mouse from (20%, 30%) to (35%, 40%) of the page (in view)
            page.mouse.move(shown["x"] + shown["width"] * 0.2, shown["y"] + shown["height"] * 0.3)
            page.mouse.down()
            page.mouse.move(shown["x"] + shown["width"] * 0.35, shown["y"] + shown["height"] * 0.4, steps=5)
            page.mouse.up()
        expect(page.locator("#placement-box")).to_be_visible()
        box = [float(page.locator(f"input[name={n}]").input_value()) for n in ("llx", "lly", "urx", "ury")]
        assert 0 <= box[0] < box[2] <= 596 and 0 <= box[1] < box[3] <= 842 and box[2] - box[0] >= 20, box
        expect(page.get_by_label(text["other"])).to_be_checked()
        shoot("placed")
        page.get_by_role("button", name=text["stamp_button"]).click()
        expect(page).to_have_url(re.compile(r"/shop/stamps/\w+$"))
        shoot("queued")
        expect(page.get_by_role("link", name=text["done"])).to_be_visible(timeout=90_000)  # live.js
        shoot("stamped")
        with page.expect_download() as download:
            page.get_by_role("link", name=text["done"]).click()
        assert download.value.suggested_filename.startswith("lamaran-")

        page.goto(site("alpha", "/shop/"))
        expect(page.get_by_role("link", name=text["verify"])).to_be_visible()
        shoot("my-stamps")

        for path in ("/verify", "/status"):  # the public pages fit too
            page.goto(site(None, path))
            assert_fits(page)
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


KEPT: list[str] = []


def keep(*, channel, email: str, link: str) -> None:
    KEPT.append(link)
