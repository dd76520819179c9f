"""``manage.py incident``: publish an incident note on the public status page from a shell (the back
office does the same from a browser), list the open ones, or resolve one.

    manage.py incident --title "Stamping delayed" --severity minor --body "Stamps take up to 20 minutes."
    manage.py incident --list
    manage.py incident --resolve 12

Severity: info, minor (degraded service) or major (outage). Written to the audit log.
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from issuer.incidents import create_incident_note, resolve_incident_note
from issuer.models import IncidentNote
from kernel.errors import ApplicationError

ACTOR = "manage.py incident"


class Command(BaseCommand):
    help = "Publish, list or resolve incident notes of the public status page."

    def add_arguments(self, parser):
        what = parser.add_mutually_exclusive_group(required=True)
        what.add_argument("--title", help="Publish a new note with this title.")
        what.add_argument("--list", action="store_true", help="List the open notes.")
        what.add_argument("--resolve", type=int, metavar="ID", help="Mark note ID resolved now.")
        parser.add_argument("--severity", choices=IncidentNote.Severity.values, default=IncidentNote.Severity.MINOR)
        parser.add_argument("--body", default="", help="What users see and what they should do.")

    def handle(self, *args, **options):
        try:
            if options["list"]:
                for note in IncidentNote.objects.filter(resolved_at__isnull=True).order_by("-started_at"):
                    self.stdout.write(json.dumps({"id": note.pk, "title": note.title, "severity": note.severity,
                                                  "started_at": note.started_at.isoformat()}))  # fmt: skip
                return
            if options["resolve"] is not None:
                if not IncidentNote.objects.filter(pk=options["resolve"]).exists():
                    raise CommandError(f"No incident note {options['resolve']}.")
                note = resolve_incident_note(note_id=options["resolve"], actor=ACTOR)
                self.stdout.write(json.dumps({"id": note.pk, "resolved_at": note.resolved_at.isoformat()}))
                return
            note = create_incident_note(
                title=options["title"], body=options["body"], severity=options["severity"], actor=ACTOR
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(json.dumps({"id": note.pk, "title": note.title, "severity": note.severity}))
