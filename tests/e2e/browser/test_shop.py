"""The applicant's journey on the reference storefront in a real browser, on a phone (390 px) in
Indonesian and on a desktop (1280 px) in English, against the real gunicorn and a real Celery worker
(it delivers the simulator's payment and stamps the document): sign in with a one-time link, buy units
on the pay page, stamp a PDF, watch it finish, download it, find it with its verification link. Every
page visited must fit the screen (``scrollWidth <= innerWidth``).

Screenshots of each step: ``E2E_SCREENSHOT_DIR=/tmp/shop-shots .venv/bin/python -m pytest
tests/e2e/browser/test_shop.py -p no:cacheprovider -s`` (docs/shop.md, "Screenshots").
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
        page.evaluate("window.scrollTo(0, 0)")  # (a full-page shot of a scrolled page draws the sticky header mid-page)
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


def applicant_with_one_unit(tag: str, name: str):
    """A storefront applicant of alpha (signed in by e-mail) with one unit: (alpha, e-mail, customer id)."""
    from django_tenants.utils import schema_context

    from tenants.customers.models import Customer
    from tenants.models import Channel
    from tests.billing.factories import funded_wallet

    alpha = Channel.objects.get(code="alpha")
    email = f"{unique(tag)}@example.com"
    customer_id = funded_wallet(channel_id=alpha.pk, units=1)
    with schema_context("alpha"):
        Customer.objects.create(id=customer_id, external_ref=f"email:{email}", name=name, email=email)
    return alpha, email, customer_id


def sign_in(page, site, channel, email: str) -> None:
    """Sign ``page`` in to ``channel``'s storefront as ``email`` with a one-time link made as the server
    makes it (same Redis), as in the journey above."""
    from django.test import override_settings
    from django_tenants.utils import schema_context

    from faces.shop import signin

    with override_settings(SHOP_LINK_SENDER="tests.e2e.browser.test_shop.keep"), schema_context(channel.code):
        KEPT.clear()
        signin.send_link(
            channel=channel, email=email, build_link=lambda token: site(channel.code, f"/shop/signin/{token}")
        )
        link = KEPT[0]
    page.goto(link)
    page.locator("form[method=post] button[type=submit]").last.click()
    page.wait_for_url(re.compile(r"/shop/$"))


def choose_document_to_stamp(page, site, channel, email: str, pdf, data: bytes) -> None:
    """Signed in as ``email``, on the stamp page with ``data`` (written to ``pdf``) chosen for upload."""
    sign_in(page, site, channel, email)
    pdf.write_bytes(data)
    page.goto(site(channel.code, "/shop/stamp"))
    page.locator("input[type=file]").set_input_files(str(pdf))


@pytest.mark.parametrize("pointer", ["touch", "mouse"])
def test_a_stamp_dropped_near_the_suggested_empty_place_snaps_to_it(live_db, browser, site, shots, tmp_path, pointer):
    """The stamp form shows the suggested empty place (the storefront API's dry run: ``box=auto``'s
    choice); a stamp tapped (phone) or dragged (mouse) next to it lands exactly on it, and that is the
    box the stamp request carries."""
    from django_tenants.utils import schema_context
    from playwright.sync_api import expect

    from issuer.checks import preview_document
    from stamping.models import StampJob

    alpha, email, customer_id = applicant_with_one_unit("snap", "Snap")
    data = text_pdf()
    dry_run = preview_document(data=data, page=1)
    suggested = dry_run["suggested_box"]
    width, height = dry_run["page_sizes"][0]["width"], dry_run["page_sizes"][0]["height"]
    phone = pointer == "touch"
    context = browser.new_context(
        viewport={"width": 390, "height": 844} if phone else {"width": 1280, "height": 860},
        locale="en-GB", has_touch=phone, is_mobile=phone,
    )  # fmt: skip
    context.set_default_timeout(20_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        choose_document_to_stamp(page, site, alpha, email, tmp_path / "surat.pdf", data)
        shown_page = page.locator("#placement-page")
        expect(page.locator("#placement-suggestion")).to_be_visible()  # the dashed empty place
        page.wait_for_function(
            "() => { const i = document.getElementById('placement-page'); return i.complete && i.naturalWidth > 0; }"
        )  # (an <img> without src is complete too)
        filled = [float(page.locator(f"input[name={n}]").input_value()) for n in ("llx", "lly", "urx", "ury")]
        assert filled == suggested  # the box form is filled in with it as soon as it is known
        shown_page.evaluate("el => el.scrollIntoView({block: 'center'})")
        shown = shown_page.bounding_box()

        def at(x_pt: float, y_pt: float) -> tuple[float, float]:  # a point of the page, in the window
            return shown["x"] + x_pt / width * shown["width"], shown["y"] + (height - y_pt) / height * shown["height"]

        llx, lly, urx, ury = suggested
        middle = (lly + ury) / 2
        if phone:  # a tap 25 pt left of the empty place: a stamp centred there would overlap it
            page.touchscreen.tap(*at(llx - 25, middle))
        else:  # a drag from above-left of it to inside it: a box centred next to its left edge
            page.mouse.move(*at(llx - 60, ury + 20))
            page.mouse.down()
            page.mouse.move(*at(llx + 30, lly + 10), steps=5)
            page.mouse.up()
        expect(page.locator("#placement-snapped")).to_be_visible()
        placed = [float(page.locator(f"input[name={n}]").input_value()) for n in ("llx", "lly", "urx", "ury")]
        assert placed == suggested
        assert_fits(page)
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(shots / f"shop-snap-{pointer}.png"), full_page=True)
        page.get_by_role("button", name="Stamp with one unit").click()
        expect(page).to_have_url(re.compile(r"/shop/stamps/\w+$"))
        with schema_context("alpha"):
            job = StampJob.objects.get(pk=page.url.rsplit("/", 1)[1])
        assert [job.llx, job.lly, job.urx, job.ury] == suggested  # the box the stamp request carried
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def test_without_javascript_find_an_empty_place_fills_the_box_and_keeps_the_pdf(
    live_db, browser, site, shots, tmp_path
):
    """No script on a phone: "Find an empty place" shows the page with the suggested place and fills the
    box form with it; the PDF is kept, so "stamp" sends that box without choosing the file again."""
    from django_tenants.utils import schema_context
    from playwright.sync_api import expect

    from issuer.checks import preview_document
    from stamping.models import StampJob

    alpha, email, customer_id = applicant_with_one_unit("nojs", "No script")
    data = text_pdf()
    suggested = preview_document(data=data, page=1)["suggested_box"]
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="id-ID", java_script_enabled=False)
    context.set_default_timeout(20_000)
    page = context.new_page()
    try:
        choose_document_to_stamp(page, site, alpha, email, tmp_path / "pernyataan.pdf", data)
        page.get_by_text(TEXT["id"]["place"]).click()  # the box form (a <details>)
        page.get_by_role("button", name="Cari tempat kosong").click()
        expect(page.get_by_test_id("shop-suggestion")).to_contain_text("pernyataan.pdf")
        filled = [float(page.locator(f"input[name={n}]").input_value()) for n in ("llx", "lly", "urx", "ury")]
        assert filled == suggested
        assert_fits(page)
        page.screenshot(path=str(shots / "shop-nojs-suggested.png"), full_page=True)
        page.get_by_role("button", name=TEXT["id"]["stamp_button"]).click()
        expect(page).to_have_url(re.compile(r"/shop/stamps/\w+$"))
        with schema_context("alpha"):
            job = StampJob.objects.get(pk=page.url.rsplit("/", 1)[1])
        assert [job.llx, job.lly, job.urx, job.ury] == suggested and job.file_name == "pernyataan.pdf"
    finally:
        context.close()


KEPT: list[str] = []


def keep(*, channel, email: str, link: str) -> None:
    KEPT.append(link)
