"""Issuer-host API routes (mounted under ``/api/v1/`` by ``faces.public.urls``)."""

from django.urls import path

from faces.public import api

urlpatterns = [
    path("verify", api.VerifyDocumentApi.as_view(), name="verify-document-api"),
    path("verify/<str:serial>", api.VerifySerialApi.as_view(), name="verify-serial-api"),
]
