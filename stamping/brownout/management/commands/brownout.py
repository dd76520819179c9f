"""``manage.py brownout pause purchases --channel pos --reason "..."`` | ``resume purchases [--channel pos]``
| ``status``: pause or resume a class of new work (``stamping``, ``purchases``, ``registrations``) for
one channel or, without ``--channel``, for all; ``status`` lists the pauses in force (JSON lines)."""

from __future__ import annotations

import getpass
import json

from django.core.management.base import BaseCommand, CommandError

from kernel.errors import ApplicationError
from kernel.timestamps import utc_timestamp
from stamping.brownout import selectors, services
from stamping.brownout.models import Brownout
from tenants.models import Channel


def _actor() -> str:
    try:
        who = getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name (a container): the command is still named
        who = "?"
    return f"manage.py brownout ({who})"


def _row(brownout: Brownout) -> dict:
    return {
        "class": brownout.kind,
        "scope": brownout.scope,
        "reason": brownout.reason,
        "automatic": brownout.automatic,
        "since": utc_timestamp(brownout.started_at),
        "by": brownout.started_by,
        "until": utc_timestamp(brownout.ended_at) if brownout.ended_at else None,
    }


class Command(BaseCommand):
    help = "Pause or resume new stamp requests, purchases or customer registrations (brownout); show what is paused."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["pause", "resume", "status"])
        parser.add_argument("kind", nargs="?", choices=Brownout.Kind.values)
        parser.add_argument("--channel", help="A channel's code; without it, every channel.")
        parser.add_argument("--reason", default="", help="Why (shown to channels and on the status page).")

    def handle(self, *args, **options):
        if options["action"] == "status":
            for brownout in selectors.open_brownouts():
                self.stdout.write(json.dumps(_row(brownout)))
            return
        if not options["kind"]:
            raise CommandError(f"Which class to {options['action']}: {', '.join(Brownout.Kind.values)}.")
        channel = None
        if options["channel"]:
            channel = Channel.objects.filter(code=options["channel"], kind=Channel.Kind.CHANNEL).first()
            if channel is None:
                raise CommandError(f"No channel {options['channel']!r}.")
        try:
            if options["action"] == "pause":
                brownout = services.pause(
                    kind=options["kind"], channel=channel, reason=options["reason"], actor=_actor()
                )
            else:
                brownout = services.resume(kind=options["kind"], channel=channel, actor=_actor())
        except ApplicationError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from exc
        if brownout is None:
            raise CommandError(f"{options['kind']} is not paused for {options['channel'] or 'all'}.")
        self.stdout.write(json.dumps(_row(brownout)))
