"""A channel's host: the storefront API and the channel's admin portal."""

from django.conf import settings
from django.urls import include, path

from faces.language import switch_language
from gateway.urls_common import handler400, handler403, handler404, handler500  # noqa: F401

urlpatterns = [
    path("api/v1/", include("faces.storefront.urls")),
    path("lang/<str:code>", switch_language, name="switch-language"),
    path("shop/", include("faces.shop.urls")),
    path("compat/", include("faces.compat.urls")),
    path("", include("faces.payments.urls")),
    path("", include("faces.portal.urls")),
]

if settings.GATEWAY_BENCH_ENDPOINTS:
    from faces.storefront.views import BenchDbReadApi

    urlpatterns.insert(0, path("api/v1/_bench/db-read", BenchDbReadApi.as_view()))
