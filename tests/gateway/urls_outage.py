"""A channel URL configuration with views that use Redis and the broker directly (tests only).

The product's own Redis uses all fall back or defer when Redis is away (rate limits, admission, lane
wakes, webhook publishes); these views let the outage tests make a Redis error or a refused publish
reach the error handlers for real, from a real server that was really killed.
"""

from django.core.cache import caches
from django.http import HttpResponse
from django.urls import include, path
from rest_framework.response import Response
from rest_framework.views import APIView

from gateway.urls_common import handler400, handler403, handler404, handler500  # noqa: F401

BROKER_URL = ""  # set by the test: the throw-away Redis, as the broker


def cache_page(request):
    return HttpResponse(f"cached: {caches['outage'].get('anything')!r}")


class CacheApi(APIView):
    def get(self, request):
        return Response({"cached": caches["outage"].get("anything")})


class PublishApi(APIView):
    def post(self, request):
        from gateway.celery import app
        from gateway.tasks import heartbeat

        with app.connection_for_write(BROKER_URL) as connection:
            heartbeat.apply_async(connection=connection, retry=False)
        return Response({"queued": True}, status=202)


urlpatterns = [
    path("outage/page", cache_page),
    path("api/v1/outage/cache", CacheApi.as_view()),
    path("api/v1/outage/publish", PublishApi.as_view()),
    path("", include("gateway.urls_channel")),
]
