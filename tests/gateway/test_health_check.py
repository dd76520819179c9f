"""The connection health check (``CONN_HEALTH_CHECKS``, before a request's first query on a kept
connection) sends nothing for an idle session the server has said nothing on, and still finds a
session the server ended. (``live_db``: real sessions, no test transaction around them.)"""

from __future__ import annotations

import time

import psycopg
from django.db import connection

from tests import protocol


def _use() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def test_an_idle_session_in_good_order_is_checked_without_a_round_trip(live_db):
    _use()
    with protocol.sent(connection) as sent:
        assert connection.is_usable()
    assert sent.round_trips == 0, sent.statements


def test_a_session_the_server_ended_is_found_unusable_and_replaced(live_db):
    pid = _use()
    params = connection.get_connection_params()
    with psycopg.connect(**{k: v for k, v in params.items() if k != "cursor_factory"}, autocommit=True) as other:
        assert other.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()[0]
    deadline = time.monotonic() + 10
    while connection.is_usable():  # (the server's goodbye reaches the socket a moment later)
        assert time.monotonic() < deadline, "a terminated session still passed the health check"
        time.sleep(0.05)
    connection.health_check_done = False
    connection.close_if_health_check_failed()  # what a request's start does
    assert connection.connection is None
    assert _use() != pid  # the next query opens a new session


def test_a_session_inside_a_transaction_is_asked(live_db):
    """Not idle: the check cannot read the session's state off its socket, so it asks (SELECT 1)."""
    _use()
    connection.connection.execute("BEGIN")
    try:
        with protocol.sent(connection) as sent:
            assert connection.is_usable()
        assert sent.verbs() == ["SELECT"]
    finally:
        connection.connection.execute("ROLLBACK")
