"""Issuer staff need a TOTP code after the password; enrolment shows a QR code and the secret; staff
sessions end after the idle and absolute limits. Codes are computed from the device's key."""

from __future__ import annotations

import time

import pytest
from django.core.management import call_command
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from conftest import ISSUER_HOST
from faces.backoffice.views import SIGNED_IN_AT
from staff.models import AuditEntry
from tests.staff_helpers import make_staff, office_client, totp_code

pytestmark = pytest.mark.django_db


def password_step(username: str) -> Client:
    client = Client(HTTP_HOST=ISSUER_HOST)
    response = client.post("/backoffice/login/", {"username": username, "password": "staff-pass-123"})
    assert response.status_code == 302 and response["Location"] == "/backoffice/login/code/"
    return client


def test_a_new_staff_member_enrols_with_the_qr_code_and_its_first_code(settings):
    settings.BACKOFFICE_OTP_SELF_ENROL = True
    user = make_staff("newbie", device=False)
    client = password_step("newbie")
    assert client.get("/backoffice/login/code/")["Location"] == "/backoffice/login/enrol/?next=%2Fbackoffice%2F"
    page = client.get("/backoffice/login/enrol/")
    assert page.status_code == 200
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    html = page.content.decode()
    assert "<svg" in html and html.count("<rect") > 20  # the QR code, drawn here (no image service)
    secret = device.config_url.split("secret=")[1][:32]
    assert f"otpauth://totp/e-Meterai%20back%20office%3Anewbie?secret={secret}" in html
    assert "style=" not in html and "<script>" not in html  # CSP-clean page
    assert client.get("/backoffice/").status_code == 302  # not yet

    wrong = client.post("/backoffice/login/enrol/", {"token": "123456"})
    assert wrong.status_code == 400
    device.refresh_from_db()
    assert device.confirmed is False
    device.throttling_failure_count, device.throttling_failure_timestamp = 0, None  # the person would wait
    device.save()
    done = client.post("/backoffice/login/enrol/", {"token": totp_code(device), "next": "/backoffice/deposits/"})
    assert done.status_code == 302 and done["Location"] == "/backoffice/deposits/"
    device.refresh_from_db()
    assert device.confirmed is True
    assert client.get("/backoffice/").status_code == 200
    assert AuditEntry.objects.filter(action="staff.otp_enrolled", actor="newbie").count() == 1


def test_without_self_enrolment_an_administrator_starts_it(settings):
    settings.BACKOFFICE_OTP_SELF_ENROL = False
    user = make_staff("late", device=False)
    client = password_step("late")
    closed = client.get("/backoffice/login/enrol/", HTTP_ACCEPT="text/html")
    assert closed.status_code == 403 and b"manage.py staff_otp" in closed.content
    assert not TOTPDevice.objects.filter(user=user).exists()

    call_command("staff_otp", "--username", "late")
    page = client.get("/backoffice/login/enrol/")
    assert page.status_code == 200
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    assert client.post("/backoffice/login/enrol/", {"token": totp_code(device)}).status_code == 302
    assert client.get("/backoffice/").status_code == 200
    assert AuditEntry.objects.filter(action="staff.otp_enrolment_started", actor="manage.py staff_otp").exists()


def test_a_code_is_accepted_once():
    user = make_staff("ops")
    device = user.totpdevice_set.get()
    code = totp_code(device)
    first = password_step("ops")
    assert first.post("/backoffice/login/code/", {"token": code}).status_code == 302
    second = password_step("ops")
    replayed = second.post("/backoffice/login/code/", {"token": code})
    assert replayed.status_code == 400
    assert second.get("/backoffice/").status_code == 302


def test_a_session_verified_with_another_users_device_is_not_verified():
    ops, other = make_staff("ops"), make_staff("other")
    client = office_client(ops)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = other.totpdevice_set.get().persistent_id
    session.save()
    assert client.get("/backoffice/").status_code == 302


def test_staff_sessions_expire_when_idle_and_after_the_absolute_limit(settings):
    settings.BACKOFFICE_SESSION_IDLE_SECONDS = 600
    client = office_client(make_staff("ops"))
    assert client.get("/backoffice/").status_code == 200
    assert client.session.get_expiry_age() == 600  # renewed on each page; the portal keeps Django's default
    session = client.session
    session[SIGNED_IN_AT] = int(time.time()) - settings.BACKOFFICE_SESSION_MAX_SECONDS - 1
    session.save()
    ended = client.get("/backoffice/deposits/")
    assert ended.status_code == 302 and ended["Location"].startswith("/backoffice/login/?next=")
    assert "_auth_user_id" not in client.session


def test_portal_sessions_keep_the_default_length():
    client = Client(HTTP_HOST="alpha.test")
    assert client.post("/login/", {"username": "admin", "password": "portal-pass-123"}).status_code == 302
    from django.conf import settings

    assert client.session.get_expiry_age() == settings.SESSION_COOKIE_AGE


def test_wrong_codes_make_the_person_wait_even_for_the_right_code(settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 60  # a 60 s wait after one wrong code (default 1 s, doubling)
    user = make_staff("ops")
    device = user.totpdevice_set.get()
    client = password_step("ops")
    assert client.post("/backoffice/login/code/", {"token": "000000"}).status_code == 400
    refused = client.post("/backoffice/login/code/", {"token": totp_code(device)})
    assert refused.status_code == 429 and 50 <= int(refused["Retry-After"]) <= 60
    assert "Too many wrong codes" in refused.content.decode()
    assert client.get("/backoffice/").status_code == 302


def test_a_pages_own_refresh_does_not_keep_an_idle_session_alive(settings):
    settings.BACKOFFICE_SESSION_IDLE_SECONDS = 600
    client = office_client(make_staff("ops"))
    session = client.session
    session.set_expiry(100)  # as if the person had left the overview open 500 s ago
    session.save()
    assert client.get("/backoffice/?partial=charts").status_code == 200
    assert client.session.get_expiry_age() == 100  # the live refresh (static/js/live.js) renews nothing
    assert client.get("/backoffice/").status_code == 200
    assert client.session.get_expiry_age() == 600
