"""What the storefront's lists share: the ``customer`` / ``from`` / ``to`` filters and a newest-first
keyset page (created, then id) for ``/stamps``, ``/orders`` and an order's ``/refunds``."""

from __future__ import annotations

from datetime import UTC, datetime

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter

from gateway.http.pagination import InvalidCursor, Page, keyset_page
from tenants.customers.services import CustomerNotFound, customer_get


def parse_moment(value: str) -> datetime | None:
    """An ISO 8601 date-time in UTC, or None. Well-formed but impossible values (month 13, an offset of
    +18:11 that PostgreSQL refuses, a year 1 that leaves the calendar in UTC) are None too: they were 500s."""
    try:
        moment = parse_datetime(value)
        if moment is None:
            return None
        if timezone.is_naive(moment):
            moment = timezone.make_aware(moment)
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def list_filters(params) -> dict:
    """``customer_id``, ``since`` and ``until`` from ``?customer=&from=&to=`` (absent: not given).
    An unknown customer is ``404 customer_not_found``; a bad ``from``/``to`` is ``400 invalid_cursor``."""
    filters: dict = {}
    if params.get("customer"):
        if not params["customer"].isascii():  # customer_get takes "²" for a digit (a 500); see tenants
            raise CustomerNotFound(f"No customer {params['customer']!r} in this channel.")
        filters["customer_id"] = customer_get(customer_id=params["customer"]).pk
    for name, bound in (("from", "since"), ("to", "until")):
        if params.get(name):
            moment = parse_moment(params[name])
            if moment is None:
                raise InvalidCursor(f"`{name}` must be an ISO 8601 date-time.")
            filters[bound] = moment
    return filters


def _newest_first_key(created, row_id) -> tuple[datetime, str]:
    """A newest-first cursor's key: the creation time and id the next page starts after."""
    moment = parse_moment(created) if isinstance(created, str) else None
    if moment is None or not isinstance(row_id, str) or "\x00" in row_id:  # a NUL cannot be compared (a 500)
        raise ValueError
    return moment, row_id


def newest_first_page(queryset, *, cursor: str | None, kind: str, size: int) -> Page:
    """One page of ``queryset`` (ordered ``-created_at, -id`` by its selector) after ``cursor``."""
    return keyset_page(
        queryset,
        cursor=cursor,
        kind=kind,
        size=size,
        key=lambda row: (row.created_at.isoformat(), row.id),
        parse=_newest_first_key,
        after=lambda rows, key: rows.filter(created_at__lt=key[0]) | rows.filter(created_at=key[0], id__lt=key[1]),
    )


def list_parameters(noun: str, statuses) -> list[OpenApiParameter]:
    """The query parameters of a newest-first list of ``noun`` (documentation)."""
    return [
        OpenApiParameter("customer", OpenApiTypes.INT, description=f"Only this customer's {noun}."),
        OpenApiParameter(
            "status",
            OpenApiTypes.STR,
            description=f"Only {noun} in this status: {', '.join(statuses)} (another value matches nothing).",
        ),
        OpenApiParameter("from", OpenApiTypes.DATETIME, description="Created at or after (ISO 8601)."),
        OpenApiParameter("to", OpenApiTypes.DATETIME, description="Created before (ISO 8601)."),
        OpenApiParameter("cursor", OpenApiTypes.STR, description="`next_cursor` of the previous page."),
    ]
