"""django-tenants' PostgreSQL backend, without a ``SET search_path`` per request.

django-tenants forgets the connection's search path whenever a tenant is set: on every request (its
middleware sets the public schema first, then the channel's) and on every ``schema_context``, so the
next query first sends ``SET search_path`` again, one round trip, even when that is the path the session
already has. (``TENANT_LIMIT_SET_CALLS`` only keeps it from being sent before every query.) This backend
remembers the path last set on the session, and skips the ``SET`` when the tenant's path is that one.

It forgets that path wherever django-tenants knows the session's path may have changed: when the
connection closes, rolls back or rolls back to a savepoint (a ``SET`` in a transaction is undone with
it), and when setting it failed. Nothing else in the project sets ``search_path`` on a session (the
stamping intake pins its own on the function). Like the prepared statements, this needs a session of
its own per connection: a pooler in session mode, not transaction mode (docs/operations.md).

Its health check (``CONN_HEALTH_CHECKS``, run before the first query of every request on a kept
connection) costs no round trip when there is nothing to doubt: Django's sends ``SELECT 1`` and waits
for it, one round trip on every request. An idle session that the server ended (it was terminated,
or the server restarted or went away with a FIN) has something to read on its socket: the server's
FATAL, or the end of the stream. Only then, or when the session is not idle and in good order, is
``SELECT 1`` sent. A server that vanished without a word (no FIN: a cut network) passes the check,
as it could pass ``SELECT 1`` a moment before failing; the request's first query then fails, is
answered ``503 service_unavailable``, and Django closes the connection at the request's end.
"""

from __future__ import annotations

import select

import psycopg
from django_tenants.postgresql_backend.base import DatabaseWrapper as TenantDatabaseWrapper
from psycopg import pq


class DatabaseWrapper(TenantDatabaseWrapper):
    _session_path: list[str] | None = None  # the search path set on the session, when known

    def set_tenant(self, tenant, include_public=True):
        super().set_tenant(tenant, include_public)
        if self._session_path is not None and self._get_cursor_search_paths() == self._session_path:
            self.search_path_set_schemas = self._session_path  # in force already: no SET before the next query

    def _handle_search_path(self, cursor=None):
        super()._handle_search_path(cursor)
        if not self._setting_search_path:  # (not a re-entry while the SET itself gets its cursor)
            self._session_path = self.search_path_set_schemas  # None when the SET failed: unknown

    def close(self):
        self._session_path = None
        super().close()

    def rollback(self):
        self._session_path = None
        super().rollback()

    def savepoint_rollback(self, sid):
        try:
            super().savepoint_rollback(sid)
        finally:
            self._session_path = None

    def is_usable(self):
        if self.connection is None:
            return False
        return self._quietly_idle() or super().is_usable()

    def _quietly_idle(self) -> bool:
        """Open, idle, in good order, and with nothing from the server waiting to be read."""
        try:
            pgconn = self.connection.pgconn
            if pgconn.status != pq.ConnStatus.OK or pgconn.transaction_status != pq.TransactionStatus.IDLE:
                return False
            poller = select.poll()  # (not select(): it cannot watch a descriptor past 1023)
            poller.register(pgconn.socket, select.POLLIN)
            waiting = poller.poll(0)
        except (OSError, ValueError, psycopg.Error):
            return False
        return not waiting
