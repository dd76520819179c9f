"""Every page carries a Content-Security-Policy that allows no inline script or style, and no
template needs one (the browser check is tests/e2e/browser/test_csp.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.test import Client

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("host", "path"), [("issuer.test", "/"), ("issuer.test", "/verify"), ("alpha.test", "/login/")]
)
def test_pages_carry_a_policy_without_inline_allowances(host, path):
    response = Client(HTTP_HOST=host).get(path)

    assert response.status_code == 200
    directives = dict(
        (part.split(" ", 1) + [""])[:2] for part in (p.strip() for p in response["Content-Security-Policy"].split(";"))
    )
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in response["Content-Security-Policy"]


INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE), "an inline <script>"),
    (re.compile(r"\son[a-z]+\s*=", re.IGNORECASE), "an inline event handler"),
    (re.compile(r"\sstyle\s*=", re.IGNORECASE), "an inline style attribute"),
    (re.compile(r"<style", re.IGNORECASE), "a <style> element"),
    (re.compile(r"javascript:", re.IGNORECASE), "a javascript: URL"),
]


def test_no_template_has_inline_script_or_style():
    found = [
        f"{path.relative_to(ROOT)}: {what}"
        for path in sorted((ROOT / "templates").rglob("*.html"))
        for pattern, what in INLINE
        if pattern.search(path.read_text())
    ]
    assert found == []


# --------------------------------------------------------------------------- gateway.csp: built once


def _both(request, make_response):
    """The headers django-csp's own middleware sets, and those of ours, for the same request and view."""
    from csp.middleware import CSPMiddleware as Stock

    from gateway.csp import CSPMiddleware as Ours

    answers = []
    for middleware in (Stock(make_response), Ours(make_response)):
        response = middleware(request)
        answers.append(
            {name: response.get(name) for name in ("Content-Security-Policy", "Content-Security-Policy-Report-Only")}
        )
    return answers


def test_a_plain_response_gets_exactly_django_csps_headers(rf, settings):
    from django.http import HttpResponse, JsonResponse

    settings.CONTENT_SECURITY_POLICY_REPORT_ONLY = {"DIRECTIVES": {"default-src": ["'none'"], "report-uri": "/csp"}}
    for view in (lambda request: JsonResponse({"ok": True}), lambda request: HttpResponse("<p>page</p>")):
        stock, ours = _both(rf.get("/api/v1/stamps"), view)
        assert ours == stock and stock["Content-Security-Policy"] and stock["Content-Security-Policy-Report-Only"]
        again = _both(rf.get("/login/"), view)[1]  # (from the copy built on the first response)
        assert again == stock


def test_a_response_with_a_policy_of_its_own_or_a_changed_setting_is_not_given_the_copy(rf, settings):
    from csp.decorators import csp_exempt, csp_update
    from django.http import HttpResponse

    plain = _both(rf.get("/"), lambda request: HttpResponse())[1]["Content-Security-Policy"]
    updated = csp_update({"img-src": ["https://maps.example"]})(lambda request: HttpResponse())
    stock, ours = _both(rf.get("/"), updated)
    assert ours == stock and "https://maps.example" in ours["Content-Security-Policy"]
    stock, ours = _both(rf.get("/"), csp_exempt()(lambda request: HttpResponse()))
    assert ours == stock and ours["Content-Security-Policy"] is None
    settings.CONTENT_SECURITY_POLICY = {"DIRECTIVES": {"default-src": ["'self'"], "frame-ancestors": ["'self'"]}}
    stock, ours = _both(rf.get("/"), lambda request: HttpResponse())
    assert ours == stock and ours["Content-Security-Policy"] != plain


def test_a_nonce_asked_for_after_the_header_is_written_is_refused(rf):
    from csp.exceptions import CSPNonceError
    from django.http import HttpResponse

    from gateway.csp import CSPMiddleware

    request = rf.get("/")
    CSPMiddleware(lambda request: HttpResponse())(request)
    with pytest.raises(CSPNonceError):
        str(request.csp_nonce)


def test_with_excluded_paths_every_response_goes_through_django_csp(rf, settings):
    from django.http import HttpResponse

    settings.CONTENT_SECURITY_POLICY = {**settings.CONTENT_SECURITY_POLICY, "EXCLUDE_URL_PREFIXES": ["/raw/"]}
    for path in ("/raw/file", "/login/", "/raw/other"):
        stock, ours = _both(rf.get(path), lambda request: HttpResponse())
        assert ours == stock
        assert (ours["Content-Security-Policy"] is None) == path.startswith("/raw/")
