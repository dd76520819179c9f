"""DRF glue for the storefront edge: rate limits on every request, idempotency keys on POST.

``EdgeMixin`` goes first in a storefront view's bases (``class ChannelApiView(EdgeMixin, APIView)``).
For each request, in this order:

1. authentication (the view's ``authentication_classes``), from the per-process key cache; a key of
   a suspended channel is refused ``403 channel_suspended`` (``tenants.services.refuse_if_suspended``);
2. rate limit, per API key and per channel (:mod:`gateway.ratelimit`): a refusal is ``429 rate_limited``
   with ``Retry-After``; every response to an authenticated request carries ``RateLimit`` and
   ``RateLimit-Policy``. The same round trip returns the channel's API key epoch, which confirms a
   cached key (or sends it back to the database: :mod:`gateway.apikeys`);
3. permissions and DRF throttles, as usual;
4. on POST with ``Idempotency-Key`` (:mod:`gateway.idempotency`): claim the key, or replay the stored
   answer, or refuse with 409;
5. the handler. With a claimed key the handler runs inside a transaction that also stores its answer,
   so the work and the answer commit together, or neither does (a 5xx rolls the work back and releases
   the key). The handler sees the key as ``request.idempotency_key`` (``None`` without one).
"""

from __future__ import annotations

import hashlib
import json

from django.db import transaction
from django.http import HttpResponse
from django.http.request import split_domain_port
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from gateway.apikeys import confirm_epoch
from gateway.idempotency import (
    IDEMPOTENCY_HEADER,
    Claimed,
    IdempotencyRequestInProgress,
    Replay,
    begin_idempotent_request,
    complete_idempotent_request,
    is_final_answer,
    release_idempotency_key,
    request_fingerprint,
    validate_idempotency_key,
)
from gateway.ratelimit import RateLimited, check_rate_limit
from kernel.db import atomic_rolled_back_whole
from tenants.services import refuse_if_suspended


def body_sha256(request) -> str:
    """Digest of what the request asks for. Raw bytes, except multipart: its boundary changes on every
    retry, so the parsed fields and files (name, file name, content) are hashed instead."""
    digest = hashlib.sha256()
    if request.content_type.startswith("multipart/"):
        data = request.data
        for name in sorted(data.keys()):
            for value in data.getlist(name):
                digest.update(f"\0{name}\0".encode())
                if hasattr(value, "chunks"):
                    digest.update(f"file:{value.name}:{value.size}\0".encode())
                    for chunk in value.chunks():
                        digest.update(chunk)
                    value.seek(0)
                else:
                    digest.update(str(value).encode())
    else:
        digest.update(request.body)
    return digest.hexdigest()


def json_response(request, data, *, status: int = 200, headers: dict | None = None) -> HttpResponse:
    """The answer ``Response(data, status, headers=headers)`` renders, built directly when the negotiated
    renderer is DRF's JSON renderer with no parameters, as for nearly every request: DRF's
    template-response machinery (renderer context, media-type parsing for ``indent``, deferred rendering)
    costs more than the JSON itself. Any other negotiation (``indent=``, another renderer) gets a
    ``Response`` as usual. The bytes and headers are the same either way (a test compares them)."""
    renderer = getattr(request, "accepted_renderer", None)
    if type(renderer) is not JSONRenderer or request.accepted_media_type != renderer.media_type:
        return Response(data, status=status, headers=headers)
    separators = (",", ":") if renderer.compact else (", ", ": ")
    text = json.dumps(
        data,
        cls=renderer.encoder_class,
        ensure_ascii=renderer.ensure_ascii,
        allow_nan=not renderer.strict,
        separators=separators,
    )
    # As DRF does: JSON that is also a strict JavaScript subset.
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    response = HttpResponse(text.encode(), status=status, content_type=renderer.media_type)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def _replay_response(replay: Replay) -> HttpResponse:
    response = HttpResponse(replay.body, status=replay.status_code)
    for name, value in replay.headers.items():
        response[name] = value
    return response


class RateLimitHeadersMixin:
    """Every answer to a request charged to a rate limit (``request.rate_limit``, a ``Decision``) carries
    ``RateLimit`` and ``RateLimit-Policy``; a refusal's come with its exception."""

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        decision = getattr(request, "rate_limit", None)
        if decision is not None:
            for name, value in decision.headers().items():
                response[name] = value
        return response


class EdgeMixin(RateLimitHeadersMixin):
    """Rate limits and idempotency for an ``APIView`` (see the module docstring)."""

    rate_limit_cost = 1
    idempotent_methods = frozenset({"POST"})
    confirms_cached_keys = True  # apply_rate_limit confirms a cached API key on every request

    # ------------------------------------------------------------------ rate limit

    def perform_authentication(self, request):
        super().perform_authentication(request)
        if request.auth is not None:  # a keyed request; a provider's webhook (no key) still arrives
            refuse_if_suspended(request.tenant)
        self.apply_rate_limit(request)

    def apply_rate_limit(self, request) -> None:
        api_key = request.auth
        channel = getattr(request, "tenant", None)
        if api_key is None or channel is None:
            return  # anonymous: the permission check refuses it next
        decision = check_rate_limit(
            channel=channel, api_key_id=api_key.pk, cost=self.rate_limit_cost, reads=self.rate_limit_reads(request)
        )
        request.rate_limit = decision
        principal = request.user
        if getattr(principal, "checked", None) is not None:
            confirm_epoch(
                checked=principal.checked, current=decision.keys_epoch, presented=principal.presented, channel=channel
            )
            principal.checked = None
        if not decision.allowed:
            raise RateLimited(decision)

    def rate_limit_reads(self, request) -> tuple:
        """Redis reads this request will need, sent with the rate-limit check (one round trip for both);
        the view finds the answers in ``request.rate_limit.reads`` (None if Redis was not reached)."""
        return ()

    # ------------------------------------------------------------------ idempotency

    def begin_idempotency(self, request) -> Claimed | Replay | None:
        request.idempotency_key = None
        if request.method not in self.idempotent_methods:
            return None
        raw = request.headers.get(IDEMPOTENCY_HEADER)
        if raw is None or request.auth is None:
            return None
        key = validate_idempotency_key(raw)
        fingerprint = request_fingerprint(
            method=request.method,
            path=request.get_full_path(),
            api_key_id=request.auth.pk,
            body_sha256=body_sha256(request),
        )
        outcome = begin_idempotent_request(
            api_key_id=request.auth.pk,
            key=key,
            fingerprint=fingerprint,
            method=request.method,
            path=request.get_full_path(),
        )
        if isinstance(outcome, Claimed):
            request.idempotency_key = key
        return outcome

    def run_with_idempotency(self, claim: Claimed, request, handler, *args, **kwargs):
        """Run the handler; store its answer in the same transaction, or roll back and release the key.

        A handler that fails (a refusal) is rolled back whole, and its answer, if final, is stored in a
        transaction of its own: a refused request leaves nothing of its own behind. (A savepoint around
        the handler would do the same at two more round trips for every request that succeeds.)

        If the claim was lost meanwhile (taken over after ``IN_FLIGHT_TIMEOUT``), this attempt's work is
        rolled back too: the request that holds the key now is the one that counts.
        """
        stored = lost = failed = False
        try:
            try:
                with atomic_rolled_back_whole():  # (so the handler's statements need no savepoints)
                    try:
                        response = handler(request, *args, **kwargs)
                    except Exception:
                        failed = True
                        raise  # out of the transaction: the handler's work is rolled back
                    response = self.finalize_response(request, response, *args, **kwargs)
                    if getattr(response, "streaming", False):
                        return response  # cannot be stored: the work stands, and the key is released below
                    stored, lost = self._store_final_answer(claim, response)
                    if not stored:
                        transaction.set_rollback(True)  # a retry will do the work; this attempt leaves nothing
            except Exception as exc:  # noqa: BLE001 - handle_exception re-raises what is not an API error
                if not failed:
                    raise
                response = self.finalize_response(request, self.handle_exception(exc), *args, **kwargs)
                stored, lost = self._store_final_answer(claim, response)
        finally:
            if not stored:
                release_idempotency_key(record=claim.record)  # no-op when the claim was lost
        if lost:  # what this attempt did was rolled back: never answer as if it had happened
            refusal = IdempotencyRequestInProgress(
                f"Another request with this {IDEMPOTENCY_HEADER} took over while this one ran; "
                "retry in a second to get its answer."
            )
            response = self.finalize_response(request, self.handle_exception(refusal), *args, **kwargs)
        return response

    @staticmethod
    def _store_final_answer(claim: Claimed, response) -> tuple[bool, bool]:
        """(stored, lost): store ``response`` under the key if it is a final answer; ``lost`` if the claim
        was taken over meanwhile. Not final (e.g. 503): nothing stored, and the key is released."""
        data = getattr(response, "data", None)
        error_code = data.get("code") if isinstance(data, dict) and response.status_code >= 400 else None
        if not is_final_answer(response.status_code, error_code=error_code):
            return False, False
        if hasattr(response, "render"):
            response.render()
        stored = complete_idempotent_request(
            record=claim.record,
            status_code=response.status_code,
            body=response.content,
            headers=dict(response.items()),
        )
        return stored, not stored

    # ------------------------------------------------------------------ dispatch

    def dispatch(self, request, *args, **kwargs):
        """DRF's ``APIView.dispatch``, with the idempotency step between ``initial`` and the handler."""
        self.args = args
        self.kwargs = kwargs
        request = self.initialize_request(request, *args, **kwargs)
        self.request = request
        self.headers = self.default_response_headers
        try:
            self.initial(request, *args, **kwargs)
            if request.method.lower() in self.http_method_names:
                handler = getattr(self, request.method.lower(), self.http_method_not_allowed)
            else:
                handler = self.http_method_not_allowed
            outcome = self.begin_idempotency(request)
            if isinstance(outcome, Replay):
                response = _replay_response(outcome)
            elif isinstance(outcome, Claimed):
                response = self.run_with_idempotency(outcome, request, handler, *args, **kwargs)
            else:
                response = handler(request, *args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - as DRF's dispatch: unexpected errors are re-raised
            response = self.handle_exception(exc)
        self.response = self.finalize_response(request, response, *args, **kwargs)
        return self.response


DEFAULT_PORTS = {"http": "80", "https": "443"}


def base_url(request) -> str:
    """``scheme://host[:port]`` this request reached, for links in answers: the Host header's port, or
    when the Host header has none (``curl -H 'Host: pos.localhost' http://127.0.0.1:8000/``) the port
    the server was reached on, unless it is the scheme's default."""
    host = request.get_host()
    _, port = split_domain_port(host)
    if not port:
        server_port = str(request.get_port())
        if server_port and server_port != DEFAULT_PORTS.get(request.scheme):
            host = f"{host}:{server_port}"
    return f"{request.scheme}://{host}"
