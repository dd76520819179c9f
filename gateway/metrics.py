"""Request metrics: every answer counted and timed by URL pattern, channel and status (``kernel.metrics``).

``MetricsMiddleware`` stands first in ``MIDDLEWARE`` so that refusals made by the other middleware (a
body too large, an unknown host, a busy channel) are counted as well. The route label is the URL
pattern's name (``portal:login``, ``stamp-list``), or its pattern when it has no name, or
``unresolved`` for an answer given before any URL was resolved: never the raw path, so a client
cannot grow the number of series. Refusals are counted by code where their bodies are made
(``gateway.http.problems``).
"""

from __future__ import annotations

import hmac
import ipaddress
import time

from django.conf import settings

from kernel import metrics
from kernel.errors import ApplicationError

UNRESOLVED = "unresolved"


def route_label(request) -> str:
    match = getattr(request, "resolver_match", None)
    if match is None:
        return UNRESOLVED
    return match.view_name or match.route or UNRESOLVED


def channel_of(request) -> str:
    tenant = getattr(request, "tenant", None)
    return metrics.channel_label(getattr(tenant, "schema_name", None))


class MetricsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        elapsed = time.perf_counter() - started
        route, channel, status = route_label(request), channel_of(request), response.status_code
        metrics.HTTP_REQUESTS.labels(route, channel, str(status)).inc()
        metrics.HTTP_LATENCY.labels(route, channel, f"{status // 100}xx").observe(elapsed)
        return response


def count_refusal(code: str) -> None:
    """One refusal with ``code`` in the current request's channel (``kernel.context``)."""
    from kernel.context import channel_var

    metrics.REFUSALS.labels(code, metrics.channel_label(channel_var.get())).inc()


class MetricsForbidden(ApplicationError):
    code = "metrics_forbidden"
    http_status = 403
    title = "Metrics are not public"
    what_to_do = (
        "`/metrics` answers the monitoring system only: send `Authorization: Bearer <METRICS_TOKEN>`, or scrape "
        "from an address in `METRICS_ALLOWED_NETWORKS`."
    )


def allowed_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(item, strict=False) for item in settings.METRICS_ALLOWED_NETWORKS]


def check_scraper(request) -> None:
    """Lets the scraper through: the bearer token ``METRICS_TOKEN`` (when set), or a client address in
    ``METRICS_ALLOWED_NETWORKS`` (the address as the rate limits see it: ``GATEWAY_NUM_PROXIES`` applies).
    With neither configured nobody gets in. Raises :class:`MetricsForbidden` otherwise."""
    from gateway.ratelimit import client_address

    token = settings.METRICS_TOKEN
    sent = request.headers.get("Authorization", "")
    if token and sent.startswith("Bearer ") and hmac.compare_digest(sent[7:].strip().encode(), token.encode()):
        return
    networks = allowed_networks()
    if networks:
        try:
            address = ipaddress.ip_address(client_address(request))
        except ValueError:
            address = None
        if address is not None and any(address in network for network in networks):
            return
    raise MetricsForbidden(
        "This address may not read the metrics." + (" The bearer token is missing or wrong." if token else "")
    )
