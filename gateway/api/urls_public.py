from django.urls import path

from gateway.api import views

urlpatterns = [
    path("", views.ApiRootApi.as_view(), name="public-api-root"),
]
