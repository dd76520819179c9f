"""Issuer staff's second factor: one TOTP device per person (django-otp's ``TOTPDevice``).

A device is *started* unconfirmed (its secret shown once, on the enrolment page, as a QR code and
as text) and *confirmed* by the first code the person's authenticator app shows. A session is
verified when it holds a confirmed device of its user (``django_otp.DEVICE_ID_SESSION_KEY``).
Wrong codes are throttled by the device itself (django-otp doubles the wait after each failure).
"""

from __future__ import annotations

import base64
import math
from typing import Any

from django.db import transaction
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from kernel.errors import ApplicationError
from staff.audit import record

DEVICE_NAME = "back office"


class OtpEnrolmentClosed(ApplicationError):
    code = "otp_enrolment_closed"
    http_status = 403
    title = "No second factor yet"
    what_to_do = (
        "Issuer staff sign in with a one-time code. Ask an administrator to start your enrolment "
        "(`manage.py staff_otp --username <you>`), then sign in again to finish it."
    )


class OtpCodeThrottled(ApplicationError):
    code = "otp_code_throttled"
    http_status = 429
    title = "Too many wrong codes"
    what_to_do = "Wait the seconds the page says (the wait doubles after each wrong code), then enter the current code."

    def __init__(self, wait_seconds: int):
        super().__init__(f"Too many wrong codes in a row: wait {wait_seconds} s before the next one.")
        self.wait_seconds = wait_seconds
        self.headers = {"Retry-After": str(wait_seconds)}


def _refuse_while_throttled(device: TOTPDevice) -> None:
    allowed, data = device.verify_is_allowed()
    if not allowed:
        locked_until = (data or {}).get("locked_until")
        wait = (locked_until - timezone.now()).total_seconds() if locked_until else 1
        raise OtpCodeThrottled(max(1, math.ceil(wait)))


def confirmed_device(user) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk").first()


def pending_device(user) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()


def secret_text(device: TOTPDevice) -> str:
    """The device's key in base32, as authenticator apps take it when typed in."""
    return base64.b32encode(device.bin_key).decode()


@transaction.atomic
def start_enrolment(*, user, actor: Any) -> TOTPDevice:
    """A new unconfirmed device for ``user`` (any earlier unconfirmed one is dropped). Its confirmed
    device, if any, keeps working until the new one is confirmed."""
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()
    device = TOTPDevice.objects.create(user=user, name=DEVICE_NAME, confirmed=False)
    record(actor, "staff.otp_enrolment_started", user, username=user.get_username())
    return device


@transaction.atomic
def confirm_enrolment(*, user, token: str) -> TOTPDevice | None:
    """Confirm ``user``'s pending device with a code from it; the other devices of the user go.
    None if there is no pending device or the code is wrong."""
    device = TOTPDevice.objects.select_for_update().filter(user=user, confirmed=False).order_by("-pk").first()
    if device is None:
        return None
    _refuse_while_throttled(device)
    if not device.verify_token(token.strip()):
        return None
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
    record(user, "staff.otp_enrolled", user, username=user.get_username())
    return device


@transaction.atomic
def verify_code(*, user, token: str) -> TOTPDevice | None:
    """The confirmed device of ``user`` that accepts ``token`` (a code is accepted once), or None.
    Raises :class:`OtpCodeThrottled` while the device makes the person wait after wrong codes."""
    device = TOTPDevice.objects.select_for_update().filter(user=user, confirmed=True).order_by("pk").first()
    if device is None:
        return None
    _refuse_while_throttled(device)
    if not device.verify_token(token.strip()):
        return None
    return device


def session_device(session, user) -> TOTPDevice | None:
    """The confirmed device of ``user`` this session was verified with, if any."""
    persistent_id = session.get(DEVICE_ID_SESSION_KEY)
    if not persistent_id or user is None or not user.is_authenticated:
        return None
    device = TOTPDevice.from_persistent_id(persistent_id, for_verify=False)
    if device is None or device.user_id != user.pk or not device.confirmed:
        return None
    return device
