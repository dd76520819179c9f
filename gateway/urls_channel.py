"""A channel's host: the storefront API and the channel's admin portal."""

from django.conf import settings
from django.urls import include, path

from gateway.urls_common import handler400, handler403, handler404, handler500  # noqa: F401

urlpatterns = [
    path("api/v1/", include("gateway.api.urls_channel")),
    path("", include("billing.retail.urls")),
    path("", include("tenants.portal.urls")),
]

if settings.GATEWAY_BENCH_ENDPOINTS:
    from gateway.api.views import BenchDbReadApi

    urlpatterns.insert(0, path("api/v1/_bench/db-read", BenchDbReadApi.as_view()))
