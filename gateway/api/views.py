"""Storefront API views: thin; they validate, call one service or selector, shape the answer."""

from __future__ import annotations

from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from billing import quota
from billing.retail import services as retail
from billing.retail.models import Order
from billing.retail.selectors import order_get_for
from gateway.api.auth import ApiKeyAuthentication, HasScope
from gateway.api.edge import EdgeMixin
from tenants.portal.models import Customer
from tenants.portal.services import create_customer, customer_get


class ChannelApiView(EdgeMixin, APIView):
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
        fields = ("id", "external_ref", "name", "email", "created_at")


def customer_with_quota(request, customer: Customer) -> dict:
    data = CustomerOutput(customer).data
    data["quota"] = quota.wallet_balance(channel_id=request.tenant.pk, customer_id=customer.pk)
    return data


class CustomerListApi(ChannelApiView):
    class InputSerializer(serializers.Serializer):
        external_ref = serializers.CharField(max_length=100)
        name = serializers.CharField(max_length=200)
        email = serializers.EmailField(required=False, default="")

    def get_required_scope(self):
        return "purchase" if self.request.method == "POST" else "read"

    def get(self, request):
        customers = Customer.objects.order_by("id")[:100]
        return Response({"results": CustomerOutput(customers, many=True).data})

    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        customer = create_customer(**data.validated_data)
        return Response(customer_with_quota(request, customer), status=201)


class CustomerDetailApi(ChannelApiView):
    def get(self, request, customer_id):
        return Response(customer_with_quota(request, customer_get(customer_id=customer_id)))


class OrderOutput(serializers.ModelSerializer):
    customer = serializers.IntegerField(source="customer_id")

    class Meta:
        model = Order
        fields = (
            "id",
            "customer",
            "quantity",
            "unit_price_rupiah",
            "fee_per_unit_rupiah",
            "total_rupiah",
            "provider",
            "status",
            "status_reason",
            "refunded_units",
            "expires_at",
            "created_at",
            "paid_at",
            "credited_at",
        )


def order_output(request, order: Order) -> dict:
    from billing.providers import get_provider

    data = OrderOutput(order).data
    if order.status == Order.Status.AWAITING_PAYMENT:
        base = f"{request.scheme}://{request.get_host()}"
        data["payment"] = get_provider(order.provider).payment_instructions(order=order, base_url=base)
    return data


class OrderListApi(ChannelApiView):
    required_scope = "purchase"

    class InputSerializer(serializers.Serializer):
        customer = serializers.IntegerField(min_value=1)
        quantity = serializers.IntegerField(min_value=1, max_value=retail.MAX_UNITS_PER_ORDER)
        provider = serializers.CharField(max_length=32, default="simulator")

    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        customer = customer_get(customer_id=data.validated_data["customer"])
        order = retail.create_order(
            channel=request.tenant,
            customer=customer,
            quantity=data.validated_data["quantity"],
            provider=data.validated_data["provider"],
        )
        return Response(order_output(request, order), status=201)


class OrderDetailApi(ChannelApiView):
    def get(self, request, order_id):
        return Response(order_output(request, order_get_for(order_id=order_id)))


class RefundCreateApi(ChannelApiView):
    required_scope = "purchase"

    class InputSerializer(serializers.Serializer):
        units = serializers.IntegerField(min_value=1)

    def post(self, request, order_id):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        order = order_get_for(order_id=order_id)
        key = request.idempotency_key or f"refund-{order.pk}-{order.refunded_units}"
        refund = retail.refund_order(
            channel=request.tenant,
            order_id=order.pk,
            customer=order.customer,
            units=data.validated_data["units"],
            request_key=key,
        )
        return Response(
            {
                "id": refund.pk,
                "order": order.pk,
                "units": refund.units,
                "amount_rupiah": refund.amount_rupiah,
                "fee_rupiah": refund.fee_rupiah,
                "status": refund.status,
                "created_at": refund.created_at,
            },
            status=201,
        )


class PaymentWebhookApi(APIView):
    """``POST /api/v1/payments/{provider}/webhook``: signed by the provider; no API key."""

    authentication_classes: list = []
    permission_classes: list = []

    def post(self, request, provider):
        outcome = retail.handle_payment_webhook(
            channel=request.tenant, provider_name=provider, body=request.body, headers=request.headers
        )
        return Response(
            {
                "received": True,
                "order": outcome.order_id,
                "order_status": outcome.status,
                "replayed": outcome.replayed,
                "note": outcome.note,
            }
        )


class BenchDbReadApi(APIView):
    """bench/api.py's yardstick: the cheapest useful request, one database read, no auth.
    Routed only when GATEWAY_BENCH_ENDPOINTS is on."""

    authentication_classes: list = []
    permission_classes: list = []

    def get(self, request):
        return Response({"customers": Customer.objects.filter(pk=1).count()})
