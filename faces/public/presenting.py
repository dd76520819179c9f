"""The issuer's verification results as the public API and pages show them: timestamps in the APIs'
one style (UTC with ``Z``, ``kernel.timestamps``), and as readable local times on the pages."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from kernel.timestamps import utc_timestamp


def _moment(value: str | None) -> datetime | None:
    moment = parse_datetime(value) if value else None
    if moment is not None and timezone.is_naive(moment):
        moment = timezone.make_aware(moment, timezone.UTC)
    return moment


def zulu(value: str | None) -> str | None:
    """An ISO 8601 date-time (any offset) in the APIs' style."""
    return utc_timestamp(_moment(value))


def local(value: str | None) -> datetime | None:
    """An ISO 8601 date-time in the server's time zone, for a page to format."""
    moment = _moment(value)
    return timezone.localtime(moment) if moment is not None else None


def serial_status(result: dict) -> dict:
    """``verify_serial``'s answer with its times in the APIs' style."""
    return {**result, "used_at": zulu(result.get("used_at")), "voided_at": zulu(result.get("voided_at"))}


def document_verdict(result: dict) -> dict:
    """``verify_document``'s answer with every time in the APIs' style."""
    stamps = [
        {**stamp, "registry": serial_status(stamp["registry"])} if stamp.get("registry") else stamp
        for stamp in result.get("stamps", [])
    ]
    signatures = [{**sig, "signing_time": zulu(sig.get("signing_time"))} for sig in result.get("signatures", [])]
    return {**result, "stamps": stamps, "signatures": signatures}
