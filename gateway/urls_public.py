"""The issuer's host: back office, public verification, status page."""

from django.urls import include, path, re_path

from faces.language import switch_language
from faces.public import views as issuer_views
from gateway.urls_common import handler400, handler403, handler404, handler500  # noqa: F401

urlpatterns = [
    path("", issuer_views.home, name="issuer-home"),
    path("status", issuer_views.status_page, name="status"),
    path("lang/<str:code>", switch_language, name="switch-language"),
    path("backoffice/", include("faces.backoffice.urls")),
    path("verify", issuer_views.verify_page, name="verify"),
    path("v/<str:serial>", issuer_views.verify_serial_page, name="verify-serial"),
    re_path(r"^ca/root\.(?P<fmt>pem|crt)$", issuer_views.root_certificate, name="root-certificate"),
    path("api/v1/", include("faces.public.urls")),
]
