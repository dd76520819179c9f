"""OpenAPI 3 for the gateway's two APIs, one schema per host (drf-spectacular).

- a channel's host serves the **storefront API** (keyed: ``Authorization: Bearer``, rate limited,
  ``Idempotency-Key`` on POST) at ``/api/v1/schema``;
- the issuer's host serves the **public verification API** (anonymous) at the same path.

They are two schemas because they are two APIs: different hosts, audiences and security. One document
for both would advertise paths that answer 404 on the other host.

Every operation lists every ``application/problem+json`` answer it can give, by status, with the
exact ``code`` values (an ``enum`` per response, on top of the shared ``Problem`` component). The
edge's codes (authentication, rate limits, idempotency, parsing, the 500) are added here from what the
view is (an :class:`~gateway.http.edge.EdgeMixin` view with API keys, or an anonymous one); the codes
of a view's own services are declared next to the view with :func:`problems`.

``docs/openapi.yaml`` and ``docs/openapi-issuer.yaml`` are generated from this module::

    manage.py spectacular --generator-class gateway.http.schema.StorefrontSchemaGenerator --file docs/openapi.yaml
    manage.py spectacular --generator-class gateway.http.schema.IssuerSchemaGenerator --file docs/openapi-issuer.yaml

and a test fails when either is stale.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable

from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import include, path
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.views import View
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.renderers import (
    OpenApiJsonRenderer,
    OpenApiJsonRenderer2,
    OpenApiYamlRenderer,
    OpenApiYamlRenderer2,
)
from drf_spectacular.settings import patched_settings
from rest_framework.response import Response
from rest_framework.views import APIView

from gateway.http.problems import PROBLEM_CONTENT_TYPE

# --------------------------------------------------------------------------- the error catalogue

# code -> (HTTP status, what the caller does about it). The statuses of domain errors are read from
# their classes (below), so this table cannot drift from what the server answers.
_EDGE: dict[str, tuple[int, str]] = {
    "bad_request": (400, "The request could not be understood (e.g. a bad Host header, too many form fields)."),
    "malformed_request": (400, "The body is not valid JSON or multipart. Fix the encoding."),
    "validation_failed": (400, "Some fields are invalid; `errors` names each field and why."),
    "authentication_required": (401, "Send `Authorization: Bearer <API key>`."),
    "permission_denied": (403, "The API key lacks the scope this endpoint needs; use a key with that scope."),
    "not_found": (404, "The path or object does not exist (or is not yours)."),
    "unknown_host": (404, "The host is not a channel of this gateway. Use the address your channel gave you."),
    "method_not_allowed": (405, "Use a method listed in the `Allow` header."),
    "not_acceptable": (406, "Accept `application/json` (and `application/problem+json`)."),
    "unsupported_media_type": (415, "Send `application/json` or `multipart/form-data` as this operation documents."),
    "internal_error": (500, "Our fault. Retry with the same `Idempotency-Key`; quote `request_id` if it persists."),
    "channel_busy": (
        503,
        "This channel already has its share of the server's request threads busy; nothing was done. "
        "Retry after `Retry-After` seconds (1 or 2). `class` says which class of work was shed (`stamping`: "
        "new stamp requests and other calls; `accepted`: reads of accepted work).",
    ),
    "purchases_busy": (
        503,
        "This channel has its share of the server's request threads busy and new purchases are refused first, "
        "before its stamp requests (overload priorities); nothing was done. Retry after `Retry-After` seconds "
        "(1 or 2).",
    ),
    "registrations_busy": (
        503,
        "This channel has its share of the server's request threads busy and new customers are refused first, "
        "before its purchases and stamp requests (overload priorities); nothing was done. Retry after "
        "`Retry-After` seconds (1 or 2).",
    ),
    "service_unavailable": (
        503,
        "A service the gateway depends on (database, Redis, broker) is briefly unreachable; nothing was done. "
        "Retry after `Retry-After` seconds with the same `Idempotency-Key`.",
    ),
}


def _domain_errors() -> dict[str, tuple[int, str]]:
    from billing.providers import InvalidWebhookSignature, MalformedWebhook, ProviderUnavailable, UnknownProvider
    from billing.retail.errors import (
        InsufficientStock,
        InvalidQuantity,
        OrderNotFound,
        RefundNotAllowed,
        RefundNotFound,
    )
    from gateway.apikeys import InvalidApiKey
    from gateway.http.pagination import InvalidCursor
    from gateway.idempotency import (
        IdempotencyKeyRequired,
        IdempotencyKeyReused,
        IdempotencyRequestInProgress,
        InvalidIdempotencyKey,
    )
    from gateway.ratelimit import RateLimited
    from issuer import errors as doc
    from issuer.retention import StampedDocumentPurged
    from issuer.selectors import InvalidSerial, SerialNotFound
    from issuer.services import UnknownProfile
    from stamping.brownout.errors import PurchasesPaused, RegistrationsPaused, StampingPaused
    from stamping.errors import (
        DocumentNotReady,
        InsufficientQuota,
        Overloaded,
        PurchasesOverloaded,
        RegistrationsOverloaded,
        StampJobNotFound,
    )
    from tenants.customers.services import CustomerExists, CustomerNotFound
    from tenants.services import ChannelSuspended

    classes = (
        InvalidApiKey,
        ChannelSuspended,
        RateLimited,
        InvalidIdempotencyKey,
        IdempotencyKeyReused,
        IdempotencyKeyRequired,
        IdempotencyRequestInProgress,
        CustomerExists,
        CustomerNotFound,
        OrderNotFound,
        InvalidQuantity,
        InsufficientStock,
        RefundNotAllowed,
        RefundNotFound,
        InvalidWebhookSignature,
        MalformedWebhook,
        UnknownProvider,
        ProviderUnavailable,
        InsufficientQuota,
        StampJobNotFound,
        DocumentNotReady,
        StampedDocumentPurged,
        Overloaded,
        PurchasesOverloaded,
        RegistrationsOverloaded,
        StampingPaused,
        PurchasesPaused,
        RegistrationsPaused,
        InvalidCursor,
        UnknownProfile,
        doc.NotAPdf,
        doc.DocumentUnreadable,
        doc.DocumentEncrypted,
        doc.WrongPassword,
        doc.EncryptionNotSupported,
        doc.DocumentTooLarge,
        doc.DocumentTooComplex,
        doc.VerificationBusy,
        doc.TooManyPages,
        doc.PageSizeNotAllowed,
        doc.PdfVersionTooOld,
        doc.DocumentAlreadyFinal,
        doc.DocumentCertified,
        doc.PageOutOfRange,
        doc.InvalidStampBox,
        doc.StampOutOfBounds,
        doc.StampOverlapsSignature,
        InvalidSerial,
        SerialNotFound,
    )
    return {cls.code: (cls.http_status, cls.what_to_do) for cls in classes}


_CATALOGUE: dict[str, tuple[int, str]] | None = None


def catalogue() -> dict[str, tuple[int, str]]:
    """Every code the APIs answer: ``code -> (status, what to do)``."""
    global _CATALOGUE
    if _CATALOGUE is None:
        _CATALOGUE = {**_EDGE, **_domain_errors()}
    return _CATALOGUE


# What the edge adds to an operation, by the kind of view.
ANY = ("bad_request", "unknown_host", "not_acceptable", "internal_error", "service_unavailable")
KEYED = (
    "authentication_required",
    "invalid_api_key",
    "permission_denied",
    "channel_suspended",
    "rate_limited",
    "channel_busy",
)
KEYED_POST = (
    "malformed_request",
    "validation_failed",
    "unsupported_media_type",
    "invalid_idempotency_key",
    "idempotency_key_reused",
    "idempotency_request_in_progress",
)
# A view that parses a body but is not an EdgeMixin view declares its parse codes itself.
PARSED = ("malformed_request", "validation_failed", "unsupported_media_type")

# Answered before the rate limiter has charged the request, so without RateLimit headers.
BEFORE_RATE_LIMIT = {
    "bad_request",
    "channel_busy",
    "purchases_busy",
    "registrations_busy",
    "unknown_host",
    "not_acceptable",
    "authentication_required",
    "invalid_api_key",
    "internal_error",
    "service_unavailable",
}

_CODES_ATTR = "_problem_codes"


def problems(*codes: str) -> Callable:
    """Declare the error codes a view method's own services can answer (documentation only)."""

    def decorate(func):
        unknown = [c for c in codes if c not in catalogue()]
        if unknown:
            raise ValueError(f"undocumented error codes {unknown}: add them to gateway.http.schema")
        setattr(func, _CODES_ATTR, tuple(codes))
        return func

    return decorate


# --------------------------------------------------------------------------- shared components

PROBLEM_SCHEMA = {
    "type": "object",
    "description": "An RFC 9457 problem. `code` is stable; `detail` is for people and may be reworded. "
    "`title` and `detail` follow `Accept-Language` (Indonesian for `id`, else English; `Content-Language` says "
    "which); `code` never changes with the language. "
    "Some codes add fields (`errors` for `validation_failed`, `serial`, `queue_depth`, ...).",
    "properties": {
        "type": {"type": "string", "format": "uri", "example": "https://errors.e-meterai.example/not_found"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"$ref": "#/components/schemas/ProblemCode"},  # made by the postprocessing hook
        "request_id": {"type": "string", "description": "Quote it when asking for help (also `X-Request-Id`)."},
        "errors": {
            "type": "object",
            "description": "(`validation_failed`) field name -> what is wrong with it.",
            "additionalProperties": True,
        },
    },
    "required": ["type", "title", "status", "detail", "code", "request_id"],
    "additionalProperties": True,
}

HEADERS = {
    "X-Request-Id": {
        "description": "This request's id (the caller's own `X-Request-Id` when well-formed); also in problems.",
        "schema": {"type": "string"},
    },
    "RateLimit": {
        "description": 'Per policy, requests left now and seconds until full: `"key";r=99;t=1, "channel";r=199;t=1` '
        "(draft-ietf-httpapi-ratelimit-headers). On every answer to an authenticated request.",
        "schema": {"type": "string"},
    },
    "RateLimit-Policy": {
        "description": 'Per policy, burst and window: `"key";q=100;w=2, "channel";q=200;w=1`.',
        "schema": {"type": "string"},
    },
    "Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer", "minimum": 1}},
    "Idempotent-Replayed": {
        "description": "`true` when this is the stored answer to an earlier request with the same `Idempotency-Key`.",
        "schema": {"type": "string", "enum": ["true"]},
    },
    "Location": {"description": "Where to poll the accepted work.", "schema": {"type": "string"}},
    "WWW-Authenticate": {"description": 'The scheme: `Bearer realm="storefront"`.', "schema": {"type": "string"}},
}

IDEMPOTENCY_KEY_PARAMETER = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": False,
    "description": "Makes a retry safe: the first answer (2xx or 4xx except 429) is stored for 24 h and replayed "
    "to every retry with the same key; the same key with a different request is `409 idempotency_key_reused`. "
    "A UUID per operation is a good choice.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[ -~]+$"},
}


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "gateway.http.auth.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "emk_<prefix>_<secret>",
            "description": "A channel API key, sent as `Authorization: Bearer <key>`, valid only on its own "
            "channel's host. Keys carry scopes (`read`, `purchase`, `stamp`, `admin`; `admin` implies all); "
            "each operation names the scope it needs.",
        }


# --------------------------------------------------------------------------- the AutoSchema


def _header_ref(name: str) -> dict:
    return {"$ref": f"#/components/headers/{name}"}


class GatewayAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema plus the gateway's edge: problems, headers, scopes, idempotency."""

    def get_serializer_name(self, serializer, direction):
        """``CustomerListApi.InputSerializer`` -> ``CustomerList``; ``StampJobDoc`` -> ``StampJob``."""
        cls = serializer if isinstance(serializer, type) else type(serializer)
        outer, _, inner = cls.__qualname__.rpartition(".")
        if outer and inner == "InputSerializer":
            return outer.removesuffix("Api").replace("List", "Create")
        name = super().get_serializer_name(serializer, direction)
        return name.removesuffix("Doc") if name.endswith("Doc") and len(name) > 3 else name

    def _is_keyed(self) -> bool:
        from gateway.http.auth import ApiKeyAuthentication

        return any(isinstance(a, ApiKeyAuthentication) for a in self.view.get_authenticators())

    def _is_edge(self) -> bool:
        from gateway.http.edge import EdgeMixin

        return isinstance(self.view, EdgeMixin)

    def _required_scope(self) -> str:
        getter = getattr(self.view, "get_required_scope", None)
        return getter() if getter else getattr(self.view, "required_scope", "read")

    def _is_limited(self) -> bool:
        """Charged to a rate limit: every keyed view, and the public ones that say so."""
        return self._is_keyed() or getattr(self.view, "public_rate_limit", False)

    def _problem_codes(self) -> list[str]:
        handler = getattr(self.view, self.method.lower(), None)
        codes = list(ANY)
        if self._is_keyed():
            codes += KEYED
        if self.method == "POST" and self._is_edge():
            codes += KEYED_POST
        codes += getattr(handler, _CODES_ATTR, ())
        return list(dict.fromkeys(codes))

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        self._register_components()
        keyed, edge = self._is_keyed(), self._is_edge()
        if keyed:
            scope = self._required_scope()
            operation["x-required-scope"] = scope
            operation["description"] = (
                operation.get("description", "") + f"\n\nNeeds an API key with the `{scope}` (or `admin`) scope."
            ).strip()
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "query" and not parameter.get("required"):
                parameter["allowEmptyValue"] = True  # the views read `?x=` as "not given"
        if edge and self.method == "POST":
            operation.setdefault("parameters", []).append(dict(IDEMPOTENCY_KEY_PARAMETER))
        responses = operation["responses"]
        limited = self._is_limited()
        for response in responses.values():
            self._add_headers(response, limited=limited, edge=edge, status=None)
        by_status: dict[int, list[str]] = {}
        for code in self._problem_codes():
            by_status.setdefault(catalogue()[code][0], []).append(code)
        for status, codes in sorted(by_status.items()):
            response = responses.setdefault(str(status), {"description": ""})
            lines = [f"- `{code}`: {catalogue()[code][1]}" for code in codes]
            response["description"] = "\n".join(filter(None, [response.get("description", ""), *lines]))
            response.setdefault("content", {})[PROBLEM_CONTENT_TYPE] = {
                "schema": {
                    "allOf": [{"$ref": "#/components/schemas/Problem"}],
                    "properties": {
                        "status": {"type": "integer", "enum": [status]},
                        "code": {"type": "string", "enum": codes},
                    },
                }
            }
            self._add_headers(response, limited=limited, edge=edge, status=status, codes=codes)
        operation["responses"] = dict(sorted(responses.items()))
        return operation

    def _add_headers(self, response: dict, *, limited: bool, edge: bool, status: int | None, codes=()) -> None:
        headers = response.setdefault("headers", {})
        headers["X-Request-Id"] = _header_ref("X-Request-Id")
        after_auth = status is None or bool(set(codes) - BEFORE_RATE_LIMIT)
        if limited and after_auth:
            headers["RateLimit"] = _header_ref("RateLimit")
            headers["RateLimit-Policy"] = _header_ref("RateLimit-Policy")
        if status in (429, 503) or "idempotency_request_in_progress" in codes:
            headers["Retry-After"] = _header_ref("Retry-After")
        if "authentication_required" in codes:
            headers["WWW-Authenticate"] = _header_ref("WWW-Authenticate")
        if edge and self.method == "POST" and after_auth and (status is None or 400 <= status < 500 and status != 429):
            headers["Idempotent-Replayed"] = _header_ref("Idempotent-Replayed")

    def _register_components(self) -> None:
        self.registry.register_on_missing(
            ResolvedComponent(
                name="Problem", type=ResolvedComponent.SCHEMA, object="Problem", schema=copy.deepcopy(PROBLEM_SCHEMA)
            )
        )
        for name, header in HEADERS.items():
            self.registry.register_on_missing(
                ResolvedComponent(name=name, type=ResolvedComponent.HEADER, object=name, schema=header)
            )


def problem_code_enum_hook(result, generator, request, public):
    """Postprocessing: ``ProblemCode`` (``Problem.code``) enumerates every code this API's operations answer."""
    used: set[str] = set()
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            for response in operation.get("responses", {}).values():
                schema = response.get("content", {}).get(PROBLEM_CONTENT_TYPE, {}).get("schema", {})
                used.update(schema.get("properties", {}).get("code", {}).get("enum", []))
    ordered = sorted(used, key=lambda c: (catalogue()[c][0], c))
    schemas = result["components"]["schemas"]
    schemas["ProblemCode"] = {
        "type": "string",
        "enum": ordered,
        "description": "Every error code of this API, with its status:\n\n"
        + "\n".join(f"* `{code}` ({catalogue()[code][0]}) - {catalogue()[code][1]}" for code in ordered),
    }
    result["components"]["schemas"] = dict(sorted(schemas.items()))
    return result


# --------------------------------------------------------------------------- the two schemas

_COMMON_SETTINGS = {
    "VERSION": "1.0.0",
    "OAS_VERSION": "3.0.3",
    "COMPONENT_SPLIT_REQUEST": True,
    # One name per choice set used by several components (an order's status: the order, the list's rows).
    "ENUM_NAME_OVERRIDES": {
        "OrderStatusEnum": "billing.retail.models.Order.Status",
        "RefundStatusEnum": "billing.retail.models.Refund.Status",
    },
    "ENUM_GENERATE_CHOICE_DESCRIPTION": False,  # our choices' labels are their values
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "gateway.http.schema.problem_code_enum_hook",
    ],
    "EXTERNAL_DOCS": {"description": "Guide: authentication, idempotency, rate limits, errors", "url": "/api/v1/docs"},
}


class _HostSchemaGenerator(SchemaGenerator):
    """One host's API: its routes under ``/api/v1/`` and its own settings (title, servers, hooks)."""

    urls_module = ""
    custom_settings: dict = {}

    def __init__(self, *args, **kwargs):
        kwargs["urlconf"] = None
        kwargs["patterns"] = [path("api/v1/", include(self.urls_module))]
        super().__init__(*args, **kwargs)

    def get_schema(self, request=None, public=False):
        with patched_settings({**_COMMON_SETTINGS, **self.custom_settings}):
            return super().get_schema(request=None, public=True)


class StorefrontSchemaGenerator(_HostSchemaGenerator):
    urls_module = "faces.storefront.urls"
    custom_settings = {
        "TITLE": "e-Meterai storefront API",
        "DESCRIPTION": (
            "The API a channel's integrations use on the channel's own host: customers, orders and refunds, "
            "stamping (asynchronous: `202` then poll, or webhooks), the catalogue and the channel's balance.\n\n"
            "Every request needs `Authorization: Bearer <API key>` of this channel. Every POST takes an "
            "`Idempotency-Key`. Every answer to an authenticated request carries `RateLimit` and "
            "`RateLimit-Policy`. Every error is `application/problem+json` with a stable `code` and a "
            "`request_id`; the codes, and what to do about each, are listed at the end of this host's API reference, "
            "[/api/v1/docs#errors](/api/v1/docs#errors). A problem's `title` and `detail` are in Indonesian when the "
            "request sends `Accept-Language: id` (`Content-Language` says which); its `code` never changes."
        ),
        "SERVERS": [
            {
                "url": "https://{channel_host}",
                "description": "Your channel's host (e.g. `pos.localhost:8000` in the demo).",
                "variables": {"channel_host": {"default": "pos.localhost:8000"}},
            }
        ],
        "TAGS": [
            {"name": "customers", "description": "The channel's end users and their quota."},
            {"name": "orders", "description": "Buying quota: orders, payment, refunds."},
            {"name": "payments", "description": "Payment providers' signed webhooks (not keyed)."},
            {"name": "stamps", "description": "Stamping documents, one at a time or in batches (asynchronous)."},
            {"name": "catalogue", "description": "Document types and stamp profiles."},
            {"name": "channel", "description": "The channel's stock."},
            {"name": "meta", "description": "The API root."},
        ],
    }


class IssuerSchemaGenerator(_HostSchemaGenerator):
    urls_module = "faces.public.urls"
    custom_settings = {
        "TITLE": "e-Meterai public verification API",
        "DESCRIPTION": (
            "The issuer's public API: anyone may check an e-Meterai by its serial or by uploading the stamped PDF. "
            "No authentication. Every error is `application/problem+json` with a stable `code` and a `request_id`; "
            "the codes are listed at the end of the API reference, [/api/v1/docs#errors](/api/v1/docs#errors). "
            "A problem's `title` and `detail` are in Indonesian when the request sends `Accept-Language: id`; "
            "its `code` never changes."
        ),
        "SERVERS": [
            {
                "url": "https://{issuer_host}",
                "description": "The issuer's host (`localhost:8000` in the demo).",
                "variables": {"issuer_host": {"default": "localhost:8000"}},
            }
        ],
        "TAGS": [
            {"name": "verification", "description": "Check a serial or a stamped document."},
            {"name": "meta", "description": "The API root."},
        ],
    }


# --------------------------------------------------------------------------- the views

_schemas: dict[type, dict] = {}


def schema_for(generator_class: type[_HostSchemaGenerator]) -> dict:
    """The (deterministic) schema of one host, generated once per process."""
    if generator_class not in _schemas:
        _schemas[generator_class] = generator_class().get_schema(request=None, public=True)
    return copy.deepcopy(_schemas[generator_class])


class SchemaApi(APIView):
    """``GET /api/v1/schema``: this host's OpenAPI document (YAML; ``?format=json`` or ``Accept`` for JSON)."""

    schema = None  # not part of the API it describes
    authentication_classes: list = []
    permission_classes: list = []
    renderer_classes = [OpenApiYamlRenderer, OpenApiYamlRenderer2, OpenApiJsonRenderer, OpenApiJsonRenderer2]
    generator_class: type[_HostSchemaGenerator] | None = None

    @classmethod
    def for_host(cls, generator_class) -> Callable:
        return cls.as_view(generator_class=generator_class)

    def get(self, request):
        suffix = "json" if "json" in request.accepted_renderer.format else "yaml"
        return Response(
            schema_for(self.generator_class),
            headers={"Content-Disposition": f'inline; filename="openapi.{suffix}"'},
        )


# ------------------------------------------------------- the reference page (server-rendered, no JS, no CDN)

METHOD_ORDER = ("get", "post", "put", "patch", "delete")


def _resolve(schema: dict, components: dict) -> dict:
    while isinstance(schema, dict) and "$ref" in schema:
        schema = components.get(schema["$ref"].rsplit("/", 1)[-1], {})
    return schema or {}


def _type_label(schema: dict, components: dict) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        target = components.get(name, {})
        if "enum" in target:
            return " | ".join(f"{v}" for v in target["enum"] if v not in ("", None))
        return name
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return _type_label(schema["allOf"][0], components) + (" | null" if schema.get("nullable") else "")
    kind = schema.get("type", "object")
    if kind == "array":
        return f"array of {_type_label(schema.get('items', {}), components)}"
    if "enum" in schema:
        return " | ".join(str(v) for v in schema["enum"] if v not in ("", None))
    label = f"{kind} ({schema['format']})" if "format" in schema else kind
    return label + (" | null" if schema.get("nullable") else "")


def _fields(schema: dict, components: dict) -> list[dict]:
    schema = _resolve(schema, components)
    required = set(schema.get("required", []))
    return [
        {
            "name": name,
            "type": _type_label(prop, components),
            "required": name in required,
            "read_only": prop.get("readOnly", False),
            "description": prop.get("description", "") or _resolve(prop, components).get("description", ""),
        }
        for name, prop in schema.get("properties", {}).items()
    ]


def _operations(schema: dict) -> Iterable[dict]:
    components = schema.get("components", {}).get("schemas", {})
    for route, methods in schema.get("paths", {}).items():
        for method in METHOD_ORDER:
            op = methods.get(method)
            if op is None:
                continue
            bodies = [
                {"media_type": media, "fields": _fields(content.get("schema", {}), components)}
                for media, content in op.get("requestBody", {}).get("content", {}).items()
            ]
            responses = []
            for status, response in op.get("responses", {}).items():
                content = response.get("content", {})
                media_types = list(content)
                body_schema = next(iter(content.values()), {}).get("schema", {}) if content else {}
                codes = (body_schema.get("properties") or {}).get("code", {}).get("enum", [])
                responses.append(
                    {
                        "status": status,
                        "description": response.get("description", ""),
                        "media_types": media_types,
                        "fields": [] if codes else _fields(body_schema, components),
                        "codes": codes,
                        "headers": sorted(response.get("headers", {})),
                    }
                )
            yield {
                "id": op.get("operationId"),
                "method": method.upper(),
                "path": route,
                "summary": op.get("summary", ""),
                "description": op.get("description", ""),
                "tag": (op.get("tags") or ["other"])[0],
                "scope": op.get("x-required-scope"),
                "security": bool(op.get("security")) and any(op.get("security")),
                "parameters": [
                    {
                        "name": p.get("name"),
                        "in": p.get("in"),
                        "required": p.get("required", False),
                        "type": _type_label(p.get("schema", {}), components),
                        "description": p.get("description", ""),
                    }
                    for p in op.get("parameters", [])
                ],
                "bodies": bodies,
                "responses": responses,
            }


_MD_CODE = re.compile(r"``(.+?)``|`([^`]+)`")  # docstrings' reST ``code`` too
_MD_STRONG = re.compile(r"\*\*([^*]+)\*\*")
_MD_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
_SAFE_HREF = re.compile(r"^(https?://|/|#)")


def markdown_inline(text: str) -> SafeString:
    """The Markdown the schema's descriptions use, as HTML: `code` (and ``code``), **strong**, [text](link) (only
    http(s), site-relative and #fragment links) and line breaks kept as they are (the page's
    ``white-space: pre-line``). Everything else is escaped; nothing of the text runs as HTML."""
    html = escape(text or "")
    spans: list[str] = []

    def keep(fragment: str) -> str:  # code spans are final: nothing inside them is Markdown
        spans.append(fragment)
        return f"\x00{len(spans) - 1}\x00"

    html = _MD_CODE.sub(lambda m: keep(f"<code>{m[1] or m[2]}</code>"), html)
    html = _MD_STRONG.sub(r"<strong>\1</strong>", html)
    html = _MD_LINK.sub(lambda m: f'<a href="{m[2]}">{m[1]}</a>' if _SAFE_HREF.match(m[2]) else m[1], html)
    html = re.sub("\x00(\\d+)\x00", lambda m: spans[int(m[1])], html)
    return mark_safe(html)  # noqa: S308 - built from escaped text only


def _rendered(operation: dict) -> dict:
    """An operation of ``_operations`` with its descriptions turned into HTML for the page."""
    md = markdown_inline
    operation = {**operation, "summary": md(operation["summary"]), "description": md(operation["description"])}
    operation["parameters"] = [{**p, "description": md(p["description"])} for p in operation["parameters"]]
    operation["bodies"] = [
        {**b, "fields": [{**f, "description": md(f["description"])} for f in b["fields"]]} for b in operation["bodies"]
    ]
    operation["responses"] = [
        {
            **r,
            "description": md(r["description"]),
            # the codes' descriptions are a Markdown list, "- `code`: what it means", one line each
            "lines": [md(line.removeprefix("- ")) for line in r["description"].splitlines() if line.strip()],
            "fields": [{**f, "description": md(f["description"])} for f in r["fields"]],
        }
        for r in operation["responses"]
    ]
    return operation


class ApiDocsPage(View):
    """``GET /api/v1/docs``: a reference page rendered on the server from this host's schema."""

    generator_class: type[_HostSchemaGenerator] | None = None

    def get(self, request):
        if self.generator_class is None:
            raise Http404
        schema = schema_for(self.generator_class)
        operations = [_rendered(op) for op in _operations(schema)]
        tags = [t["name"] for t in schema.get("tags", [])]
        tags += sorted({op["tag"] for op in operations} - set(tags))
        sections = [
            {"tag": t, "operations": [op for op in operations if op["tag"] == t]}
            for t in tags
            if any(op["tag"] == t for op in operations)
        ]
        codes = [(c, status, markdown_inline(text)) for c in schema["components"]["schemas"]["ProblemCode"]["enum"]
                 for status, text in [catalogue()[c]]]  # fmt: skip
        info = {**schema["info"], "description": markdown_inline(schema["info"].get("description", ""))}
        return TemplateResponse(
            request,
            "api/docs.html",
            {"info": info, "sections": sections, "codes": codes, "schema_url": "/api/v1/schema"},
        )


# --------------------------------------------------------------------------- the error catalogue page

# Codes answered by pages and probes rather than by an error class (docs/errors.md lists them too).
_PAGES_AND_PROBES: dict[str, tuple[int, str]] = {
    "csrf_failed": (403, "A portal form was stale or cross-site; reload the page and submit again."),
    "not_ready": (503, "(`/readyz`) this instance cannot reach PostgreSQL or Redis; the body says which."),
    "not_live": (503, "(probe listener `/healthz`) the gunicorn master has no live web worker; see `operations.md`."),
    "invalid_period": (400, "(back office settlement export) give both dates as YYYY-MM-DD, the first not the later."),
    "authentication_failed": (401, "The credentials were refused; send a current key: `Authorization: Bearer <key>`."),
    "request_refused": (400, "The request was refused for a reason without a code of its own; `detail` says why."),
    "hold_lost": (
        409,
        "(a stamp's `error.code`) the unit's hold had timed out before the stamp was made: nothing was stamped "
        "and the unit is back in the wallet; send the document again.",
    ),
}

# The room an error class belongs to (its top-level package) -> the section of docs/errors.md.
_SECTIONS = (
    ("edge", "Edge (any host)"),
    ("tenants", "Channels and customers"),
    ("billing", "Quota, orders and payments"),
    ("stamping", "Stamping"),
    ("outbox", "Webhooks"),
    ("issuer", "Documents, serials and the issuer"),
    ("staff", "Issuer staff"),
    ("faces", "Screens"),
)
_ROOM_OF_PACKAGE = {"kernel": "edge", "gateway": "edge"}
_ERROR_MODULES = (
    "kernel.errors", "gateway.apikeys", "gateway.http.pagination", "gateway.idempotency", "gateway.ratelimit",
    "tenants.services", "tenants.customers.services", "billing.deposits", "billing.ledger.errors", "billing.providers",
    "billing.retail.errors", "stamping.errors", "outbox.webhooks", "issuer.errors", "issuer.selectors",
    "issuer.services", "issuer.incidents", "gateway.http.bodylimits", "staff.otp", "stamping.reservations",
    "gateway.metrics", "issuer.retention", "billing.topups", "tenants.members.services",
)  # fmt: skip
GENERATED_BEGIN = "<!-- BEGIN generated by `manage.py errors_doc` from the error classes: do not edit -->"
GENERATED_END = "<!-- END generated -->"


def error_classes() -> list[type]:
    """Every ``ApplicationError`` subclass of the project that states what to do (bases without a
    ``what_to_do`` of their own, such as ``DocumentError``, are left out)."""
    import importlib
    import importlib.util

    from django.apps import apps

    from kernel.errors import ApplicationError

    for module in _ERROR_MODULES:
        importlib.import_module(module)
    for app in apps.get_app_configs():  # and every installed app's own ``errors`` module (a face's too):
        if importlib.util.find_spec(f"{app.name}.errors") is not None:  # found, never named here
            importlib.import_module(f"{app.name}.errors")
    found, pending = [], list(ApplicationError.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.__dict__.get("what_to_do"):
            found.append(cls)
    return sorted(found, key=lambda cls: (cls.__module__, cls.__name__))


def errors_markdown() -> str:
    """The tables of docs/errors.md: every code, its status and what to do, by room."""
    rows: dict[str, dict[str, tuple[int, str]]] = {room: {} for room, _ in _SECTIONS}
    for code, (status, text) in {**_EDGE, **_PAGES_AND_PROBES}.items():
        rows["edge"][code] = (status, text)
    seen = set(rows["edge"])
    order = [room for room, _ in _SECTIONS]
    packages = {cls: cls.__module__.split(".")[0] for cls in error_classes()}
    rooms = {cls: _ROOM_OF_PACKAGE.get(package, package) for cls, package in packages.items()}
    for cls, room in sorted(rooms.items(), key=lambda item: order.index(item[1])):
        if cls.code not in seen:  # one line per code (the edge's wins: it is what a client sees)
            rows[room][cls.code] = (cls.http_status, cls.what_to_do)
            seen.add(cls.code)
    out = [GENERATED_BEGIN]
    for room, heading in _SECTIONS:
        if not rows[room]:
            continue
        out += ["", f"## {heading}", "| code | status | what to do |", "|---|---|---|"]
        for code, (status, text) in sorted(rows[room].items(), key=lambda item: (item[1][0], item[0])):
            out.append(f"| `{code}` | {status} | {text} |")
    out += ["", GENERATED_END]
    return "\n".join(out)
