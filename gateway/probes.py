"""Liveness and readiness probes, answered on every host."""

from __future__ import annotations

import time

import redis
from django.conf import settings
from django.db import connection
from django.http import JsonResponse

from gateway.api.problems import PROBLEM_CONTENT_TYPE, problem_body


def healthz(request):
    """The process is up and serving. Touches nothing else."""
    return JsonResponse({"status": "ok"})


def _check_postgres() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_redis() -> None:
    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    finally:
        client.close()


CHECKS = {"postgres": _check_postgres, "redis": _check_redis}


def readyz(request):
    """Ready to take traffic: PostgreSQL and Redis both answer."""
    results: dict[str, dict] = {}
    for name, check in CHECKS.items():
        started = time.perf_counter()
        try:
            check()
        except Exception as exc:  # noqa: BLE001 - a probe reports any failure, it never raises
            results[name] = {"ok": False, "error": type(exc).__name__}
        else:
            results[name] = {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 2)}
    failed = sorted(name for name, result in results.items() if not result["ok"])
    if not failed:
        return JsonResponse({"status": "ready", "checks": results})
    body = problem_body(
        request=request,
        status=503,
        code="not_ready",
        title="Not ready",
        detail=f"Unreachable: {', '.join(failed)}. This instance should not receive traffic until they are back.",
        checks=results,
    )
    return JsonResponse(body, status=503, content_type=PROBLEM_CONTENT_TYPE, headers={"Retry-After": "5"})
