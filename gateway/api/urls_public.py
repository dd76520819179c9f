from django.urls import include, path

from gateway.api import views

urlpatterns = [
    path("", views.ApiRootApi.as_view(), name="public-api-root"),
    path("", include("issuer.urls_api")),
]
