"""Per-request context (request id, channel, client address) shared by logging, the error envelope and
the audit log."""

from __future__ import annotations

import contextvars

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
channel_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("channel", default=None)
client_address_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("client_address", default=None)
