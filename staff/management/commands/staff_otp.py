"""``manage.py staff_otp --username NAME [--reset]``

Start the second-factor enrolment of an issuer staff member: an unconfirmed TOTP device that the
person finishes at the next back-office sign-in (the page shows its QR code; the first code from the
app confirms it). ``--reset`` also removes the person's confirmed device (a lost phone): until the new
one is confirmed, the person cannot use the back office.
"""

from __future__ import annotations

import json

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from staff.audit import record
from staff.otp import start_enrolment

ACTOR = "manage.py staff_otp"


class Command(BaseCommand):
    help = "Start (or restart, with --reset) an issuer staff member's TOTP enrolment."

    def add_arguments(self, parser):
        parser.add_argument("--username", required=True)
        parser.add_argument("--reset", action="store_true", help="Also remove the confirmed device.")

    def handle(self, *args, **options):
        user = get_user_model().objects.filter(username=options["username"], is_staff=True).first()
        if user is None:
            raise CommandError(f"No issuer staff member {options['username']!r}.")
        with transaction.atomic():
            if options["reset"]:
                removed, _ = TOTPDevice.objects.filter(user=user, confirmed=True).delete()
                record(ACTOR, "staff.otp_reset", user, username=user.get_username(), removed=removed)
            start_enrolment(user=user, actor=ACTOR)
        self.stdout.write(
            json.dumps({"username": user.get_username(), "enrolment": "started", "reset": options["reset"]})
        )
