"""Storefront API views: thin; they validate, call one service or selector, shape the answer."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from billing import quota
from billing.retail import services as retail
from billing.retail.models import Order, Refund
from billing.retail.selectors import order_get_for, orders_for_listing, refund_get_for, refunds_for_listing
from faces.storefront.listing import list_filters, list_parameters, newest_first_page
from gateway.http.auth import ApiKeyAuthentication, HasScope
from gateway.http.edge import EdgeMixin, base_url
from gateway.http.fields import ApiModelSerializer
from gateway.http.pagination import encode_cursor, keyset_page
from gateway.http.schema import problems
from gateway.idempotency import IdempotencyKeyRequired
from stamping import admission
from stamping.brownout import selectors as brownout_selectors
from stamping.brownout.services import refuse_if_paused
from tenants.customers.models import Customer
from tenants.customers.selectors import customers_for_listing
from tenants.customers.services import create_customer, customer_get


class ChannelApiView(EdgeMixin, APIView):
    """Base for storefront endpoints: a channel API key with ``required_scope`` is needed."""

    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [HasScope]
    required_scope = "read"
    # The class of new work a POST here is (``stamping``, ``purchases``, ``registrations``): refused
    # ``503 <class>_paused`` while the issuer pauses it (brownout), right after key, rate limit and scope;
    # purchases and new customers also ``503 <class>_overloaded`` while the channel's stamping lane is near
    # its limit (stamp requests come first: ``admission.admit_lower``).
    brownout_class: str | None = None

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if self.brownout_class and request.method == "POST":
            refuse_if_paused(kind=self.brownout_class, channel=request.tenant)
            admission.admit_lower(channel=request.tenant, kind=self.brownout_class)


class ApiRootDoc(serializers.Serializer):  # documentation only
    service = serializers.CharField()
    version = serializers.CharField()
    channel = serializers.CharField(allow_null=True, help_text="This host's channel code (null on the issuer's host).")


class ApiRootApi(APIView):
    @extend_schema(tags=["meta"], summary="API root", responses={200: ApiRootDoc}, auth=[])
    def get(self, request):
        tenant = getattr(request, "tenant", None)
        return Response(
            {
                "service": "e-meterai-gateway",
                "version": "v1",
                "channel": None if tenant is None or tenant.is_issuer else tenant.code,
            }
        )


class PauseDoc(serializers.Serializer):  # documentation only
    _class = serializers.ChoiceField(choices=["stamping", "purchases", "registrations"])
    scope = serializers.CharField(help_text="`all` (every channel) or this channel's code.")
    reason = serializers.CharField()
    automatic = serializers.BooleanField(help_text="Started by the backlog-age check, which lifts it too.")
    since = serializers.DateTimeField()

    def get_fields(self):
        fields = super().get_fields()
        fields["class"] = fields.pop("_class")
        return fields


class AcceptingDoc(serializers.Serializer):  # documentation only
    stamping = serializers.BooleanField()
    purchases = serializers.BooleanField()
    registrations = serializers.BooleanField()


class ServiceStatusDoc(serializers.Serializer):  # documentation only
    channel = serializers.CharField()
    mode = serializers.ChoiceField(choices=["normal", "brownout"])
    accepting = AcceptingDoc(help_text="Per class of new work, whether it is taken now.")
    paused = PauseDoc(many=True, help_text="The pauses in force (highest class first).")


class ServiceStatusApi(APIView):
    """The channel's service mode for its storefront (no key: it is what the public status page shows)."""

    @extend_schema(
        tags=["meta"],
        summary="Service mode (brownout)",
        description="Whether the channel takes new stamp requests, purchases and customers now. Under load the "
        "issuer pauses the lowest classes first (customers, then purchases, then stamp requests); stamps already "
        "accepted and paid orders are always finished. A paused class is refused `503 <class>_paused` with "
        "`Retry-After`; webhooks `service.paused` / `service.resumed` announce each change.",
        responses={200: ServiceStatusDoc},
        auth=[],
    )
    def get(self, request):
        channel = request.tenant
        pauses = brownout_selectors.pauses_for(channel.pk)
        return Response(
            {
                "channel": channel.code,
                "mode": "brownout" if pauses else "normal",
                "accepting": brownout_selectors.accepting(channel.pk),
                "paused": [pause.as_json() for pause in pauses],
            },
            headers={"Cache-Control": "no-store"},
        )


class CustomerOutput(ApiModelSerializer):
    class Meta:
        model = Customer
        fields = ("id", "external_ref", "name", "email", "created_at")


class WalletDoc(serializers.Serializer):  # documentation only
    available = serializers.IntegerField(help_text="Units the customer can stamp with now.")
    held = serializers.IntegerField(help_text="Units held by stamps in progress.")
    used = serializers.IntegerField(help_text="Units spent on finished stamps.")


class CustomerDoc(CustomerOutput):  # documentation only
    quota = WalletDoc()

    class Meta(CustomerOutput.Meta):
        fields = (*CustomerOutput.Meta.fields, "quota")


class CustomerListDoc(serializers.Serializer):  # documentation only
    results = CustomerOutput(many=True, help_text="Up to 100 customers, oldest first.")
    next_cursor = serializers.CharField(
        allow_null=True, help_text="Pass as `cursor` for the next page; null at the end."
    )


CUSTOMER_PAGE_SIZE = 100
CUSTOMER_CURSOR = "customer"


def _customer_key(customer_id) -> tuple[int]:
    """A customer cursor's key: the id the next page starts after (digits only, 18 at most)."""
    digits = str(customer_id) if isinstance(customer_id, int) and not isinstance(customer_id, bool) else ""
    if not digits.isascii() or not digits.isdigit() or len(digits) > 18:
        raise ValueError
    return (customer_id,)


def _encode_customer_cursor(customer_id: int) -> str:
    return encode_cursor(CUSTOMER_CURSOR, customer_id)


def customer_with_quota(request, customer: Customer) -> dict:
    data = CustomerOutput(customer).data
    data["quota"] = quota.wallet_balance(channel_id=request.tenant.pk, customer_id=customer.pk)
    return data


class CustomerListApi(ChannelApiView):
    brownout_class = "registrations"

    class InputSerializer(serializers.Serializer):
        external_ref = serializers.CharField(max_length=100)
        name = serializers.CharField(max_length=200)
        email = serializers.EmailField(required=False, default="")

    def get_required_scope(self):
        return "purchase" if self.request.method == "POST" else "read"

    @extend_schema(
        tags=["customers"],
        operation_id="customers_list",
        summary="List customers",
        description="The channel's customers, oldest first, 100 per page: follow `next_cursor` until it is null. "
        "`external_ref` finds a customer by the channel's own id for it.",
        parameters=[
            OpenApiParameter(
                "external_ref", OpenApiTypes.STR, description="Only the customer with this `external_ref`."
            ),
            OpenApiParameter("cursor", OpenApiTypes.STR, description="`next_cursor` of the previous page."),
        ],
        responses={200: CustomerListDoc},
    )
    @problems("invalid_cursor")
    def get(self, request):
        params = request.query_params
        # (a NUL in the URL is refused by the middleware)
        page = keyset_page(
            customers_for_listing(external_ref=params.get("external_ref")),
            cursor=params.get("cursor"),
            kind=CUSTOMER_CURSOR,
            size=CUSTOMER_PAGE_SIZE,
            key=lambda customer: (customer.id,),
            parse=_customer_key,
            after=lambda customers, key: customers.filter(id__gt=key[0]),
        )
        return Response({"results": CustomerOutput(page.results, many=True).data, "next_cursor": page.next_cursor})

    @extend_schema(
        tags=["customers"],
        summary="Create a customer",
        description="`external_ref` is the channel's own id for the customer and is unique in the channel.",
        request=InputSerializer,
        responses={201: CustomerDoc},
    )
    @problems("customer_exists", "registrations_paused", "registrations_overloaded", "registrations_busy")
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        customer = create_customer(**data.validated_data)
        return Response(customer_with_quota(request, customer), status=201)


CUSTOMER_ID = OpenApiParameter("customer_id", OpenApiTypes.INT, OpenApiParameter.PATH, description="The customer's id.")


class CustomerDetailApi(ChannelApiView):
    @extend_schema(
        tags=["customers"],
        summary="Get a customer and their quota",
        parameters=[CUSTOMER_ID],
        responses={200: CustomerDoc},
    )
    @problems("not_found", "customer_not_found")
    def get(self, request, customer_id):
        return Response(customer_with_quota(request, customer_get(customer_id=customer_id)))


class OrderOutput(ApiModelSerializer):
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


class PaymentInstructionsDoc(serializers.Serializer):  # documentation only
    method = serializers.CharField(help_text="The payment provider's method, e.g. `simulator`.")
    pay_url = serializers.URLField(help_text="Where the customer pays.")
    amount_rupiah = serializers.IntegerField()
    expires_at = serializers.DateTimeField()


class OrderDoc(OrderOutput):  # documentation only
    payment = PaymentInstructionsDoc(required=False, help_text="Only while the order awaits payment.")

    class Meta(OrderOutput.Meta):
        fields = (*OrderOutput.Meta.fields, "payment")


ORDER_ID = OpenApiParameter(
    "order_id", OpenApiTypes.STR, OpenApiParameter.PATH, description="The order's id (`ord_...`)."
)


def order_output(request, order: Order) -> dict:
    from billing.providers import get_provider

    data = OrderOutput(order).data
    if order.status == Order.Status.AWAITING_PAYMENT:
        data["payment"] = get_provider(order.provider).payment_instructions(order=order, base_url=base_url(request))
    return data


class OrderListDoc(serializers.Serializer):  # documentation only
    results = OrderOutput(many=True, help_text="Up to 50 orders, newest first.")
    next_cursor = serializers.CharField(
        allow_null=True, help_text="Pass as `cursor` for the next page; null at the end."
    )


ORDER_PAGE_SIZE = 50
ORDER_CURSOR = "order"


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": retail.MAX_UNITS_PER_ORDER})
class QuantityField(serializers.IntegerField):
    """Any integer: the range is the service's rule (400 `invalid_quantity`, as documented); a serializer
    bound answered `validation_failed`. The schema still shows the range."""


class OrderListApi(ChannelApiView):
    brownout_class = "purchases"

    class InputSerializer(serializers.Serializer):
        customer = serializers.IntegerField(min_value=1)
        quantity = QuantityField(
            help_text=f"Units to order: 1 to {retail.MAX_UNITS_PER_ORDER:,} (else `invalid_quantity`)."
        )
        provider = serializers.CharField(
            max_length=32,
            required=False,
            help_text="A payment provider this gateway enables (`midtrans`, `xendit`; `simulator` in the demo). "
            "Default: the first one it enables.",
        )

    def get_required_scope(self):
        return "purchase" if self.request.method == "POST" else "read"

    @extend_schema(
        tags=["orders"],
        operation_id="orders_list",
        summary="List orders, newest first",
        description="Cursor pagination: 50 per page; follow `next_cursor` until it is null. The list shows each "
        "order as `GET /api/v1/orders/{order_id}` does, without the payment instructions.",
        parameters=list_parameters("orders", Order.Status.values),
        responses={200: OrderListDoc},
    )
    @problems("customer_not_found", "invalid_cursor")
    def get(self, request):
        params = request.query_params
        page = newest_first_page(
            orders_for_listing(status=params.get("status") or None, **list_filters(params)),
            cursor=params.get("cursor"),
            kind=ORDER_CURSOR,
            size=ORDER_PAGE_SIZE,
        )
        return Response({"results": OrderOutput(page.results, many=True).data, "next_cursor": page.next_cursor})

    @extend_schema(
        tags=["orders"],
        summary="Order quota for a customer",
        description="Reserves `quantity` units of the channel's stock until the order expires and answers "
        "with payment instructions. The provider's webhook credits the units to the customer's wallet.",
        request=InputSerializer,
        responses={201: OrderDoc},
    )
    @problems(
        "customer_not_found",
        "unknown_provider",
        "invalid_quantity",
        "insufficient_stock",
        "payment_provider_unavailable",
        "purchases_paused",
        "purchases_overloaded",
        "purchases_busy",
    )
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        customer = customer_get(customer_id=data.validated_data["customer"])
        order = retail.create_order(
            channel=request.tenant,
            customer=customer,
            quantity=data.validated_data["quantity"],
            provider=data.validated_data.get("provider"),
        )
        return Response(order_output(request, order), status=201)


class OrderDetailApi(ChannelApiView):
    @extend_schema(tags=["orders"], summary="Get an order", parameters=[ORDER_ID], responses={200: OrderDoc})
    @problems("order_not_found", "payment_provider_unavailable")
    def get(self, request, order_id):
        return Response(order_output(request, order_get_for(order_id=order_id)))


class RefundOutput(ApiModelSerializer):
    id = serializers.CharField(help_text="`rfd_...`")
    order = serializers.CharField(source="order_id")
    amount_rupiah = serializers.IntegerField(help_text="Paid back: the units' price and fees less the refund fee.")
    fee_rupiah = serializers.IntegerField()
    status = serializers.ChoiceField(
        choices=Refund.Status.values,
        help_text="`pending`: the units are back in the channel's stock and the money is on its way; then "
        "`succeeded` or `failed` (the `refund.succeeded` / `refund.failed` webhooks say when).",
    )

    class Meta:
        model = Refund
        fields = ("id", "order", "units", "amount_rupiah", "fee_rupiah", "status", "created_at")


class RefundDoc(RefundOutput):  # documentation only: the component is `Refund`
    """Unused units of an order given back to the channel's stock, and the money on its way back."""

    class Meta(RefundOutput.Meta):
        pass


class RefundListDoc(serializers.Serializer):  # documentation only
    results = RefundDoc(many=True, help_text="Up to 50 refunds of the order, newest first.")
    next_cursor = serializers.CharField(
        allow_null=True, help_text="Pass as `cursor` for the next page; null at the end."
    )


REFUND_PAGE_SIZE = 50
REFUND_CURSOR = "refund"


class OrderRefundsApi(ChannelApiView):
    """``/orders/{order_id}/refunds``: an order's refunds (GET) and a new one (POST)."""

    class InputSerializer(serializers.Serializer):
        units = serializers.IntegerField(min_value=1)

    def get_required_scope(self):
        return "purchase" if self.request.method == "POST" else "read"

    @extend_schema(
        tags=["orders"],
        operation_id="orders_refunds_list",
        summary="List an order's refunds, newest first",
        description="Cursor pagination: 50 per page; follow `next_cursor` until it is null.",
        parameters=[
            ORDER_ID,
            OpenApiParameter("cursor", OpenApiTypes.STR, description="`next_cursor` of the previous page."),
        ],
        responses={200: RefundListDoc},
    )
    @problems("order_not_found", "invalid_cursor")
    def get(self, request, order_id):
        order = order_get_for(order_id=order_id)
        page = newest_first_page(
            refunds_for_listing(order_id=order.pk),
            cursor=request.query_params.get("cursor"),
            kind=REFUND_CURSOR,
            size=REFUND_PAGE_SIZE,
        )
        return Response({"results": RefundOutput(page.results, many=True).data, "next_cursor": page.next_cursor})

    @extend_schema(
        tags=["orders"],
        summary="Refund unused units of an order",
        description="Moves `units` unused units of a credited order from the wallet back to the channel's stock "
        "and pays the money back less the channel's refund fee. The `Idempotency-Key` header is required: a "
        "retry with the same key (a lost answer, a timeout) gets the first refund's answer and refunds nothing "
        "twice. The refund starts `pending`; follow it with `GET /api/v1/refunds/{refund_id}` or the "
        "`refund.succeeded` / `refund.failed` webhooks.",
        parameters=[ORDER_ID],
        request=InputSerializer,
        responses={201: RefundDoc},
    )
    @problems("order_not_found", "refund_not_allowed", "idempotency_key_required")
    def post(self, request, order_id):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        order = order_get_for(order_id=order_id)
        key = request.idempotency_key
        if key is None:
            # Without a key a retry after a lost answer could not be told from a second refund.
            raise IdempotencyKeyRequired(
                "Refunds move money: send an Idempotency-Key header (for example a UUID) and send the same "
                "key again if you retry this refund."
            )
        refund = retail.refund_order(
            channel=request.tenant,
            order_id=order.pk,
            customer=order.customer,
            units=data.validated_data["units"],
            request_key=key,
        )
        return Response(RefundOutput(refund).data, status=201)


REFUND_ID = OpenApiParameter(
    "refund_id", OpenApiTypes.STR, OpenApiParameter.PATH, description="The refund's id (`rfd_...`)."
)


class RefundDetailApi(ChannelApiView):
    @extend_schema(tags=["orders"], summary="Get a refund", parameters=[REFUND_ID], responses={200: RefundDoc})
    @problems("refund_not_found")
    def get(self, request, refund_id):
        return Response(RefundOutput(refund_get_for(refund_id=refund_id)).data)


class WebhookAckDoc(serializers.Serializer):  # documentation only
    received = serializers.BooleanField()
    order = serializers.CharField()
    order_status = serializers.ChoiceField(choices=Order.Status.values)
    replayed = serializers.BooleanField(help_text="True when this provider reference was already processed.")
    note = serializers.CharField(allow_blank=True)


class PaymentWebhookApi(APIView):
    """``POST /api/v1/payments/{provider}/webhook``: signed by the provider; no API key."""

    authentication_classes: list = []
    permission_classes: list = []

    @extend_schema(
        tags=["payments"],
        summary="Payment provider webhook",
        description="Called by the payment provider, not by integrations: no API key, no `Idempotency-Key`. "
        "The body is the provider's event, signed over the raw bytes (the simulator: `Simulator-Signature: "
        "t=<unix time>,v1=<hex HMAC-SHA256>`), or carrying the provider's own proof (Midtrans: `signature_key` in "
        "the body; Xendit: the `x-callback-token` header), and confirmed with the provider's status API before "
        "anything is recorded. Idempotent by the provider's payment reference: a repeat answers 200 with "
        "`replayed: true`.",
        parameters=[
            OpenApiParameter(
                "provider", OpenApiTypes.STR, OpenApiParameter.PATH, description="`midtrans`, `xendit` (`simulator`)"
            ),
            OpenApiParameter(
                "Simulator-Signature",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                description="(simulator) `t=<unix time>,v1=<hex HMAC-SHA256 of '<t>.<body>'>`",
            ),
        ],
        request={"application/json": OpenApiTypes.OBJECT},
        responses={200: WebhookAckDoc},
        auth=[],
    )
    @problems(
        "invalid_signature", "malformed_webhook", "unknown_provider", "order_not_found", "payment_provider_unavailable"
    )
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
