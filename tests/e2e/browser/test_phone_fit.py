"""Every page of the portal, the back office, verification and status fits a 390 px phone: nothing wider
than the window (``scrollWidth <= innerWidth``); wide tables scroll inside themselves; every item of
the main navigation can be reached. The portal and back office pages are visited in English and again
in Indonesian (longer words)."""

from __future__ import annotations

import re

import pytest

from tests.billing.factories import unique

pytestmark = pytest.mark.slow

PHONE = {"width": 390, "height": 844}
PORTAL = ["/", "/customers/", "/orders/", "/stamps/", "/keys/", "/webhooks/", "/compat-users/"]
BACKOFFICE = [
    "/backoffice/", "/backoffice/audit/", "/backoffice/brownout/", "/backoffice/deposits/",
    "/backoffice/reconciliation/", "/backoffice/settlement/", "/backoffice/serials/", "/backoffice/incidents/",
]  # fmt: skip
PUBLIC = ["/", "/verify", "/status", "/v/2C5NV74I6D0HJ1EZ000DU8"]


def overflow(page) -> list[str]:
    """What is wider than the window (empty when the page fits)."""
    return page.evaluate(
        """() => {
          const w = window.innerWidth;
          if (document.documentElement.scrollWidth <= w) return [];
          return [`${location.pathname}: ${document.documentElement.scrollWidth} px`].concat(
            Array.from(document.querySelectorAll('body *'))
              .filter(el => el.getBoundingClientRect().right > w + 1)
              .filter(el => !el.parentElement.closest('.table-wrap, .mainnav'))
              .slice(0, 8)
              .map(el => el.tagName + '.' + el.className + ' ' + Math.round(el.getBoundingClientRect().right)));
        }"""
    )


@pytest.fixture
def phone(browser):
    context = browser.new_context(viewport=PHONE, locale="en-GB")
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def test_portal_pages_fit_a_phone(live_db, phone, site, shots):
    page = phone
    page.goto(site("alpha", "/login/"))
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("portal-pass-123")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"alpha\.test:\d+/$"))
    wide = []
    for path in PORTAL:
        page.goto(site("alpha", path))
        wide += overflow(page)
        page.screenshot(path=str(shots / f"phone-portal{path.replace('/', '-')}.png"), full_page=True)
    assert not wide, wide
    for label in ("API keys", "Webhooks"):  # the nav reaches every page on a phone
        link = page.locator(".mainnav").get_by_role("link", name=label)
        link.scroll_into_view_if_needed()
        assert link.is_visible()
    page.goto(site("alpha", "/lang/id?next=/"))  # Indonesian words are longer: the same pages again
    for path in PORTAL:
        page.goto(site("alpha", path))
        assert page.locator("html").get_attribute("lang") == "id"
        wide += overflow(page)
        page.screenshot(path=str(shots / f"phone-portal-id{path.replace('/', '-')}.png"), full_page=True)
    assert not wide, wide


def test_backoffice_and_public_pages_fit_a_phone(live_db, phone, site, shots):
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from tests.staff_helpers import make_staff, totp_code

    username, password = unique("staff"), "correct horse battery 9"
    make_staff(username, password=password, groups=("Stock recorders", "Stock approvers"), device=True)
    page = phone
    page.goto(site(None, "/backoffice/"))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/backoffice/login/code/"))
    page.get_by_label("Code", exact=True).fill(totp_code(TOTPDevice.objects.get(user__username=username)))
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url(re.compile(r"/backoffice/$"))
    wide = []
    for path in BACKOFFICE + PUBLIC:
        page.goto(site(None, path))
        wide += overflow(page)
        page.screenshot(path=str(shots / f"phone-issuer{path.replace('/', '-')}.png"), full_page=True)
    assert not wide, wide
    page.goto(site(None, "/lang/id?next=/backoffice/"))  # Indonesian words are longer: the same pages again
    for path in BACKOFFICE:
        page.goto(site(None, path))
        assert page.locator("html").get_attribute("lang") == "id"
        wide += overflow(page)
        page.screenshot(path=str(shots / f"phone-issuer-id{path.replace('/', '-')}.png"), full_page=True)
    assert not wide, wide
