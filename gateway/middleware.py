"""Edge middleware: request ids, and channel (tenant) resolution by host."""

from __future__ import annotations

import re
import secrets

from django.db import connection
from django_tenants.middleware.main import TenantMainMiddleware
from django_tenants.utils import get_tenant_domain_model

from gateway import hosts
from gateway.http.bodylimits import LengthRequired, body_limit, too_large
from gateway.http.problems import problem_response
from gateway.ratelimit import client_address
from kernel.context import channel_var, client_address_var, request_id_var

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")
REQUEST_ID_HEADER = "X-Request-Id"


class RequestIdMiddleware:
    """Takes a well-formed ``X-Request-Id`` from the caller or makes one; echoes it back."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else f"req_{secrets.token_hex(12)}"
        request.request_id = request_id
        token = request_id_var.set(request_id)
        channel_token = channel_var.set(None)
        client_token = client_address_var.set(client_address(request))
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
            channel_var.reset(channel_token)
            client_address_var.reset(client_token)
        response[REQUEST_ID_HEADER] = request_id
        discard_unread_body(request, response)
        return response


UNREAD_BODY_DISCARD_LIMIT = 32 * 1024 * 1024


def discard_unread_body(request, response) -> None:
    """A request refused before its body was read (admission, a bulkhead, a bad key): read the body
    and throw it away, so the client, still sending, gets the answer instead of a reset connection.
    Reading costs a copy from the socket, no parsing; a body over the limit closes the connection."""
    if getattr(request, "_read_started", True):
        return
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return
    if length <= 0:
        return
    if length > UNREAD_BODY_DISCARD_LIMIT:
        response["Connection"] = "close"
        return
    stream = getattr(request, "_stream", None)
    if stream is None:
        return
    try:
        while stream.read(256 * 1024):
            pass
    except OSError:
        response["Connection"] = "close"


class BodyLimitMiddleware:
    """Refuses a body over its path's limit (``gateway.http.bodylimits``) from ``Content-Length``
    alone, before the channel lookup, the API key, CSRF or a parser reads a byte of it: ``413``
    problem+json (``document_too_large`` on the upload paths, ``request_too_large`` elsewhere). A
    ``Content-Length`` that is not a number is a 400, a chunked body without one a 411."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        raw = request.META.get("CONTENT_LENGTH")
        if not raw and request.META.get("HTTP_TRANSFER_ENCODING"):
            # A chunked body: Django would take it for an empty one. Say so instead of refusing the
            # "missing" fields; nothing of it is read.
            request._read_started = True
            exc = LengthRequired(f"{request.method} {request.path_info} needs a Content-Length header.")
            return _refusal(request, exc)
        if raw:
            try:
                length = int(raw)
            except ValueError:
                length = -1
            if length < 0:
                request._read_started = True  # nothing to discard: the length cannot be trusted
                response = problem_response(
                    request, status=400, code="bad_request", title="Bad request",
                    detail="The Content-Length header is not a number of bytes.",
                )
                response["Connection"] = "close"
                return response
            limit, _ = body_limit(request.path_info)
            if length > limit:
                return _refusal(request, too_large(request.path_info, length))
        return self.get_response(request)


def _refusal(request, exc):
    return problem_response(request, status=exc.http_status, code=exc.code, title=exc.title, detail=exc.message)


class TenantMiddleware(TenantMainMiddleware):
    """django-tenants' host -> schema routing with three changes:

    - probes (``/healthz``, ``/readyz``) answer on any host without touching tenants;
    - an unknown host gets a clear 404 (problem+json or a page), never an exception;
    - host -> channel lookups are cached in-process for a few seconds (one less query per request).
    """

    PROBE_PATHS = ("/healthz", "/readyz", "/metrics")
    def process_request(self, request):
        query = request.META.get("QUERY_STRING", "")
        if "\x00" in request.path or "%00" in query or "\x00" in query:
            # No path or parameter can hold a NUL (PostgreSQL text cannot): a clear 400, not a 500 later.
            return problem_response(
                request, status=400, code="bad_request", title="Bad request", detail="The URL contains a NUL character."
            )
        if request.path in self.PROBE_PATHS:
            connection.set_schema_to_public()
            request.urlconf = "gateway.urls_probes"
            return None
        response = super().process_request(request)
        tenant = getattr(request, "tenant", None)
        if tenant is not None:
            channel_var.set(tenant.schema_name)
        return response

    def get_tenant(self, domain_model, hostname):
        tenant = hosts.cached(hostname)
        if tenant is None:
            tenant = super().get_tenant(domain_model, hostname)
            hosts.remember(hostname, tenant)
        return tenant

    @classmethod
    def forget(cls) -> None:
        hosts.forget()

    @classmethod
    def last_known_tenant(cls, request):
        """The channel this request's host was served as the last time it was looked up, expired or not
        (None if never): an error page says whose site it is even when the database cannot tell."""
        try:
            hostname = cls.hostname_from_request(request)
        except Exception:  # noqa: BLE001 - a host Django refuses (DisallowedHost) has no channel
            return None
        return hosts.last_known(hostname)

    def no_tenant_found(self, request, hostname):
        return problem_response(
            request,
            status=404,
            code="unknown_host",
            title="Unknown host",
            detail=f"No channel is served at {hostname!r}. Check the address you were given by your channel.",
        )


__all__ = ["BodyLimitMiddleware", "RequestIdMiddleware", "TenantMiddleware", "get_tenant_domain_model"]
