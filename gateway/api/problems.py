"""RFC 9457 problem details for every error the gateway answers.

Every refusal carries ``type``, ``title``, ``status``, ``detail``, ``code`` and ``request_id``.
A 500 says only that something went wrong and which request id to quote; the trace goes to the
log, never to the caller.
"""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response
from rest_framework.views import set_rollback

from gateway.context import request_id_var
from gateway.errors import ApplicationError

logger = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"
TYPE_BASE = "https://errors.e-meterai.example/"

_DRF_CODES: dict[type, tuple[str, str]] = {
    drf_exceptions.ValidationError: ("validation_failed", "The request has invalid fields"),
    drf_exceptions.ParseError: ("malformed_request", "The request body could not be read"),
    drf_exceptions.AuthenticationFailed: ("authentication_failed", "Authentication failed"),
    drf_exceptions.NotAuthenticated: ("authentication_required", "Authentication required"),
    drf_exceptions.PermissionDenied: ("permission_denied", "Not allowed"),
    drf_exceptions.NotFound: ("not_found", "Not found"),
    drf_exceptions.MethodNotAllowed: ("method_not_allowed", "Method not allowed"),
    drf_exceptions.NotAcceptable: ("not_acceptable", "Not acceptable"),
    drf_exceptions.UnsupportedMediaType: ("unsupported_media_type", "Unsupported media type"),
    drf_exceptions.Throttled: ("rate_limited", "Too many requests"),
}


def _current_request_id(request: HttpRequest | None) -> str | None:
    return getattr(request, "request_id", None) or request_id_var.get()


def problem_body(*, request: HttpRequest | None, status: int, code: str, title: str, detail: str, **extra) -> dict:
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
    if isinstance(exc, ApplicationError):
        body = exc.as_problem()
        body["request_id"] = _current_request_id(request)
        headers.update(getattr(exc, "headers", {}) or {})
        status = exc.http_status
    elif isinstance(exc, drf_exceptions.APIException):
        code, title = next(
            ((c, t) for cls, (c, t) in _DRF_CODES.items() if isinstance(exc, cls)), ("request_refused", "Refused")
        )
        extra = {}
        if isinstance(exc, drf_exceptions.ValidationError):
            detail = "Some fields are missing or invalid; see `errors` for each field."
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
                request=request, status=404, code="not_found", title="Not found", detail="No such resource."
            )
        else:
            return None  # unexpected: Django's handler500 answers (and logs) it
    set_rollback()
    response = Response(body, status=status, headers=headers, content_type=PROBLEM_CONTENT_TYPE)
    return response


# ---------------------------------------------------------------- Django-level handlers (outside DRF)


def handler400(request, exception=None):
    return problem_response(
        request, status=400, code="bad_request", title="Bad request", detail="The request could not be understood."
    )


def handler403(request, exception=None):
    return problem_response(
        request, status=403, code="permission_denied", title="Not allowed", detail="You may not do this here."
    )


def handler404(request, exception=None):
    return problem_response(
        request, status=404, code="not_found", title="Not found", detail=f"Nothing is served at {request.path}."
    )


def handler500(request):
    return problem_response(
        request,
        status=500,
        code="internal_error",
        title="Internal error",
        detail="Something went wrong on our side. Retry with the same Idempotency-Key: a retried "
        "request is never carried out twice. Quote the request id if it keeps happening.",
    )


def csrf_failure(request, reason=""):
    return problem_response(
        request,
        status=403,
        code="csrf_failed",
        title="Form expired",
        detail="The form was stale or sent from another site. Reload the page and submit it again.",
    )
