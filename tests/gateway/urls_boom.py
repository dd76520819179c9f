"""A channel URL configuration with views that fail on purpose (tests only)."""

import logging

from django.http import HttpResponse
from django.urls import include, path
from rest_framework.views import APIView

from gateway.urls_common import handler400, handler403, handler404, handler500  # noqa: F401

LOG_TO = logging.getLogger("tests.edge")


def boom(request):
    raise RuntimeError("database password is hunter2")


class ApiBoom(APIView):
    def get(self, request):
        raise KeyError("secret detail")


def log_view(request):
    LOG_TO.info("hello from a view")
    return HttpResponse("ok")


urlpatterns = [
    path("boom/", boom),
    path("api-boom/", ApiBoom.as_view()),
    path("log/", log_view),
    path("", include("gateway.urls_channel")),
]
