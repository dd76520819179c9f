"""``manage.py stamp IN.pdf OUT.pdf --page N --box LLX,LLY,URX,URY [--profile cpns] [--password P] [--channel CODE]``

Stamps one file through the same service as the API (``issuer.services.stamp_document``): the
serial is recorded in the registry for the channel (the issuer itself without ``--channel``).
Prints one JSON object: the stamp, or the problem (exit 2 refusal, 1 internal failure).
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from django.core.management.base import BaseCommand

from issuer.management.output import CommandRefusal, fail, write_json
from issuer.services import stamp_document
from tenants.models import Channel
from tenants.services import ensure_issuer


def parse_box(value: str) -> tuple[float, float, float, float]:
    parts = [p.strip() for p in value.split(",")]
    try:
        numbers = tuple(float(p) for p in parts)
    except ValueError:
        numbers = ()
    if len(numbers) != 4 or not all(n == n and abs(n) < 1e6 for n in numbers):  # noqa: PLR0124 - NaN check
        raise CommandRefusal(
            "invalid_stamp_box", f"--box must be four numbers LLX,LLY,URX,URY in points; got {value!r}.", status=422
        )
    return numbers  # type: ignore[return-value]


class Command(BaseCommand):
    help = "Stamp and sign a PDF with a new e-Meterai serial; prints one JSON object."

    def add_arguments(self, parser):
        parser.add_argument("input", help="PDF to stamp")
        parser.add_argument("output", help="where to write the stamped PDF")
        parser.add_argument("--page", type=int, default=1, help="1-based page number (default 1)")
        parser.add_argument("--box", required=True, help="LLX,LLY,URX,URY in points, origin bottom-left")
        parser.add_argument("--profile", default="default")
        parser.add_argument("--password", default=None, help="password of an encrypted PDF")
        parser.add_argument("--channel", default=None, help="channel code (default: the issuer itself)")
        parser.add_argument("--reason", default="")
        parser.add_argument("--location", default="")
        parser.add_argument("--document-type", default=None, help="document type code")
        parser.add_argument("--document-number", default="")
        parser.add_argument("--document-date", default=None, help="YYYY-MM-DD")
        parser.add_argument("--job-ref", default=None, help="idempotency key: a retry returns the same stamp")

    def handle(self, *args, **opts):
        try:
            summary = self._stamp(opts)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a problem JSON and an exit code
            raise fail(self, exc) from None
        write_json(self, summary)

    def _stamp(self, opts: dict) -> dict:
        box = parse_box(opts["box"])
        document_date = None
        if opts["document_date"]:
            try:
                document_date = dt.date.fromisoformat(opts["document_date"])
            except ValueError:
                raise CommandRefusal("invalid_document_date", "--document-date must be YYYY-MM-DD.") from None
        if opts["channel"]:
            try:
                channel = Channel.objects.get(code=opts["channel"])
            except Channel.DoesNotExist:
                raise CommandRefusal(
                    "unknown_channel", f"There is no channel {opts['channel']!r}.", status=404
                ) from None
        else:
            channel = ensure_issuer()
        source = Path(opts["input"])
        try:
            data = source.read_bytes()
        except OSError as exc:
            raise CommandRefusal("input_unreadable", f"Cannot read {source}: {exc.strerror}.") from None
        outcome = stamp_document(
            channel=channel,
            data=data,
            page=opts["page"],
            box=box,
            profile=opts["profile"],
            password=opts["password"],
            reason=opts["reason"],
            location=opts["location"],
            document_type=opts["document_type"],
            document_number=opts["document_number"],
            document_date=document_date,
            job_ref=opts["job_ref"],
        )
        target = Path(opts["output"])
        temporary = target.with_name(f".{target.name}.partial")
        temporary.write_bytes(outcome.pdf)
        os.replace(temporary, target)
        return {**outcome.as_dict(), "output": str(target)}
