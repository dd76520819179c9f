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
PORTAL = [
    "/", "/customers/", "/orders/", "/stamps/", "/keys/", "/webhooks/", "/compat-users/",
    "/team/", "/topups/", "/statements/",  # the channel's lifecycle: members and roles, top-ups, statements
]  # fmt: skip
BACKOFFICE = [
    "/backoffice/", "/backoffice/audit/", "/backoffice/brownout/", "/backoffice/deposits/",
    "/backoffice/reconciliation/", "/backoffice/settlement/", "/backoffice/serials/", "/backoffice/incidents/",
    "/backoffice/channels/", "/backoffice/channels/new", "/backoffice/channels/alpha/",
]  # fmt: skip
SIGNED_OUT = ["/login/", "/password-reset/"]  # on a channel's host
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


def lifecycle_rows() -> dict:
    """Rows the lifecycle pages list, with the long words a phone has to wrap: a member with a long
    address, a top-up request waiting for the issuer (portal top-ups, back-office deposits), a channel
    being onboarded and one whose onboarding failed with a long error. Returns the onboarding ids."""
    import secrets

    from django.contrib.auth import get_user_model
    from django.utils import timezone
    from django_tenants.utils import schema_context

    from billing.topups import request_topup
    from tenants.members.models import Member, Role
    from tenants.models import Channel, Onboarding

    alpha = Channel.objects.get(code="alpha")
    email = f"{unique('finance.department.of.a.long.company.name')}@subsidiary.example.co.id"
    with schema_context("alpha"):
        user = get_user_model().objects.create_user(email, email=email, password=secrets.token_urlsafe(12))
        Member.objects.create(user=user, email=email, role=Role.FINANCE, joined_at=timezone.now())
    request_topup(
        channel=alpha, units=1250, transfer_reference=unique("BCA-TRANSFER-REFERENCE-0000123456789"),
        proof_name="bukti-transfer-bank-central-asia-november.pdf", proof=b"%PDF-1.4\n%%EOF\n", requested_by=email,
    )  # fmt: skip
    rows = {}
    for state, error in (("queued", ""), ("failed", "psycopg.errors.DuplicateSchema: " + "x" * 180)):
        code = f"fit{secrets.token_hex(4)}"
        rows[state] = Onboarding.objects.create(
            code=code, name=f"Koperasi Pegawai Negeri {code}", hosts=[f"{code}.test", f"portal.{code}.example.co.id"],
            settings={"price_fee": 1500, "stamping_concurrency": 2}, owner_email=f"owner.{code}@example.co.id",
            portal_url=f"http://{code}.test/", requested_by="phone-fit", state=state, step="Waiting for a worker",
            error=error,
        ).pk  # fmt: skip
    return rows


def test_portal_pages_fit_a_phone(live_db, phone, site, shots):
    lifecycle_rows()
    page = phone
    wide = []
    for path in SIGNED_OUT:
        page.goto(site("alpha", path))
        wide += overflow(page)
        page.screenshot(path=str(shots / f"phone-portal{path.replace('/', '-')}.png"), full_page=True)
    page.goto(site("alpha", "/login/"))
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("portal-pass-123")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"alpha\.test:\d+/$"))
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

    onboarding = lifecycle_rows()
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
    onboarding_pages = [f"/backoffice/channels/onboarding/{pk}/" for pk in onboarding.values()]
    for path in BACKOFFICE + onboarding_pages + PUBLIC:
        page.goto(site(None, path))
        wide += overflow(page)
        page.screenshot(path=str(shots / f"phone-issuer{path.replace('/', '-')}.png"), full_page=True)
    assert not wide, wide
    page.goto(site(None, "/lang/id?next=/backoffice/"))  # Indonesian words are longer: the same pages again
    for path in BACKOFFICE + onboarding_pages + PUBLIC:
        page.goto(site(None, path))
        assert page.locator("html").get_attribute("lang") == "id"
        wide += overflow(page)
        page.screenshot(path=str(shots / f"phone-issuer-id{path.replace('/', '-')}.png"), full_page=True)
    assert not wide, wide
