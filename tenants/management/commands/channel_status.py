"""``manage.py channel_status --channel pos [--suspend --reason TEXT | --reinstate]``

Suspend a channel (its API keys and portal are refused with ``channel_suspended``; its paid orders,
refunds and accepted stamps still finish) or reinstate it. Without options it prints the status.
Web processes see the change within ten seconds (their host cache). Written to the audit log.
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from tenants.models import Channel
from tenants.services import set_channel_active


class Command(BaseCommand):
    help = "Show, suspend or reinstate a channel."

    def add_arguments(self, parser):
        parser.add_argument("--channel", required=True)
        what = parser.add_mutually_exclusive_group()
        what.add_argument("--suspend", action="store_true")
        what.add_argument("--reinstate", action="store_true")
        parser.add_argument("--reason", default="", help="Why (kept in the audit log).")

    def handle(self, *args, **options):
        channel = Channel.objects.filter(code=options["channel"], kind=Channel.Kind.CHANNEL).first()
        if channel is None:
            raise CommandError(f"No channel {options['channel']!r}.")
        if options["suspend"] or options["reinstate"]:
            channel = set_channel_active(
                channel=channel, active=options["reinstate"], actor="manage.py channel_status", reason=options["reason"]
            )
        self.stdout.write(json.dumps({"channel": channel.code, "active": channel.is_active}))
