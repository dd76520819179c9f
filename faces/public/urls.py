from django.urls import include, path

from faces.storefront import views
from gateway.http.schema import ApiDocsPage, IssuerSchemaGenerator, SchemaApi

urlpatterns = [
    path("", views.ApiRootApi.as_view(), name="public-api-root"),
    path("schema", SchemaApi.for_host(IssuerSchemaGenerator), name="public-api-schema"),
    path("docs", ApiDocsPage.as_view(generator_class=IssuerSchemaGenerator), name="public-api-docs"),
    path("", include("faces.public.urls_api")),
]
