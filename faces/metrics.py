"""``GET /metrics``: the gateway's figures in the Prometheus text format, for the monitoring system only.

Two kinds of figures:

- **events** (requests, refusals, stamps, failures, waits, webhook attempts) counted by every web and
  worker process where they happen (``kernel.metrics``); in multiprocess mode they are read from the
  files of every process under ``METRICS_DIR``;
- **state** (each channel's queue depth, oldest queued job, drain rate, time to clear the queue, ledger
  units, low stock, outbox depth; the dependencies' health; the last reconciliation) read at scrape time
  by :class:`StateCollector` through the same selectors the back office and the status page use, so all
  three show the same numbers. The reading is kept ``METRICS_CACHE_SECONDS`` (default 5 s) per process,
  so several Prometheus servers scraping at once cost one reading.

Answers on any host (like the probes); refuses a caller without the token or outside the allowed
networks with ``403 metrics_forbidden`` (``gateway.metrics.check_scraper``).
"""

from __future__ import annotations

import logging
import struct
import threading
import time
from pathlib import Path

from django.conf import settings
from django.http import HttpResponse
from django.utils import timezone
from django_tenants.utils import schema_context
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.multiprocess import MultiProcessCollector

from billing.ledger.selectors import reconciliation_runs
from faces.backoffice import selectors as figures
from gateway.http.problems import problem_response
from gateway.metrics import MetricsForbidden, check_scraper
from kernel import metrics
from outbox.selectors import deliveries
from stamping.selectors import oldest_waiting_since

logger = logging.getLogger(__name__)


def _gauge(name: str, documentation: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=labels)


def read_state() -> list[GaugeMetricFamily]:
    """Every state figure, read now (one pass over the channels)."""
    depth = _gauge("gateway_stamping_queue_depth", "Stamping jobs queued or running, per channel.", ["channel"])
    oldest = _gauge(
        "gateway_stamping_queue_oldest_seconds",
        "Age of the oldest queued stamping job (0: none), per channel.",
        ["channel"],
    )
    drain = _gauge(
        "gateway_stamping_drain_rate", "Stamps finished per second over the last minute, per channel.", ["channel"]
    )
    eta = _gauge(
        "gateway_stamping_queue_eta_seconds",
        "Time to clear the channel's queue at its drain rate (as the status page says; 0: empty).",
        ["channel"],
    )
    units = _gauge(
        "gateway_ledger_units",
        "A channel's units by place: available, reserved (unpaid orders), in_wallets, held (stamps in progress), used.",
        ["channel", "place"],
    )
    low = _gauge(
        "gateway_stock_low", "1 when a channel's available stock is below its low-stock threshold.", ["channel"]
    )
    pending = _gauge("gateway_outbox_pending", "Webhook deliveries not yet delivered, per channel.", ["channel"])
    failed = _gauge(
        "gateway_outbox_failed", "Webhook deliveries given up on (failed for good), per channel.", ["channel"]
    )
    up = _gauge(
        "gateway_dependency_up",
        "1 when a dependency answers (postgres, redis; workers: heartbeat recent).",
        ["dependency"],
    )
    reconciled = _gauge(
        "gateway_reconciliation_last_ok", "1 when the last reconciliation found no violation (absent: never run).", []
    )
    reconciled_at = _gauge("gateway_reconciliation_last_run_timestamp_seconds", "When the last reconciliation ran.", [])
    families = [depth, oldest, drain, eta, units, low, pending, failed, up, reconciled, reconciled_at]

    for component in figures.component_health():
        name = component["key"]
        up.add_metric([name], 1.0 if component["state"] == "operational" else 0.0)

    active = [c for c in figures.channels() if c.is_active]
    queues = {row["channel"].pk: row for row in figures.channel_queues(active)}
    schemas = figures.existing_schemas()
    now = timezone.now()
    for row in figures.channel_overview(active):
        channel = row["channel"]
        label = channel.schema_name
        queue = queues.get(channel.pk, {})
        depth.add_metric([label], row["queue_depth"])
        drain.add_metric([label], row["drain_per_minute"] / 60.0)
        eta.add_metric([label], queue.get("eta_seconds") or 0)
        for place, value in row["balance"].parts():
            units.add_metric([label, place], value)
        low.add_metric([label], 1.0 if row["low_stock"] else 0.0)
        if channel.schema_name not in schemas:
            continue
        with schema_context(channel.schema_name):
            since = oldest_waiting_since()
            oldest.add_metric([label], max(0.0, (now - since).total_seconds()) if since else 0.0)
            pending.add_metric([label], deliveries(status="pending").count())
            failed.add_metric([label], deliveries(status="failed").count())

    last = reconciliation_runs(limit=1)
    if last:
        reconciled.add_metric([], 1.0 if last[0].ok else 0.0)
        reconciled_at.add_metric([], last[0].finished_at.timestamp())
    return families


class StateCollector:
    """The state figures, read at most once per ``METRICS_CACHE_SECONDS`` in this process. A reading
    that fails (the database is down) is not cached: ``gateway_dependency_up`` alone then says why."""

    def __init__(self):
        self._lock = threading.Lock()
        self._families: list = []
        self._read_at = float("-inf")

    def collect(self):
        with self._lock:
            if time.monotonic() - self._read_at >= settings.METRICS_CACHE_SECONDS:
                try:
                    self._families = read_state()
                    self._read_at = time.monotonic()
                except Exception:  # noqa: BLE001 - a scrape must answer whatever is down
                    logger.warning("metrics: could not read the state figures", exc_info=True)
                    self._families = [_down()]
                    self._read_at = float("-inf")
            return list(self._families)

    def forget(self) -> None:
        with self._lock:
            self._read_at = float("-inf")


def _down() -> GaugeMetricFamily:
    up = _gauge(
        "gateway_dependency_up",
        "1 when a dependency answers (postgres, redis; workers: heartbeat recent).",
        ["dependency"],
    )
    for name in ("postgres", "redis"):
        up.add_metric([name], 1.0 if _answers(name) else 0.0)
    return up


def _answers(name: str) -> bool:
    from gateway.probes import CHECKS

    try:
        CHECKS[name]()
    except Exception:  # noqa: BLE001 - a probe reports, never raises
        return False
    return True


STATE = StateCollector()


class _EveryProcess:
    """The counts of every process that wrote under ``METRICS_DIR`` (one directory per web or worker
    instance), added up as one set of series."""

    def collect(self):
        root = Path(settings.METRICS_DIR)
        files = sorted(str(f) for f in root.glob("*/*.db") if _size(f) >= 8) if root.exists() else []
        try:
            return MultiProcessCollector.merge(files, accumulate=True)
        except (struct.error, ValueError, OSError):  # a damaged or vanishing file: leave it out, keep the rest
            return MultiProcessCollector.merge([f for f in files if _readable(f)], accumulate=True)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:  # removed by a restarting instance meanwhile
        return 0


def _readable(path: str) -> bool:
    try:
        MmapedDict.read_all_values_from_file(path)
    except (struct.error, ValueError, OSError):
        logger.warning("metrics: left out the unreadable file %s", path)
        return False
    return True


def _events() -> bytes:
    """The counted events: of every process (multiprocess mode), or of this process alone."""
    if not metrics.multiprocess():
        return generate_latest(REGISTRY)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_EveryProcess())
    return generate_latest(registry)


def metrics_view(request):
    try:
        check_scraper(request)
    except MetricsForbidden as exc:
        return problem_response(request, status=exc.http_status, code=exc.code, title=exc.title, detail=exc.message)
    state = CollectorRegistry()
    state.register(STATE)
    body = _events() + generate_latest(state)
    response = HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    return response
