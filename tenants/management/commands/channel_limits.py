"""``manage.py channel_limits --channel pos [--per-key N] [--per-channel N] [--burst N]``
``[--concurrency N] [--low-stock N]``

The issuer's levers on a channel: API rate limits (requests per second per key and per channel, and
the burst), the number of stamping workers the channel may occupy at once, and its low-stock alert.
Without options it prints the current values. Web processes pick changes up within ten seconds.
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from kernel.errors import ApplicationError
from tenants.models import Channel
from tenants.services import set_channel_limits

FIELDS = {
    "per_key": "rate_limit_per_key",
    "per_channel": "rate_limit_per_channel",
    "burst": "rate_limit_burst",
    "concurrency": "stamping_concurrency",
    "low_stock": "low_stock_threshold",
}


class Command(BaseCommand):
    help = "Show or set a channel's rate limits, stamping concurrency and low-stock threshold."

    def add_arguments(self, parser):
        parser.add_argument("--channel", required=True)
        for option in FIELDS:
            parser.add_argument(f"--{option.replace('_', '-')}", dest=option, type=int)

    def handle(self, *args, **options):
        channel = Channel.objects.filter(code=options["channel"], kind=Channel.Kind.CHANNEL).first()
        if channel is None:
            raise CommandError(f"No channel {options['channel']!r}.")
        changes = {field: options[option] for option, field in FIELDS.items() if options[option] is not None}
        if changes:
            try:
                channel = set_channel_limits(channel=channel, changes=changes, actor="manage.py channel_limits")
            except ApplicationError as exc:
                raise CommandError(exc.message) from exc
        self.stdout.write(json.dumps({"channel": channel.code, **{f: getattr(channel, f) for f in FIELDS.values()}}))
