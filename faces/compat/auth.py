"""DRF authentication for the facade: the compat user's JWT, as the issuer's clients send it."""

from __future__ import annotations

from rest_framework import authentication

from faces.compat.accounts import InvalidToken, user_for_token
from gateway.http.auth import ApiKeyPrincipal


class CompatPrincipal(ApiKeyPrincipal):
    """The compat user, acting with its API key's scopes (and so its rate limits)."""

    def __init__(self, user):
        super().__init__(user.api_key)
        self.compat_user = user
        self.customer_id = user.customer_id


def presented_token(request) -> str:
    """``Authorization: Bearer <jwt>``; clients of the upload and signing calls may send it in the
    body instead (``token``, ``jwToken``)."""
    header = authentication.get_authorization_header(request).decode("latin-1")
    scheme, _, value = header.partition(" ")
    if header and scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if request.method == "POST" and hasattr(request.data, "get"):  # (a JSON list has no fields)
        for name in ("token", "jwToken"):
            value = request.data.get(name)
            if isinstance(value, str) and value.strip() and value.strip().lower() != "false":
                return value.strip()
    return ""


class CompatTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        token = presented_token(request)
        if not token:
            raise InvalidToken("Log in first (`POST /compat/api/users/login`); send `Authorization: Bearer <token>`.")
        user = user_for_token(channel=request.tenant, token=token)
        return CompatPrincipal(user), user.api_key

    def authenticate_header(self, request):
        return 'Bearer realm="compat"'
