"""``manage.py verify FILE.pdf [--password P]``

Prints the verification JSON (as ``POST /api/v1/verify`` answers).  Exit 0 when the document is
validly stamped, 3 when it is not, 2 when it cannot be verified (not a PDF, wrong password, ...),
1 on an internal failure.
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from issuer.management.output import EXIT_NOT_VALID, CommandRefusal, fail, write_json
from issuer.selectors import verify_document


class Command(BaseCommand):
    help = "Verify the e-Meterai stamp(s) of a PDF; prints one JSON object."

    def add_arguments(self, parser):
        parser.add_argument("file", help="PDF to verify")
        parser.add_argument("--password", default=None, help="password of an encrypted PDF")

    def handle(self, *args, **opts):
        try:
            try:
                data = Path(opts["file"]).read_bytes()
            except OSError as exc:
                raise CommandRefusal("input_unreadable", f"Cannot read {opts['file']}: {exc.strerror}.") from None
            result = verify_document(data, opts["password"])
        except Exception as exc:  # noqa: BLE001 - every failure becomes a problem JSON and an exit code
            raise fail(self, exc) from None
        write_json(self, result)
        if not result["valid"]:
            raise CommandError(f"not validly stamped: {result['failed_check']}", returncode=EXIT_NOT_VALID)
