"""The adapters' one way to call a provider's JSON API: urllib (the project's HTTP client, as the
outbox and the simulator use it), HTTP Basic with the secret key as user name (both Midtrans and
Xendit authenticate so), a timeout from ``PAYMENT_PROVIDER_TIMEOUT``.

Whatever means "try again later" - no answer, a 5xx, a 429, a refused key (401/403: our
configuration, not the request) or a body that is not JSON - raises ``ProviderUnavailable`` (503);
any other answer is returned for the adapter to judge.
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from billing.providers.base import ProviderUnavailable

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Answer:
    status: int
    data: dict | list


def call_json(
    provider: str,
    method: str,
    url: str,
    *,
    secret: str,
    body: dict | None = None,
    headers: dict | None = None,
    listing: bool = False,
) -> Answer:
    """``listing``: the answer is a JSON array (a search), else an object."""
    if urlsplit(url).scheme not in ("http", "https"):
        raise ProviderUnavailable(f"The {provider} API address {url!r} is not an http(s) URL.")
    token = base64.b64encode(f"{secret}:".encode()).decode()
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        url,
        data=None if body is None else json.dumps(body, separators=(",", ":")).encode(),
        method=method,
        headers={
            "Accept": "application/json",
            "Content-Type": "application/json",
            "Authorization": f"Basic {token}",
            **(headers or {}),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=settings.PAYMENT_PROVIDER_TIMEOUT) as response:  # noqa: S310
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    except (OSError, http.client.HTTPException) as exc:
        logger.warning("payment provider not reached", extra={"provider": provider, "error": type(exc).__name__})
        raise ProviderUnavailable(f"{provider} could not be reached; try again later.") from exc
    if status >= 500 or status in (401, 403, 429):
        if status in (401, 403):
            logger.error("payment provider refused our key", extra={"provider": provider, "status": status})
        raise ProviderUnavailable(f"{provider} answered HTTP {status}; try again later.")
    try:
        data = json.loads(raw or b"{}")
    except ValueError:
        raise ProviderUnavailable(f"{provider} answered HTTP {status} with a body that is not JSON.") from None
    if not isinstance(data, list if listing and status == 200 else dict):
        raise ProviderUnavailable(f"{provider} answered HTTP {status} with JSON of an unexpected shape.")
    return Answer(status=status, data=data)
