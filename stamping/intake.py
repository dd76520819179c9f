"""The call of ``stamping_intake`` (``stamping.sql``): one round trip per stamp request.

A single stamp request runs the intake as its own transaction (the connection is in autocommit), and
there it goes straight through libpq: ``PQexecPrepared`` with the parameters packed here in binary
format, typed by the prepared statement, and the answer read in binary. psycopg's cursor machinery
(query conversion, adapter lookup, its prepare manager and wait loop) costs about 100 us of CPU for
this call; this costs about 40. Binary text parameters also cannot be cut short: libpq sends
text-format values as C strings, so a NUL in one would silently end it; in binary the server refuses
it, as psycopg's path does.

Anything else takes psycopg's cursor, exactly as before: a call inside a transaction (a batch, where
psycopg must open the transaction first), a connection not in UTF-8, a value that does not fit its
binary type. Errors are psycopg's own exception for the result, raised inside Django's error
wrapping, so callers see the same ``DatabaseError`` with the same ``sqlstate`` either way, and a
broken connection is noticed and replaced as after any failed query.
"""

from __future__ import annotations

import datetime
import struct
from collections.abc import Callable

import psycopg
from django.db import connection
from psycopg import pq

from kernel.db import raw_cursor
from stamping.sql import CALL_INTAKE

# stamping_intake's parameters, in order, with their PostgreSQL types.
PARAM_TYPES = (
    "text", "int8", "text", "text", "int8", "int4", "text", "text", "text", "int4", "int4",
    "float8", "float8", "float8", "float8", "text", "text", "text", "date", "text", "text", "bytea", "bytea", "text",
)  # fmt: skip
_OIDS = {"text": 25, "int8": 20, "int4": 23, "float8": 701, "date": 1082, "bytea": 17}
_PG_EPOCH_DATE = datetime.date(2000, 1, 1)
_PG_EPOCH = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)
_INT8, _INT4, _FLOAT8 = struct.Struct("!q"), struct.Struct("!i"), struct.Struct("!d")

_PACKERS: dict[str, Callable[[object], bytes]] = {
    "text": lambda value: value.encode(),  # type: ignore[attr-defined]
    "int8": _INT8.pack,
    "int4": _INT4.pack,
    "float8": _FLOAT8.pack,
    "date": lambda value: _INT4.pack((value - _PG_EPOCH_DATE).days),  # type: ignore[operator]
    "bytea": lambda value: bytes(memoryview(value)),  # type: ignore[arg-type]
}
_PACK = tuple(_PACKERS[name] for name in PARAM_TYPES)
_BINARY = (1,) * len(PARAM_TYPES)
_TYPE_OIDS = [_OIDS[name] for name in PARAM_TYPES]
_SQL = "SELECT {schema}.stamping_intake(" + ", ".join(f"${i}" for i in range(1, len(PARAM_TYPES) + 1)) + ")"
_PREPARED_ATTR = "_gateway_prepared_intakes"  # on the psycopg connection: the names prepared on it


def call_intake(schema_name: str, params: list) -> datetime.datetime:
    """Run ``stamping_intake`` of ``schema_name`` with ``params``; return the job's ``created_at``."""
    connection.ensure_connection()
    conn = connection.connection
    with connection.wrap_database_errors:
        packed = _packed(params) if conn.autocommit and conn.info.encoding == "utf-8" else None
        if packed is None:
            return _through_cursor(schema_name, params)
        with conn.lock:
            return _through_libpq(conn, schema_name, packed)


def _packed(params: list) -> list[bytes | None] | None:
    try:
        return [None if value is None else pack(value) for pack, value in zip(_PACK, params, strict=True)]
    except (struct.error, OverflowError, AttributeError, TypeError):
        return None  # psycopg's path converts it, or the server refuses it, as before


def _through_libpq(conn: psycopg.Connection, schema_name: str, packed: list[bytes | None]) -> datetime.datetime:
    pgconn = conn.pgconn
    name = f"gateway_intake_{schema_name}".encode()
    prepared: set[bytes] = conn.__dict__.setdefault(_PREPARED_ATTR, set())
    for attempt in range(2):
        if name not in prepared:
            sql = _SQL.replace("{schema}", connection.ops.quote_name(schema_name))
            _check(conn, pgconn.prepare(name, sql.encode(), _TYPE_OIDS), pq.ExecStatus.COMMAND_OK)
            prepared.add(name)
        result = pgconn.exec_prepared(name, packed, _BINARY, 1)
        if (
            attempt == 0
            and result.status == pq.ExecStatus.FATAL_ERROR
            and result.error_field(pq.DiagnosticField.SQLSTATE) == b"26000"
        ):
            prepared.discard(name)  # deallocated behind our back (DISCARD ALL): prepare it again, once
            continue
        _check(conn, result, pq.ExecStatus.TUPLES_OK)
        (micros,) = _INT8.unpack(result.get_value(0, 0))
        return _PG_EPOCH + datetime.timedelta(microseconds=micros)
    raise AssertionError("unreachable")  # pragma: no cover


def _check(conn: psycopg.Connection, result: pq.abc.PGresult, expected: pq.ExecStatus) -> None:
    if result.status == expected:
        return
    if conn.pgconn.status != pq.ConnStatus.OK:
        raise psycopg.OperationalError("the connection to the server was lost during the stamp intake")
    raise psycopg.errors.error_from_result(result, encoding=conn.info.encoding)


def _through_cursor(schema_name: str, params: list) -> datetime.datetime:
    """psycopg's prepared statement with server-side binding: parsed and planned once per connection,
    the document sent as binary, no ``SET search_path`` first (the function pins its own)."""
    sql = CALL_INTAKE.replace("{schema}", connection.ops.quote_name(schema_name))
    with raw_cursor() as cursor:  # (a plain psycopg cursor here prepared nothing: Django's threshold is None)
        cursor.execute(sql, params, prepare=True)
        return cursor.fetchone()[0]
