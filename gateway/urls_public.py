"""The issuer's host: back office, public verification, status page."""

from django.urls import include, path

from gateway.urls_common import handler400, handler403, handler404, handler500  # noqa: F401
from issuer import views as issuer_views

urlpatterns = [
    path("", issuer_views.home, name="issuer-home"),
    path("status", issuer_views.status_page, name="status"),
    path("backoffice/", include("issuer.backoffice.urls")),
    path("verify", issuer_views.verify_page, name="verify"),
    path("v/<str:serial>", issuer_views.verify_serial_page, name="verify-serial"),
    path("api/v1/", include("gateway.api.urls_public")),
]
