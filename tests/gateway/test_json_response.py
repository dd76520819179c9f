"""``json_response`` answers byte for byte and header for header as DRF's ``Response`` would."""

from __future__ import annotations

import datetime
import decimal

import pytest
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from gateway.http.edge import json_response

DATA = {
    "id": "stp_1",
    "text": "Jl. Merdeka \u2028 \u2029 \u00e9 \u20ac \U0001f600 \"quoted\" \\ </script>",
    "when": datetime.datetime(2026, 11, 25, 17, 0, tzinfo=datetime.UTC),
    "day": datetime.date(2026, 11, 25),
    "amount": decimal.Decimal("10000.50"),
    "box": [40.0, 40.5, 140.0, -0.0],
    "nested": {"none": None, "flag": True, "n": 2**63 - 1},
}


def _view(fast: bool, renderers):
    class View(APIView):
        renderer_classes = renderers

        def get(self, request):
            if fast:
                return json_response(request, DATA, status=202, headers={"Location": "/api/v1/stamps/stp_1"})
            return Response(DATA, status=202, headers={"Location": "/api/v1/stamps/stp_1"})

    return View.as_view()


@pytest.mark.parametrize("accept", [None, "*/*", "application/json", "application/json; indent=4", "text/html"])
@pytest.mark.parametrize("renderers", [[JSONRenderer], [JSONRenderer, BrowsableAPIRenderer]])
def test_same_bytes_and_headers_as_a_drf_response(accept, renderers):
    factory = APIRequestFactory()
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}
    answers = []
    for fast in (True, False):
        response = _view(fast, renderers)(factory.get("/x", **headers))
        if hasattr(response, "render"):
            response.render()
        answers.append((response.status_code, dict(response.items()), response.content))
    (status, headers_out, body), (_, drf_headers, drf_body) = answers
    assert headers_out == drf_headers
    if headers_out["Content-Type"].startswith("text/html"):
        return  # the browsable page: a DRF Response either way (its CSRF token differs from render to render)
    assert body == drf_body
    if status == 202 and accept != "application/json; indent=4":
        assert b"\\u2028" in body and b'"amount":10000.5' in body


def test_a_value_json_cannot_carry_is_refused_as_drf_refuses_it():
    factory = APIRequestFactory()
    for fast in (True, False):
        view = _view(fast, [JSONRenderer])
        DATA["box"][3] = float("nan")
        try:
            with pytest.raises(ValueError):
                response = view(factory.get("/x"))
                response.render() if hasattr(response, "render") else None
        finally:
            DATA["box"][3] = -0.0
