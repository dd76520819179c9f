"""Storefront API views: thin; they validate, call one service or selector, shape the answer."""

from __future__ import annotations

from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from gateway.api.auth import ApiKeyAuthentication, HasScope
from tenants.portal.models import Customer


class ChannelApiView(APIView):
    """Base for storefront endpoints: a channel API key with ``required_scope`` is needed."""

    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [HasScope]
    required_scope = "read"


class ApiRootApi(APIView):
    def get(self, request):
        tenant = getattr(request, "tenant", None)
        return Response(
            {
                "service": "e-meterai-gateway",
                "version": "v1",
                "channel": None if tenant is None or tenant.is_issuer else tenant.code,
            }
        )


class CustomerOutput(serializers.ModelSerializer):
    class Meta:
        model = Customer
        fields = ("id", "external_ref", "name", "created_at")


class CustomerListApi(ChannelApiView):
    """The first 100 customers of this channel (the full customer API comes with the storefront)."""

    def get(self, request):
        customers = Customer.objects.order_by("id")[:100]
        return Response({"results": CustomerOutput(customers, many=True).data})
