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
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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


def scraper_allowed(*, authorization: str, address: str) -> bool:
    """The bearer token ``METRICS_TOKEN`` (when set), or a client address in ``METRICS_ALLOWED_NETWORKS``.
    With neither configured, nobody."""
    token = settings.METRICS_TOKEN
    if (
        token
        and authorization.startswith("Bearer ")
        and hmac.compare_digest(authorization[7:].strip().encode(), token.encode())
    ):
        return True
    networks = allowed_networks()
    if not networks:
        return False
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(parsed in network for network in networks)


def check_scraper(request) -> None:
    """Lets the scraper through (:func:`scraper_allowed`, with the client address as the rate limits
    see it: ``GATEWAY_NUM_PROXIES`` applies); raises :class:`MetricsForbidden` otherwise."""
    from gateway.ratelimit import client_address

    if scraper_allowed(authorization=request.headers.get("Authorization", ""), address=client_address(request)):
        return
    raise MetricsForbidden(
        "This address may not read the metrics."
        + (" The bearer token is missing or wrong." if settings.METRICS_TOKEN else "")
    )


class WorkerMetricsListener(ThreadingHTTPServer):
    """``GET /metrics`` of one Celery worker instance, for hosts that run workers without a web instance
    (``WORKER_METRICS_BIND``): the counts of this instance's processes (its own directory), no state
    figures (a web instance gives those). The same token and networks as the web's ``/metrics``; the
    client address is the connection's (put no proxy in front)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], directory: str):
        super().__init__(address, _WorkerMetricsHandler)
        self.directory = directory

    def start(self) -> WorkerMetricsListener:
        threading.Thread(target=self.serve_forever, name="worker-metrics", daemon=True).start()
        return self


class _WorkerMetricsHandler(BaseHTTPRequestHandler):
    server: WorkerMetricsListener
    timeout = 5
    protocol_version = "HTTP/1.1"
    server_version = "gateway-worker-metrics"
    sys_version = ""

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
        from prometheus_client.multiprocess import MultiProcessCollector

        if self.path.split("?", 1)[0] != "/metrics":
            return self._send(
                404, "application/problem+json", _problem(404, "not_found", "Not found", "Only /metrics.")
            )
        if not scraper_allowed(authorization=self.headers.get("Authorization", ""), address=self.client_address[0]):
            exc = MetricsForbidden("This address may not read the metrics.")
            return self._send(403, "application/problem+json", _problem(403, exc.code, exc.title, exc.message))
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self.server.directory)
        self._send(200, CONTENT_TYPE_LATEST, generate_latest(registry))

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args) -> None:  # noqa: A002 - quiet: Prometheus scrapes every 15 s
        return


def _problem(status: int, code: str, title: str, detail: str) -> bytes:
    import json
    import secrets

    return json.dumps({
        "type": f"https://errors.e-meterai.example/{code}", "title": title, "status": status, "detail": detail,
        "code": code, "request_id": f"req_{secrets.token_hex(12)}",
    }).encode()  # fmt: skip


def start_worker_listener(bind: str, directory: str) -> WorkerMetricsListener | None:
    value = bind.strip()
    if value.lower() in ("", "off", "0", "none"):
        return None
    host, _, port = value.rpartition(":")
    return WorkerMetricsListener((host.strip("[]") or "0.0.0.0", int(port)), directory).start()  # noqa: S104
