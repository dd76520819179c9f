"""Cursor pagination for every list of the APIs: one opaque cursor format and one keyset page.

A cursor is base64url of a JSON list: the list's ``kind`` and the sort key of the last row served.
``keyset_page`` serves ``size`` rows of a queryset already filtered and ordered by the caller (a
selector), after the cursor's row, and the cursor of the next page (None at the end). Anything the
API did not give out, or that names another list, is ``400 invalid_cursor``: never a 500, never
another list's rows.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kernel.errors import ApplicationError


class InvalidCursor(ApplicationError):
    code = "invalid_cursor"
    title = "Invalid cursor"
    what_to_do = "`cursor` is not one this API gave out, or `from`/`to` is not an ISO 8601 date-time."


def invalid_cursor() -> InvalidCursor:
    return InvalidCursor("The cursor is not one this API gave out; start again without it.")


def encode_cursor(kind: str, *key: Any) -> str:
    raw = json.dumps([kind, *key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, kind: str, parse: Callable[..., tuple]) -> tuple:
    """The sort key in ``cursor``, checked by ``parse`` (which raises ``ValueError``/``TypeError`` on
    anything it does not accept); ``invalid_cursor`` for a cursor of another kind or not ours."""
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(values, list) or not values or values[0] != kind:
            raise ValueError
        return parse(*values[1:])
    except (ValueError, TypeError, UnicodeError):
        raise invalid_cursor() from None


@dataclass(frozen=True)
class Page:
    results: list
    next_cursor: str | None


def keyset_page(
    queryset,
    *,
    cursor: str | None,
    kind: str,
    size: int,
    key: Callable[[Any], tuple],
    parse: Callable[..., tuple],
    after: Callable[[Any, tuple], Any],
) -> Page:
    """One page of ``queryset`` (filtered and ordered by ``key``): ``after(queryset, key)`` keeps the
    rows after the cursor's; ``key(row)`` is what the next cursor carries (JSON values)."""
    if cursor:
        queryset = after(queryset, decode_cursor(cursor, kind, parse))
    rows = list(queryset[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    return Page(results=rows, next_cursor=encode_cursor(kind, *key(rows[-1])) if more else None)
