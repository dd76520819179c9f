"""The facade's routes, mounted at ``/compat/`` on a channel host (``gateway.urls_channel``)."""

from django.urls import path

from faces.compat import views

urlpatterns = [
    path("api/users/login", views.LoginApi.as_view(), name="compat-login"),
    path("function/saldopos", views.SaldoApi.as_view(), name="compat-saldo"),
    path("jenisdoc", views.JenisDocApi.as_view(), name="compat-jenisdoc"),
    path("fileupload/uploaddoc2", views.UploadApi.as_view(), name="compat-upload"),
    path("chanel/stampv2", views.StampV2Api.as_view(), name="compat-stampv2"),
    path("keystamp/adapter/docSigningZ", views.DocSigningZApi.as_view(), name="compat-docsigningz"),
    path("getfile3/<str:name>", views.GetFileApi.as_view(), name="compat-getfile"),
    path("chanel/stamp/ext", views.StampStatusApi.as_view(), name="compat-stamp-status"),
    path("api/v2/serialnumber/batch", views.BatchApi.as_view(), name="compat-batch"),
    path("snqr/status-batch", views.BatchStatusApi.as_view(), name="compat-batch-status"),
]
