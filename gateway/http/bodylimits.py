"""How large a request body may be, per path, and the refusal for one that is larger.

``gateway.middleware.BodyLimitMiddleware`` applies these before anything reads the body (before the
channel lookup, the API key, CSRF or a parser): a ``Content-Length`` over the path's limit is a 413
at once. A body without ``Content-Length`` (chunked) is refused with 411: Django would read it as empty
(under WSGI it reads exactly ``Content-Length`` bytes, none without it); under ASGI, where Django's
handler reads everything first, :class:`gateway.asgi.BodyLimitApplication` stops receiving at the limit.

The limits come from settings: a document upload (``/api/v1/stamps``, ``/api/v1/verify``, the
``/verify`` page) may carry ``STAMP_DEFAULT_MAX_BYTES`` plus room for its form fields, a batch
``STAMP_BATCH_MAX_BYTES``, anything else ``REQUEST_MAX_BYTES``.
"""

from __future__ import annotations

from django.conf import settings

from gateway.http.parsers import max_body_bytes
from issuer.errors import DocumentTooLarge
from kernel.errors import ApplicationError


class RequestTooLarge(ApplicationError):
    code = "request_too_large"
    http_status = 413
    title = "The request is too large"
    what_to_do = "The body is larger than this endpoint accepts (`detail` says how much it does). Send less."


class LengthRequired(ApplicationError):
    code = "length_required"
    http_status = 411
    title = "Content-Length required"
    what_to_do = "Send the body with a `Content-Length` header (not chunked): the gateway reads no body without one."


DOCUMENT_PATHS = ("/api/v1/stamps", "/api/v1/verify", "/verify")
BATCH_PATHS = ("/api/v1/batches",)


def body_limit(path: str) -> tuple[int, type[ApplicationError]]:
    """The most bytes a request to ``path`` may carry, and the error that refuses more."""
    path = path.rstrip("/") or "/"
    if path in DOCUMENT_PATHS:
        return max_body_bytes(), DocumentTooLarge
    if path in BATCH_PATHS:
        return settings.STAMP_BATCH_MAX_BYTES, DocumentTooLarge
    return settings.REQUEST_MAX_BYTES, RequestTooLarge


def too_large(path: str, length: int | None) -> ApplicationError:
    limit, error = body_limit(path)
    size = f"The body is {length} bytes" if length is not None else "The body is larger than that"
    return error(f"{size}; the most a request to {path} may carry is {limit} bytes.")
