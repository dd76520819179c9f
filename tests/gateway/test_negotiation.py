"""The fast content negotiation answers exactly as DRF's default does, for every request shape."""

from __future__ import annotations

import itertools

import pytest
from django.http import Http404
from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from gateway.http.negotiation import FastContentNegotiation
from gateway.http.parsers import SingleUploadParser


class StarParser(JSONParser):
    media_type = "*/*"


class JsonV2Renderer(JSONRenderer):
    media_type = "application/json; version=2"


CONTENT_TYPES = [
    "",
    "application/json",
    "application/json; charset=utf-8",
    "APPLICATION/JSON",
    "multipart/form-data; boundary=xyz",
    "multipart/form-data",
    "application/x-www-form-urlencoded",
    "text/plain",
]
PARSER_SETS = [
    [JSONParser()],
    [SingleUploadParser(), FormParser()],
    [JSONParser(), FormParser(), MultiPartParser()],
    [StarParser(), JSONParser()],
    [],
]
ACCEPTS = [
    None,
    "*/*",
    "application/json",
    " application/json ",
    "application/json; indent=4",
    "text/html",
    "text/html, application/json;q=0.9",
    "application/*",
    "APPLICATION/JSON",
]
RENDERER_SETS = [[JSONRenderer()], [JSONRenderer(), BrowsableAPIRenderer()], [JsonV2Renderer(), JSONRenderer()]]
QUERIES = ["", "?format=json", "?format=api", "?format=", "?other=1"]


def _request(content_type: str = "", accept: str | None = None, query: str = "") -> Request:
    extra = {"HTTP_ACCEPT": accept} if accept is not None else {}
    django_request = APIRequestFactory().generic("POST", f"/x{query}", data=b"{}", content_type=content_type, **extra)
    return Request(django_request)


def _outcome(call):
    try:
        renderer_or_parser = call()
    except NotAcceptable:
        return "406"
    except Http404:
        return "404"
    if isinstance(renderer_or_parser, tuple):
        renderer, media_type = renderer_or_parser
        return type(renderer), media_type
    return type(renderer_or_parser) if renderer_or_parser is not None else None


@pytest.mark.parametrize(("content_type", "parsers"), itertools.product(CONTENT_TYPES, PARSER_SETS))
def test_parser_choice_matches_drf(content_type, parsers):
    request = _request(content_type)
    fast = _outcome(lambda: FastContentNegotiation().select_parser(request, parsers))
    default = _outcome(lambda: DefaultContentNegotiation().select_parser(request, parsers))
    assert fast == default


@pytest.mark.parametrize(
    ("accept", "renderers", "query", "suffix"),
    itertools.product(ACCEPTS, RENDERER_SETS, QUERIES, [None, "json"]),
)
def test_renderer_choice_matches_drf(accept, renderers, query, suffix):
    request = _request(accept=accept, query=query)
    fast = _outcome(lambda: FastContentNegotiation().select_renderer(request, renderers, suffix))
    default = _outcome(lambda: DefaultContentNegotiation().select_renderer(request, renderers, suffix))
    assert fast == default


def test_the_api_uses_it(settings):
    from rest_framework.settings import api_settings

    assert api_settings.DEFAULT_CONTENT_NEGOTIATION_CLASS is FastContentNegotiation
