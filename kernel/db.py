"""Database helpers every domain may use."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from datetime import datetime

import psycopg
from django.db import connection, transaction


def each_locked(queryset, *, limit: int, handle: Callable[[object], bool]) -> int:
    """For sweepers: ``handle(row)`` for each row of ``queryset`` (up to ``limit``), each in a
    transaction of its own with the row locked. Returns how many calls returned True.

    The ids are listed first; then each row is locked with ``FOR UPDATE SKIP LOCKED`` and the
    queryset's filter checked again under the lock, so a row another sweeper (or a webhook) holds,
    or that changed state meanwhile, is skipped rather than waited for or handled twice. What
    ``handle`` does for a row commits with it; if it raises, that row's work rolls back and the
    error propagates (the rows before it stay done).
    """
    done = 0
    for pk in queryset.values_list("pk", flat=True)[:limit]:
        with transaction.atomic():
            row = queryset.select_for_update(skip_locked=True).filter(pk=pk).first()
            if row is not None and handle(row):
                done += 1
    return done


def narrowed(
    queryset,
    *,
    customer_id: int | None = None,
    status: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
):
    """The filters every API list offers, newest first: a customer, a status and a ``[since, until)``
    window of creation times (rows with ``customer_id``, ``status`` and ``created_at``)."""
    if customer_id is not None:
        queryset = queryset.filter(customer_id=customer_id)
    if status:
        queryset = queryset.filter(status=status)
    if since is not None:
        queryset = queryset.filter(created_at__gte=since)
    if until is not None:
        queryset = queryset.filter(created_at__lt=until)
    return queryset.order_by("-created_at", "-id")


@contextlib.contextmanager
def raw_cursor() -> Iterator[psycopg.Cursor]:
    """A psycopg cursor on Django's connection, for the few statements every stamp runs.

    What it gives that Django's cursor does not: parameters bound on the server (bytes travel as
    binary, not as hex in the query text) and ``execute(..., prepare=True)``, a statement PostgreSQL
    parses and plans once per connection instead of on every stamp (Django leaves psycopg's
    ``prepare_threshold`` None, which turns preparing off: inside this block it is so high that only
    ``prepare=True`` prepares). Django's errors are raised as usual. psycopg deallocates every
    prepared statement after a ROLLBACK on the connection, and prepares them again on their next use.

    It does NOT set the channel's ``search_path`` (django-tenants does that in its own cursor): every
    table a statement names here must be schema-qualified. Prepared statements live on a connection
    (psycopg drops them with it) and need a pooler that keeps them, as PgBouncer does from 1.21.
    """
    connection.ensure_connection()
    raw = connection.connection
    raw.prepared_max = _MOST_PREPARED
    # None turns even ``prepare=True`` off. The threshold is lifted for this cursor's statements only:
    # left set, psycopg would also track every statement of Django's cursors (they bind on the client
    # and are never prepared), each one's text kept as a key, documents sent as hex included.
    raw.prepare_threshold = _ONLY_WHEN_ASKED
    try:
        with connection.wrap_database_errors, psycopg.Cursor(raw) as cursor:
            yield cursor
    finally:
        raw.prepare_threshold = None


_ONLY_WHEN_ASKED = 2**31 - 1  # psycopg prepares a statement run this many times, or when told to
# The most a connection keeps prepared (psycopg's default is 100, the least recently used go first). A
# drainer prepares three statements per channel it stamps for, and two shared ones: past ~33 channels
# at 100, lanes taking turns on one worker would deallocate and prepare them over and over.
_MOST_PREPARED = 400


# The depth (``len(connection.atomic_blocks)``) of the innermost transaction declared rolled back whole.
_WHOLE_AT: contextvars.ContextVar[int | None] = contextvars.ContextVar("kernel_db_whole_at", default=None)


@contextlib.contextmanager
def atomic_rolled_back_whole() -> Iterator[None]:
    """``transaction.atomic()`` for a caller that rolls it back whole when anything in it raises, and
    never runs another statement in it after an error: the API's edge around a request's handler.

    Directly inside it (no nested ``atomic`` block in between) a statement that may be refused needs
    no savepoint of its own (:func:`savepoint_needed`). A savepoint exists only to keep a transaction
    usable after an error, and costs two round trips, SAVEPOINT and RELEASE, on every success.
    """
    with transaction.atomic():
        token = _WHOLE_AT.set(len(connection.atomic_blocks))
        try:
            yield
        finally:
            _WHOLE_AT.reset(token)


def savepoint_needed() -> bool:
    """Must a statement that may be refused run in a savepoint here, so that the transaction around it
    stays usable? Not outside a transaction (the statement is its own), and not directly inside
    :func:`atomic_rolled_back_whole`; in any other transaction, yes: its owner may go on after a
    refusal (a batch checks its other documents)."""
    if not connection.in_atomic_block:
        return False
    return _WHOLE_AT.get() != len(connection.atomic_blocks)
