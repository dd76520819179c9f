"""Issuer staff for tests: users in the deposit groups, TOTP devices, and back-office clients whose
session passed both sign-in steps (as the real pages leave it), and TOTP codes computed from a
device's key (django-otp's own algorithm: nothing is mocked)."""

from __future__ import annotations

import time

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from faces.backoffice.views import SIGNED_IN_AT

ISSUER_HOST = "issuer.test"
RECORDERS, APPROVERS = "Stock recorders", "Stock approvers"


def make_staff(username: str, *, password: str = "staff-pass-123", groups=(RECORDERS, APPROVERS), device=True):  # noqa: S107 - a test password
    user = get_user_model().objects.create_user(username, password=password, is_staff=True)
    for name in groups:
        user.groups.add(Group.objects.get(name=name))
    if device:
        TOTPDevice.objects.create(user=user, name="back office", confirmed=True)
    return user


def totp_code(device: TOTPDevice, *, at: float | None = None) -> str:
    """The code the person's app shows now (or at ``at``) for ``device``."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() if at is None else at
    return f"{totp.token():0{device.digits}d}"


def office_client(user, **extra) -> Client:
    """A back-office client signed in as ``user`` with a verified second factor."""
    client = Client(HTTP_HOST=ISSUER_HOST, **extra)
    client.force_login(user)
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first() or TOTPDevice.objects.create(
        user=user, name="back office", confirmed=True
    )
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session[SIGNED_IN_AT] = int(time.time())
    session.save()
    return client
