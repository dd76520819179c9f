"""The one timestamp style of the APIs and the webhooks: ISO 8601 in UTC with ``Z``, to the microsecond
(``2026-11-29T05:22:31.913694Z``), whatever ``TIME_ZONE`` the process runs in."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_timestamp(moment: datetime | None) -> str | None:
    """``moment`` (aware) as the APIs write it; None stays None."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="microseconds").removesuffix("+00:00") + "Z"
