"""DRF authentication and permissions for the storefront API."""

from __future__ import annotations

from rest_framework import authentication, permissions

from gateway.apikeys import (
    CheckedKey,
    InvalidApiKey,
    authenticate_api_key,
    authenticate_api_key_cached,
    confirm_epoch,
)
from gateway.ratelimit import read_keys_epoch


class ApiKeyPrincipal:
    """What ``request.user`` is on the storefront API: the key, and through it the channel."""

    is_authenticated = True

    def __init__(self, api_key, *, checked: CheckedKey | None = None, presented: str = ""):
        self.api_key = api_key
        self.channel_id = api_key.channel_id
        self.scopes = frozenset(api_key.scopes)
        self.checked = checked  # a cached answer the view must confirm (gateway.apikeys.confirm_epoch)
        self.presented = presented


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            raise InvalidApiKey("Send the key as `Authorization: Bearer <key>`.")
        presented = presented.strip()
        view = (request.parser_context or {}).get("view")
        if getattr(view, "confirms_cached_keys", False):
            checked = authenticate_api_key_cached(presented=presented, channel=request.tenant)
            if checked.needs_confirmation:
                return ApiKeyPrincipal(checked.api_key, checked=checked, presented=presented), checked.api_key
            return ApiKeyPrincipal(checked.api_key), checked.api_key
        api_key = authenticate_api_key(presented=presented, channel=request.tenant)
        return ApiKeyPrincipal(api_key), api_key

    def authenticate_header(self, request):
        return 'Bearer realm="storefront"'


class HasScope(permissions.BasePermission):
    """``required_scope`` on the view names the scope; ``admin`` implies every scope."""

    message = "This API key lacks the scope this endpoint needs."

    def has_permission(self, request, view):
        principal = request.user
        if not isinstance(principal, ApiKeyPrincipal):
            return False
        if principal.checked is not None:
            # A cached key that no rate-limit check confirmed (a view that skipped it): confirm it now.
            confirm_epoch(
                checked=principal.checked,
                current=read_keys_epoch(channel_id=request.tenant.pk),
                presented=principal.presented,
                channel=request.tenant,
            )
            principal.checked = None
        getter = getattr(view, "get_required_scope", None)
        needed = getter() if getter else getattr(view, "required_scope", "read")
        return needed in principal.scopes or "admin" in principal.scopes
