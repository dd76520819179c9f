"""``manage.py deposit --channel pos --units 1000 --reference INV-1 [--confirm]``"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from billing.deposits import confirm_deposit, create_deposit
from kernel.errors import ApplicationError
from tenants.models import Channel

ACTOR = "manage.py deposit"  # an operator on the server, outside maker-checker (see docs/security.md)


class Command(BaseCommand):
    help = "Record a channel's deposit of stamp duty, and with --confirm allocate its units to the channel."

    def add_arguments(self, parser):
        parser.add_argument("--channel", required=True)
        parser.add_argument("--units", type=int, required=True)
        parser.add_argument("--reference", required=True)
        parser.add_argument("--confirm", action="store_true")

    def handle(self, *args, **options):
        channel = Channel.objects.filter(code=options["channel"], kind=Channel.Kind.CHANNEL).first()
        if channel is None:
            raise CommandError(f"No channel {options['channel']!r}.")
        try:
            deposit = create_deposit(
                channel=channel, units=options["units"], reference=options["reference"], recorded_by=ACTOR
            )
            if options["confirm"]:
                deposit = confirm_deposit(deposit_id=deposit.pk, confirmed_by=ACTOR)
        except ApplicationError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from exc
        self.stdout.write(
            json.dumps(
                {
                    "deposit": deposit.pk,
                    "reference": deposit.reference,
                    "units": deposit.units,
                    "status": deposit.status,
                }
            )
        )
