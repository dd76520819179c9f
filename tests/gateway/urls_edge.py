"""A channel URL configuration with small storefront-like views behind ``EdgeMixin`` (tests only).

The views subclass ``EdgeMixin, APIView`` (not ``ChannelApiView``) so they keep working whether or not
``ChannelApiView`` itself includes the mixin.
"""

from __future__ import annotations

import threading

from django.urls import include, path
from django.utils import timezone
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from gateway.edge.models import IdempotencyRecord
from gateway.http.auth import ApiKeyAuthentication, HasScope
from gateway.http.edge import EdgeMixin
from gateway.urls_common import handler400, handler403, handler404, handler500  # noqa: F401
from kernel.errors import ApplicationError, ServiceUnavailable
from tenants.customers.models import Customer


class OutOfStock(ApplicationError):
    code = "out_of_stock"
    http_status = 409
    title = "Out of stock"


class EdgeApiView(EdgeMixin, APIView):
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [HasScope]
    required_scope = "read"


class EchoApi(EdgeApiView):
    def get(self, request):
        return Response({"ok": True})


# Switches a test flips to make the next call fail in a given way.
FAIL_NEXT: dict[str, bool] = {"crash": False, "unavailable": False, "lose_claim": False}
# The blocking view waits on these, so a test can hold a request "in flight" without timing.
ENTERED = threading.Event()
PROCEED = threading.Event()


class CustomerCreateApi(EdgeApiView):
    required_scope = "purchase"

    class InputSerializer(serializers.Serializer):
        external_ref = serializers.CharField(max_length=100)
        name = serializers.CharField(max_length=200)
        out_of_stock = serializers.BooleanField(default=False)

    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        customer = Customer.objects.create(
            external_ref=data.validated_data["external_ref"], name=data.validated_data["name"]
        )
        if data.validated_data["out_of_stock"]:
            raise OutOfStock("No stock left for this purchase.")
        if FAIL_NEXT["crash"]:
            FAIL_NEXT["crash"] = False
            raise RuntimeError("the ledger fell over after the customer was written")
        if FAIL_NEXT["lose_claim"]:  # as if the request had stalled and a retry had taken the key over
            FAIL_NEXT["lose_claim"] = False
            IdempotencyRecord.objects.filter(key=request.idempotency_key).update(locked_at=timezone.now())
        if FAIL_NEXT["unavailable"]:
            FAIL_NEXT["unavailable"] = False
            raise ServiceUnavailable("The issuer is busy; retry shortly.")
        return Response(
            {"id": customer.pk, "external_ref": customer.external_ref, "key": request.idempotency_key},
            status=201,
            headers={"Location": f"/api/v1/customers/{customer.pk}"},
        )


class SlowCreateApi(EdgeApiView):
    required_scope = "purchase"

    def post(self, request):
        ENTERED.set()
        PROCEED.wait(timeout=30)
        customer = Customer.objects.create(external_ref=request.data["external_ref"], name="slow")
        return Response({"id": customer.pk}, status=201)


class UploadApi(EdgeApiView):
    required_scope = "stamp"

    def post(self, request):
        document = request.data["document"]
        Customer.objects.create(external_ref=request.data["external_ref"], name=document.name)
        return Response({"size": document.size, "page": request.data.get("page")}, status=202)


urlpatterns = [
    path("edge/echo", EchoApi.as_view()),
    path("edge/customers", CustomerCreateApi.as_view()),
    path("edge/customers-too", CustomerCreateApi.as_view()),
    path("edge/slow", SlowCreateApi.as_view()),
    path("edge/upload", UploadApi.as_view()),
    path("", include("gateway.urls_channel")),
]
