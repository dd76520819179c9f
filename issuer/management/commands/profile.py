"""``manage.py profile``: list, show, create and edit document profiles (``StampProfile`` rows).

    manage.py profile                                   # every profile, one line each
    manage.py profile cpns                              # one profile, every rule
    manage.py profile kemenkeu --max-size 900KB --page-size A4 --min-pdf-version 1.6 \\
        --description "Kementerian Keuangan: A4, PDF 1.6+"   # create, or change only what is given
    manage.py profile kemenkeu --inactive               # withdraw it (stamps asking for it are refused)

Exit 0 on success, 2 when the arguments or the resulting profile are not valid (nothing is written).
"""

from __future__ import annotations

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from issuer.models import StampProfile
from issuer.services import save_profile

EXIT_REFUSED = 2
MM = 72 / 25.4
PAGE_SIZES = {  # points, portrait; a page matches in either orientation
    "A3": (297 * MM, 420 * MM),
    "A4": (210 * MM, 297 * MM),
    "A5": (148 * MM, 210 * MM),
    "F4": (215 * MM, 330 * MM),  # folio, common in Indonesian offices
    "LETTER": (612.0, 792.0),
    "LEGAL": (612.0, 1008.0),
}
UNITS = {"": 1, "B": 1, "K": 1024, "KB": 1024, "M": 1024 * 1024, "MB": 1024 * 1024}


def parse_size(text: str) -> int:
    """``800KB``, ``20MB`` or a number of bytes."""
    match = re.fullmatch(r"\s*(\d+)\s*(KB|MB|K|M|B)?\s*", text.upper())
    if not match:
        raise ValueError(f"--max-size {text!r}: write a number of bytes, or e.g. 800KB or 20MB")
    return int(match[1]) * UNITS[match[2] or ""]


def dots(number: int) -> str:
    """Thousands grouped the Indonesian way, as the pages write them: 819.200."""
    return f"{number:,}".replace(",", ".")


def parse_page_size(text: str) -> tuple[float | None, float | None]:
    """``A4`` (and A3, A5, F4, Letter, Legal), ``WIDTHxHEIGHT`` in points, or ``any``."""
    key = text.strip().upper()
    if key == "ANY":
        return None, None
    if key in PAGE_SIZES:
        width, height = PAGE_SIZES[key]
        return round(width, 2), round(height, 2)
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*X\s*(\d+(?:\.\d+)?)", key)
    if not match:
        names = ", ".join(PAGE_SIZES)
        raise ValueError(f"--page-size {text!r}: use one of {names}, WIDTHxHEIGHT in points, or any")
    return float(match[1]), float(match[2])


def parse_stamp_size(text: str) -> tuple[float, float]:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*-\s*(\d+(?:\.\d+)?)\s*", text)
    if not match:
        raise ValueError(f"--stamp-size {text!r}: write MIN-MAX in points, e.g. 20-300")
    return float(match[1]), float(match[2])


def describe(profile: StampProfile) -> list[str]:
    if profile.page_width is None:
        pages = "any page size"
    else:
        pages = f"{profile.page_width:g} x {profile.page_height:g} pt (+/- {profile.page_size_tolerance:g}, either way)"
    return [
        f"{profile.name}{'' if profile.active else ' (inactive)'}: {profile.description or '-'}",
        f"  max size        {dots(profile.max_bytes)} bytes",
        f"  pages           {pages}, at most {profile.max_pages}",
        f"  PDF version     {profile.min_pdf_version or 'any'}{' or later' if profile.min_pdf_version else ''}",
        f"  stamp size      {profile.min_stamp_size:g} to {profile.max_stamp_size:g} pt",
        f"  certification   {profile.certification}",
    ]


class Command(BaseCommand):
    help = "List, show, create or edit document profiles (the rules a stamped document must meet)."

    def add_arguments(self, parser):
        parser.add_argument("name", nargs="?", help="the profile (a slug, e.g. cpns); none: list them all")
        parser.add_argument("--description")
        parser.add_argument("--max-size", help="largest PDF accepted: bytes, or e.g. 800KB, 20MB")
        parser.add_argument("--page-size", help="A4, A3, A5, F4, Letter, Legal, WIDTHxHEIGHT in points, or any")
        parser.add_argument("--tolerance", type=float, help="page size tolerance in points (default 3)")
        parser.add_argument("--min-pdf-version", help='e.g. 1.6, or "any"')
        parser.add_argument("--max-pages", type=int)
        parser.add_argument("--stamp-size", help="MIN-MAX side of the stamp in points, e.g. 20-300")
        parser.add_argument(
            "--certification",
            choices=("not_certified", "no_changes"),
            help="not_certified: later e-Meterai and signatures stay possible; no_changes: the stamp is final",
        )
        state = parser.add_mutually_exclusive_group()
        state.add_argument("--active", dest="active", action="store_true", default=None, help="use it again")
        state.add_argument("--inactive", dest="active", action="store_false", help="withdraw it")

    def handle(self, *args, **opts):
        name = opts["name"]
        if name is None:
            for profile in StampProfile.objects.order_by("name"):
                first = describe(profile)[0]
                self.stdout.write(f"{first}  [{profile.max_bytes // 1024} KB]")
            return
        try:
            changes = self._changes(opts)
        except ValueError as exc:
            raise CommandError(str(exc), returncode=EXIT_REFUSED) from None
        if not changes:
            profile = StampProfile.objects.filter(name=name).first()
            if profile is None:
                raise CommandError(
                    f"There is no profile {name!r}. Create it with at least --max-size, e.g. "
                    f"manage.py profile {name} --max-size 800KB --page-size A4",
                    returncode=EXIT_REFUSED,
                )
            self.stdout.write("\n".join(describe(profile)))
            return
        try:
            profile, created = save_profile(name=name, **changes)
        except ValidationError as exc:
            raise CommandError(self._explain(exc), returncode=EXIT_REFUSED) from None
        self.stdout.write(("Created" if created else "Updated") + " profile:\n" + "\n".join(describe(profile)))
        if profile.max_bytes > settings.STAMP_DEFAULT_MAX_BYTES:
            cap = dots(settings.STAMP_DEFAULT_MAX_BYTES)
            self.stdout.write(f"Note: STAMP_DEFAULT_MAX_BYTES ({cap} bytes) caps every profile.")

    @staticmethod
    def _changes(opts: dict) -> dict:
        changes: dict = {}
        if opts["description"] is not None:
            changes["description"] = opts["description"]
        if opts["max_size"] is not None:
            changes["max_bytes"] = parse_size(opts["max_size"])
        if opts["page_size"] is not None:
            changes["page_width"], changes["page_height"] = parse_page_size(opts["page_size"])
        if opts["tolerance"] is not None:
            changes["page_size_tolerance"] = opts["tolerance"]
        if opts["min_pdf_version"] is not None:
            version = opts["min_pdf_version"].strip()
            changes["min_pdf_version"] = "" if version.lower() == "any" else version
        if opts["max_pages"] is not None:
            changes["max_pages"] = opts["max_pages"]
        if opts["stamp_size"] is not None:
            changes["min_stamp_size"], changes["max_stamp_size"] = parse_stamp_size(opts["stamp_size"])
        if opts.get("certification") is not None:
            changes["certification"] = opts["certification"]
        if opts["active"] is not None:
            changes["active"] = opts["active"]
        return changes

    @staticmethod
    def _explain(exc: ValidationError) -> str:
        options = {
            "max_bytes": "--max-size", "page_width": "--page-size", "page_height": "--page-size",
            "min_pdf_version": "--min-pdf-version", "max_pages": "--max-pages", "min_stamp_size": "--stamp-size",
            "max_stamp_size": "--stamp-size", "page_size_tolerance": "--tolerance", "name": "the name",
        }  # fmt: skip
        lines = ["The profile was not saved:"]
        for field, messages in exc.message_dict.items():
            where = options.get(field, "") if field != "__all__" else ""
            for message in messages:
                if field == "max_bytes" and "null" in message:
                    message = "a new profile needs --max-size (e.g. 800KB)"
                lines.append(f"  {where}: {message}" if where else f"  {message}")
        return "\n".join(lines)
