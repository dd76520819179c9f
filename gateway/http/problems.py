"""RFC 9457 problem details for every error the gateway answers.

Every refusal carries ``type``, ``title``, ``status``, ``detail``, ``code`` and ``request_id``.
A 500 says only that something went wrong and which request id to quote; the trace goes to the
log, never to the caller.

A dependency that is down is not a bug in the request: PostgreSQL unreachable, restarting, in recovery
or cutting the connection, Redis refusing or timing out, the broker refusing a publish - wherever it
surfaces (a view, a middleware, DRF or plain Django) - answers ``503 service_unavailable`` with a small,
jittered ``Retry-After``; a page asks for the HTML version, which retries by itself. Only errors that
:func:`dependency_failure` recognises get this; everything else is still a 500.
"""

from __future__ import annotations

import logging
import secrets
import sys

from django.db import utils as db_utils
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django_tenants.utils import remove_www
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response
from rest_framework.views import set_rollback

from gateway import hosts
from gateway.metrics import count_refusal
from kernel.context import request_id_var
from kernel.errors import ApplicationError

logger = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"
TYPE_BASE = "https://errors.e-meterai.example/"

_DRF_CODES: dict[type, tuple[str, str]] = {
    drf_exceptions.ValidationError: ("validation_failed", gettext_lazy("The request has invalid fields")),
    drf_exceptions.ParseError: ("malformed_request", gettext_lazy("The request body could not be read")),
    drf_exceptions.AuthenticationFailed: ("authentication_failed", gettext_lazy("Authentication failed")),
    drf_exceptions.NotAuthenticated: ("authentication_required", gettext_lazy("Authentication required")),
    drf_exceptions.PermissionDenied: ("permission_denied", gettext_lazy("Not allowed")),
    drf_exceptions.NotFound: ("not_found", gettext_lazy("Not found")),
    drf_exceptions.MethodNotAllowed: ("method_not_allowed", gettext_lazy("Method not allowed")),
    drf_exceptions.NotAcceptable: ("not_acceptable", gettext_lazy("Not acceptable")),
    drf_exceptions.UnsupportedMediaType: ("unsupported_media_type", gettext_lazy("Unsupported media type")),
    drf_exceptions.Throttled: ("rate_limited", gettext_lazy("Too many requests")),
}


def _current_request_id(request: HttpRequest | None) -> str | None:
    return getattr(request, "request_id", None) or request_id_var.get()


def problem_body(*, request: HttpRequest | None, status: int, code: str, title: str, detail: str, **extra) -> dict:
    count_refusal(code)
    body = {
        "type": TYPE_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "request_id": _current_request_id(request),
    }
    body.update(extra)
    return body


def localized(body: dict, exc: ApplicationError) -> dict:
    """``body`` in the request's language (``gateway.i18n``): the error's ``title`` and, for ``detail``, its
    ``what_to_do``, when the catalogue translates them; the ``code`` and every other field stay as they are.
    In English the body is unchanged (``detail`` keeps the message that names this request's specifics)."""
    if (translation.get_language() or "en").startswith("en"):
        return body
    title = translation.gettext(exc.title)
    if title != exc.title:
        body["title"] = title
    if exc.what_to_do:
        what_to_do = translation.gettext(exc.what_to_do)
        if what_to_do != exc.what_to_do:
            body["detail"] = what_to_do
    return body


def _wants_html(request: HttpRequest | None) -> bool:
    if request is None or request.path.startswith("/api/"):
        return False
    accept = request.headers.get("Accept", "")
    return "text/html" in accept


def problem_response(
    request: HttpRequest | None, *, status: int, code: str, title: str, detail: str, headers=None, **extra
) -> HttpResponse:
    body = problem_body(request=request, status=status, code=code, title=title, detail=detail, **extra)
    if _wants_html(request):
        html = render_to_string("errors/problem.html", {"problem": body}, request=None)
        response = HttpResponse(html, status=status)
    else:
        response = JsonResponse(body, status=status, content_type=PROBLEM_CONTENT_TYPE)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def exception_handler(exc, context):
    """DRF's exception handler: domain errors and DRF errors alike become problem+json."""
    request = context.get("request")
    headers: dict[str, str] = {}
    dependency = dependency_failure(exc)
    if dependency is not None:
        _log_dependency_failure(dependency, exc)
        status, body, headers = 503, service_unavailable_body(request, dependency), unavailable_headers()
    elif isinstance(exc, ApplicationError):
        body = localized(exc.as_problem(), exc)
        count_refusal(exc.code)
        body["request_id"] = _current_request_id(request)
        headers.update(getattr(exc, "headers", {}) or {})
        status = exc.http_status
    elif isinstance(exc, drf_exceptions.APIException):
        code, title = next(
            ((c, t) for cls, (c, t) in _DRF_CODES.items() if isinstance(exc, cls)), ("request_refused", _("Refused"))
        )
        extra = {}
        if isinstance(exc, drf_exceptions.ValidationError):
            detail = _("Some fields are missing or invalid; see `errors` for each field.")
            extra["errors"] = exc.detail
        else:
            detail = str(exc.detail)
        if isinstance(exc, drf_exceptions.Throttled) and exc.wait is not None:
            headers["Retry-After"] = str(int(exc.wait) + 1)
        status = exc.status_code
        body = problem_body(request=request, status=status, code=code, title=title, detail=detail, **extra)
    else:
        from django.http import Http404

        if isinstance(exc, Http404):
            status = 404
            body = problem_body(
                request=request, status=404, code="not_found", title=_("Not found"), detail=_("No such resource.")
            )
        else:
            return None  # unexpected: Django's handler500 answers (and logs) it
    set_rollback()
    response = Response(body, status=status, headers=headers, content_type=PROBLEM_CONTENT_TYPE)
    if getattr(exc, "sheds_load", False):
        response._has_been_logged = True  # (django.request would log every one as an error)
    return response


# ---------------------------------------------------------------- Django-level handlers (outside DRF)


def handler400(request, exception=None):
    return problem_response(
        request,
        status=400,
        code="bad_request",
        title=_("Bad request"),
        detail=_("The request could not be understood."),
    )


def handler403(request, exception=None):
    return problem_response(
        request, status=403, code="permission_denied", title=_("Not allowed"), detail=_("You may not do this here.")
    )


def handler404(request, exception=None):
    return problem_response(
        request,
        status=404,
        code="not_found",
        title=_("Not found"),
        detail=_("Nothing is served at %(path)s.") % {"path": request.path},
    )


def handler500(request):
    # Django calls this inside its ``except`` block, so the exception is at hand: whatever raised it (a
    # view, a middleware such as the tenant lookup, a template), a dependency outage answers 503.
    dependency = dependency_failure(sys.exc_info()[1])
    if dependency is not None:
        _log_dependency_failure(dependency, sys.exc_info()[1])
        return service_unavailable_response(request, dependency)
    return problem_response(
        request,
        status=500,
        code="internal_error",
        title=_("Internal error"),
        detail=_(
            "Something went wrong on our side. Retry with the same Idempotency-Key: a retried "
            "request is never carried out twice. Quote the request id if it keeps happening."
        ),
    )


def csrf_failure(request, reason=""):
    return problem_response(
        request,
        status=403,
        code="csrf_failed",
        title=_("Form expired"),
        detail=_("The form was stale or sent from another site. Reload the page and submit it again."),
    )


# ---------------------------------------------------------------- dependency outages -> 503

# SQLSTATE classes and codes that mean "the database is not available", not "the request is wrong":
# 08 connection exception, 53 insufficient resources (too many connections, disk full), 57 operator
# intervention (admin shutdown, crash shutdown, cannot connect now - starting up or in recovery -,
# statement cancelled), 25006 read-only transaction (a standby, or a primary being failed over).
_UNAVAILABLE_SQLSTATE_CLASSES = ("08", "53", "57")
_UNAVAILABLE_SQLSTATES = {"25006"}

# Retry-After of a 503 for an outage: short (a restart or failover takes seconds), and spread so that
# clients refused at the same moment do not all come back at the same moment.
RETRY_AFTER_MIN_SECONDS = 2
RETRY_AFTER_SPREAD_SECONDS = 4  # 2, 3, 4 or 5 seconds

_DEPENDENCY_NAMES = {"postgres": "the database", "redis": "the queue and cache server", "broker": "the task queue"}


def _postgres_down(exc: BaseException) -> bool:
    import psycopg

    if isinstance(exc, db_utils.Error) and not isinstance(exc, db_utils.IntegrityError | db_utils.DataError):
        cause = exc.__cause__
        if isinstance(cause, psycopg.Error):
            return _postgres_down(cause)
        # Django's own: "connection already closed", a connection it could not open.
        return isinstance(exc, db_utils.OperationalError | db_utils.InterfaceError)
    if isinstance(exc, psycopg.Error):
        state = exc.sqlstate
        if state is None:  # raised by the client: connection failed, lost, closed, broken
            return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)
        return state[:2] in _UNAVAILABLE_SQLSTATE_CLASSES or state in _UNAVAILABLE_SQLSTATES
    return False


def _redis_down(exc: BaseException) -> bool:
    import redis

    # ConnectionError covers refused, reset, BusyLoading (restarting); ReadOnlyError: a replica after failover.
    return isinstance(exc, redis.ConnectionError | redis.TimeoutError | redis.exceptions.ReadOnlyError)


def _broker_down(exc: BaseException) -> bool:
    from kombu.exceptions import OperationalError as KombuOperationalError

    return isinstance(exc, KombuOperationalError)


def dependency_failure(exc: BaseException | None) -> str | None:
    """``"postgres"``, ``"redis"`` or ``"broker"`` when ``exc`` (or what it was raised from, or while
    handling) is that dependency being unavailable; ``None`` for anything else, a real bug included."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen and len(seen) < 8:
        seen.add(id(exc))
        if _postgres_down(exc):
            return "postgres"
        if _redis_down(exc):
            return "redis"
        if _broker_down(exc):
            return "broker"
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    return None


def retry_after_seconds() -> int:
    return RETRY_AFTER_MIN_SECONDS + secrets.randbelow(RETRY_AFTER_SPREAD_SECONDS)


def unavailable_headers(retry_after: int | None = None) -> dict[str, str]:
    return {"Retry-After": str(retry_after or retry_after_seconds()), "Cache-Control": "no-store"}


def service_unavailable_body(request: HttpRequest | None, dependency: str) -> dict:
    what = _DEPENDENCY_NAMES.get(dependency, "a service we depend on")
    return problem_body(
        request=request,
        status=503,
        code="service_unavailable",
        title="Temporarily unavailable",
        detail=f"We cannot reach {what} for a moment, so nothing was done with this request. Retry after "
        "`Retry-After` seconds (with the same Idempotency-Key, if you sent one: a retried request is never "
        "carried out twice).",
    )


def _log_dependency_failure(dependency: str, exc: BaseException | None) -> None:
    logger.warning(
        "dependency unavailable: answered 503",
        extra={"dependency": dependency, "error": type(exc).__name__ if exc is not None else None},
    )


def service_unavailable_response(request: HttpRequest, dependency: str) -> HttpResponse:
    """The 503 for an outage: problem+json for the API, a page that retries by itself for browsers."""
    retry_after = retry_after_seconds()
    headers = unavailable_headers(retry_after)
    if not _wants_html(request):
        body = service_unavailable_body(request, dependency)
        return JsonResponse(body, status=503, content_type=PROBLEM_CONTENT_TYPE, headers=headers)
    context = {
        "request_id": _current_request_id(request),
        "retry_after": retry_after,
        "what": _DEPENDENCY_NAMES.get(dependency, "a service we depend on"),
        "site": _site_of(request),
        "again": request.get_full_path() if request.method in ("GET", "HEAD") else None,
    }
    html = render_to_string("errors/unavailable.html", context, request=None)
    return HttpResponse(html, status=503, headers=headers)


def _last_known_tenant(request: HttpRequest):
    try:
        hostname = remove_www(request.get_host().split(":")[0])  # as TenantMiddleware.hostname_from_request
    except Exception:  # noqa: BLE001 - a host Django refuses (DisallowedHost) has no channel
        return None
    return hosts.last_known(hostname)


def _site_of(request: HttpRequest) -> dict:
    """Which of our sites the page belongs to, told without the database (it may be the thing that is down):
    the request's channel, or the channel the host pointed to a moment ago, or the path."""
    path = request.path
    if path.startswith("/backoffice/"):
        return {"realm": "issuer back office", "home": "/backoffice/", "nav": [], "footer": None}
    tenant = getattr(request, "tenant", None)
    if tenant is None:
        tenant = _last_known_tenant(request)
    public = tenant is None or getattr(tenant, "schema_name", "public") == "public"
    if path.startswith("/pay/"):
        return {"realm": "payment simulator", "home": None, "nav": [], "footer": None}
    if tenant is not None and not public:
        return {
            "realm": tenant.name,
            "home": "/",
            "nav": [],
            "footer": f"{tenant.name} \u00b7 channel portal of the e-Meterai gateway",
        }
    if tenant is not None:
        return {
            "realm": "issuer",
            "home": "/",
            "nav": [("/verify", "Verify a stamp"), ("/status", "Status")],
            "footer": None,
        }
    return {"realm": "gateway", "home": None, "nav": [], "footer": None}
