"""What a connection sent PostgreSQL, read from libpq's own trace of the protocol.

Django's ``CaptureQueriesContext`` sees only what goes through Django's cursors. The statements every
stamp and every idempotent request run go through ``kernel.db.raw_cursor`` (prepared, bound on the
server) or straight through libpq (``stamping.intake``), so a test that counts statements or round
trips reads the protocol instead: every simple query and every execution of a prepared or unnamed
statement, with its text.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.db import connection
from psycopg import pq

_QUERY = re.compile(r'^ "(.*)"$', re.DOTALL)
_PARSE = re.compile(r'^ "([^"]*)" "(.*)" \d+(?: \S+)*$', re.DOTALL)
_BIND = re.compile(r'^ "[^"]*" "([^"]*)"')


def _messages(trace: str) -> list[str]:
    """The trace's messages, one each: a statement's text may span lines (a new message starts with
    its direction, ``F`` or ``B``, and a tab)."""
    messages: list[str] = []
    for line in trace.split("\n"):
        if line.startswith(("F\t", "B\t")) or not messages:
            messages.append(line)
        else:
            messages[-1] += "\n" + line
    return [message for message in messages if message]


@dataclass
class Sent:
    statements: list[str] = field(default_factory=list)  # each statement run, in order, as its SQL text
    round_trips: int = 0  # messages that wait for the server's answer: a simple query, or a Sync

    def verbs(self, *, skip: tuple[str, ...] = ("SET search_path",)) -> list[str]:
        """Each statement's first word, leaving out those that start with one of ``skip``."""
        return [sql.split()[0] for sql in self.statements if not sql.startswith(skip)]


@contextlib.contextmanager
def sent(conn=connection) -> Iterator[Sent]:
    """Record what Django's connection ``conn`` sends inside the block (the result fills at its end)."""
    conn.ensure_connection()
    pgconn = conn.connection.pgconn
    result = Sent()
    with tempfile.TemporaryFile() as trace:
        pgconn.trace(trace.fileno())
        pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
        try:
            yield result
        finally:
            pgconn.untrace()
        trace.seek(0)
        lines = _messages(trace.read().decode(errors="replace"))
    named = _prepared(conn)
    parsed: dict[str, str] = {}
    for line in lines:
        direction, _length, message, *rest = line.split("\t", 3)
        if direction != "F":
            continue
        detail = rest[0] if rest else ""
        if message == "Query":
            result.round_trips += 1
            result.statements.append(_QUERY.match(detail).group(1))
        elif message == "Sync":
            result.round_trips += 1
        elif message == "Parse":
            name, text = _PARSE.match(detail).groups()
            parsed[name] = text
        elif message == "Bind":
            name = _BIND.match(detail).group(1)
            result.statements.append(parsed.get(name) or named[name])


def _prepared(conn) -> dict[str, str]:
    """The statements prepared on the connection, by name (after the trace: not part of it)."""
    if conn.connection is None:
        return {}
    with conn.connection.cursor() as cursor:
        cursor.execute("SELECT name, statement FROM pg_prepared_statements")
        return dict(cursor.fetchall())
