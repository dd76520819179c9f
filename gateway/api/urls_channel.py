from django.urls import path

from gateway.api import views

urlpatterns = [
    path("", views.ApiRootApi.as_view(), name="channel-api-root"),
    path("customers", views.CustomerListApi.as_view(), name="customer-list"),
]
