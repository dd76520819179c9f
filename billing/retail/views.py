"""The simulator provider's pay page (stands in for a real provider's hosted checkout)."""

from __future__ import annotations

from django.conf import settings
from django.http import Http404
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from billing.providers import simulator
from billing.retail.errors import OrderNotFound
from billing.retail.models import Order
from billing.retail.selectors import order_get_for


@require_http_methods(["GET", "POST"])
def pay_simulator(request, order_id: str):
    try:
        order = order_get_for(order_id=order_id)
    except OrderNotFound:
        raise Http404("no such order") from None
    result = None
    if request.method == "POST" and order.status == Order.Status.AWAITING_PAYMENT:
        succeeded = request.POST.get("action") == "pay"
        body = simulator.event_body(order_id=order.pk, amount_rupiah=order.total_rupiah, succeeded=succeeded)
        path = reverse("payment-webhook", kwargs={"provider": "simulator"})
        base = settings.PAYMENT_SIMULATOR_WEBHOOK_BASE or f"http://127.0.0.1:{request.get_port()}"
        answer = simulator.send_webhook(url=base.rstrip("/") + path, host=request.get_host(), body=body)
        result = {"succeeded": succeeded, "status": answer.status}
        order.refresh_from_db()
    return render(request, "billing/pay_simulator.html", {"order": order, "result": result})
