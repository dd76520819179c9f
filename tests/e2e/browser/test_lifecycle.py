"""Channels run from the portals, in a real browser against the real gunicorn and a Celery worker:
issuer staff create a channel and its owner joins by the invitation and signs in on the channel's
host; the owner invites a developer who can create a key but not see statements; a top-up request is
confirmed by two issuer staff and the stock rises by exactly its units; the statement's totals equal
the settlement report's for the month."""

from __future__ import annotations

import re
import secrets
import time
from pathlib import Path

import pytest

from tests.billing.factories import unique
from tests.e2e.browser.test_backoffice import _available, _sign_in, _sign_out, _staff

pytestmark = pytest.mark.slow

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\n%%EOF\n"


def _mail_link(to: str, kind: str, *, timeout: float = 30) -> str:
    """The one-time link of the newest mail to ``to`` that the live server wrote (its file backend)."""
    from django.conf import settings

    folder = Path(settings.EMAIL_FILE_PATH)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        files = sorted(folder.glob("*.log"), key=lambda f: f.stat().st_mtime, reverse=True) if folder.exists() else []
        for file in files:
            text = file.read_text(errors="replace")
            if f"To: {to}" in text:
                found = re.findall(rf"(http://\S+/{kind}/[A-Za-z0-9_-]+/)", text)
                if found:
                    return found[-1]
        time.sleep(0.5)
    raise AssertionError(f"no {kind} mail to {to} in {folder}")


def _portal_sign_in(page, url: str, username: str, password: str) -> None:
    page.goto(url)
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def _set_password(page, link: str, password: str) -> None:
    page.goto(link)
    page.get_by_label("New password", exact=True).fill(password)
    page.get_by_label("New password again").fill(password)
    page.get_by_role("button", name="Set password").click()
    page.wait_for_url(re.compile(r"/login/$"))


def test_staff_create_a_channel_its_owner_joins_and_invites_a_developer(
    live_db, stamping_worker, page, browser, site, port, shoot, shots
):
    from playwright.sync_api import expect

    staff = _staff("staff-pass-123")
    code = f"e2e{secrets.token_hex(4)}"
    host = f"{code}.test"
    owner_email = f"owner-{code}@example.id"
    _sign_in(page, site, staff, "staff-pass-123")
    page.locator("nav.mainnav").get_by_role("link", name="Channels", exact=True).click()
    page.get_by_role("link", name="New channel").click()
    page.get_by_label("Code").fill(code)
    page.get_by_label("Name").fill(f"Pos {code}")
    page.get_by_label("Hosts").fill(host)
    page.get_by_label("Owner's e-mail").fill(owner_email)
    page.get_by_label("Price: service fee per unit (Rp)").fill("1500")
    page.get_by_label("Stamping share (documents at once)").fill("2")
    page.get_by_role("button", name="Create channel").click()
    page.wait_for_url(re.compile(r"/backoffice/channels/onboarding/\d+/$"))
    expect(page.locator("#onboarding-progress")).to_have_attribute("data-live-on", "true")
    shoot("backoffice-onboarding-progress")
    # The page follows the worker by itself (static/js/live.js); no reload here.
    expect(page.locator('[data-testid="onboarding-state"]')).to_have_attribute("data-state", "ready", timeout=120_000)
    shoot("backoffice-onboarding-ready")

    owner = browser.new_context(viewport={"width": 1280, "height": 860}).new_page()
    link = _mail_link(owner_email, "join")
    assert link.startswith(f"http://{host}:{port}/join/")
    _set_password(owner, link, "owner-pass-123")
    _portal_sign_in(owner, f"http://{host}:{port}/login/", owner_email, "owner-pass-123")
    owner.wait_for_url(f"http://{host}:{port}/")
    expect(owner.locator("body")).to_contain_text(f"Pos {code}")  # the channel's own portal
    owner.screenshot(path=str(shots / "portal-owner-dashboard.png"), full_page=True)

    developer_email = f"dev-{code}@example.id"
    owner.goto(f"http://{host}:{port}/team/")
    owner.get_by_label("Email").fill(developer_email)
    owner.get_by_label("Role", exact=True).select_option("developer")
    owner.get_by_role("button", name="Send invitation").click()
    expect(owner.locator(".msg.success")).to_contain_text("invited as developer")

    developer = browser.new_context(viewport={"width": 1280, "height": 860}).new_page()
    _set_password(developer, _mail_link(developer_email, "join"), "dev-pass-1234")
    _portal_sign_in(developer, f"http://{host}:{port}/login/?next=/keys/", developer_email, "dev-pass-1234")
    developer.wait_for_url(re.compile(r"/keys/$"))
    developer.get_by_label("Name").fill("Backend")
    developer.get_by_role("button", name="Create key").click()
    expect(developer.locator('[data-testid="new-key"]')).to_be_visible()
    developer.screenshot(path=str(shots / "portal-developer-key.png"), full_page=True)
    refused = developer.goto(f"http://{host}:{port}/statements/")
    assert refused.status == 403
    assert "role_refused" in developer.content()
    developer.context.close()
    owner.context.close()


def test_a_top_up_is_confirmed_by_two_staff_and_the_statement_matches_the_settlement_report(
    live_db, page, browser, site, shoot, shots
):
    from django.contrib.auth import get_user_model
    from django.utils import timezone
    from django_tenants.utils import schema_context
    from playwright.sync_api import expect

    from billing.statements import month_days
    from tenants.members.models import Member, Role

    email = f"{unique('finance')}@example.id"
    with schema_context("alpha"):
        user = get_user_model().objects.create_user(email, email=email, password="fin-pass-1234")
        Member.objects.create(user=user, email=email, role=Role.FINANCE, joined_at=timezone.now())
    maker = _staff("maker-pass-123", groups=("Stock recorders",))
    checker = _staff("checker-pass-123", groups=("Stock approvers",))

    finance = browser.new_context(viewport={"width": 1280, "height": 860}).new_page()
    _portal_sign_in(finance, site("alpha", "/login/?next=/topups/"), email, "fin-pass-1234")
    finance.wait_for_url(re.compile(r"/topups/$"))
    reference = unique("BCA")
    finance.get_by_label("Units").fill("375")
    finance.get_by_label("Transfer reference").fill(reference)
    finance.get_by_label("Proof of transfer").set_input_files(
        files=[{"name": "transfer.pdf", "mimeType": "application/pdf", "buffer": PDF}]
    )
    finance.get_by_role("button", name="Send request").click()
    expect(finance.locator(".msg.success")).to_contain_text("375 units is sent to the issuer")
    row = finance.locator("#topups tbody tr").first
    expect(row.locator("[data-state]")).to_have_attribute("data-state", "requested")
    request_id = row.get_attribute("data-topup")

    _sign_in(page, site, maker, "maker-pass-123")
    page.locator("nav.mainnav").get_by_role("link", name="Deposits", exact=True).click()
    before = _available(page, "alpha")
    page.get_by_role("button", name=f"Record top-up {request_id}").click()
    expect(page.locator(".msg.success")).to_contain_text(f"Top-up request {request_id} recorded")
    shoot("backoffice-topup-recorded")
    _sign_out(page)

    _sign_in(page, site, checker, "checker-pass-123")
    page.locator("nav.mainnav").get_by_role("link", name="Deposits", exact=True).click()
    deposit_reference = f"topup-{request_id}-{reference}"
    deposit_row = page.locator(f'tr[data-reference="{deposit_reference}"]')
    deposit_row.get_by_role("button", name=re.compile("Confirm")).click()
    expect(page.locator(".msg.success")).to_contain_text("375 units allocated to Alpha Channel")
    assert _available(page, "alpha") == before + 375

    finance.reload()
    state = finance.locator(f'tr[data-topup="{request_id}"] [data-state]')
    expect(state).to_have_attribute("data-state", "confirmed")

    # The statement of this month, and the issuer's settlement report for the same days.
    finance.goto(site("alpha", "/statements/"))
    columns = ("allocated", "sold", "used", "refunded", "net_sold")
    ours = {key: finance.locator(f'[data-testid="{key}"]').inner_text() for key in columns}
    finance.screenshot(path=str(shots / "portal-statement.png"), full_page=True)
    first, last = month_days(timezone.localdate().year, timezone.localdate().month)
    page.goto(site(None, f"/backoffice/settlement/?date_from={first}&date_to={last}"))
    cells = page.locator("#settlement tbody tr[data-channel=alpha] td").all_inner_texts()
    theirs = dict(zip(columns, cells[:5], strict=True))
    assert ours == theirs
    duty = finance.locator('[data-testid="duty_due_rupiah"]').inner_text()
    assert re.sub(r"\D", "", duty) == re.sub(r"\D", "", cells[5])
    finance.context.close()


def test_the_new_pages_run_under_the_content_security_policy(live_db, page, site):
    from tests.e2e.browser.test_portal import _sign_in as portal_sign_in

    seen: list[str] = []
    page.on("console", lambda msg: seen.append(msg.text) if "Content Security Policy" in msg.text else None)
    portal_sign_in(page, site)  # alpha's owner (the shared admin login of before became its owner)
    for path in ("/team/", "/topups/", "/statements/"):
        assert page.goto(site("alpha", path)).status == 200, path
    staff = _staff("staff-pass-123")
    _sign_in(page, site, staff, "staff-pass-123")
    for path in ("/backoffice/channels/", "/backoffice/channels/new", "/backoffice/channels/alpha/"):
        assert page.goto(site(None, path)).status == 200, path
    page.goto(site("alpha", "/password-reset/"))
    assert seen == []
