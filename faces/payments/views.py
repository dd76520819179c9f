"""The pay pages: ``/pay/<provider>/<order>`` sends the customer to a real provider's hosted checkout
(opened once per order); ``/pay/simulator/<order>`` is the simulator's own page (stands in for a
real provider's hosted checkout).

The page never calls its own server: paying queues the webhook for a worker to deliver
(:func:`billing.providers.simulator.send_payment`) and redirects to a page that waits for the
confirmation, refreshing itself, so no request ever waits on another request to this server.
"""

from __future__ import annotations

from functools import wraps

from django.conf import settings
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from billing.providers import UnknownProvider, enabled_providers, simulator
from billing.retail import services as retail
from billing.retail.errors import OrderNotFound
from billing.retail.models import Order
from billing.retail.selectors import order_get_for
from gateway.http.edge import base_url
from gateway.http.problems import problem_response
from kernel.errors import ApplicationError

REFRESH_SECONDS = 1


def _problem(request, problem: ApplicationError):
    return problem_response(
        request, status=problem.http_status, code=problem.code, title=problem.title, detail=problem.message,
        headers=getattr(problem, "headers", None),
    )  # fmt: skip


@require_GET
def pay_checkout(request, provider: str, order_id: str):
    """Open (once) the provider's checkout for the order and send the customer there. A provider this
    gateway does not enable is 404 ``unknown_provider``; one that does not answer, 503 (try again)."""
    try:
        url = retail.open_checkout(order_id=order_id, provider_name=provider, base_url=base_url(request))
    except ApplicationError as problem:
        return _problem(request, problem)
    return HttpResponseRedirect(url)


def simulator_enabled(view):
    """The simulator's pages exist only where ``PAYMENT_PROVIDERS`` enables it (the demo, the tests):
    elsewhere they answer ``404 unknown_provider`` and never queue a payment."""

    @wraps(view)
    def guarded(request, *args, **kwargs):
        if "simulator" not in enabled_providers():
            return _problem(
                request, UnknownProvider("There is no payment provider called 'simulator' on this gateway.")
            )
        return view(request, *args, **kwargs)

    return guarded


def _order_or_404(order_id: str) -> Order:
    try:
        return order_get_for(order_id=order_id)
    except OrderNotFound:
        raise Http404("no such order") from None


@simulator_enabled
@require_http_methods(["GET", "POST"])
def pay_simulator(request, order_id: str):
    order = _order_or_404(order_id)
    if request.method == "POST" and order.status == Order.Status.AWAITING_PAYMENT:
        path = reverse("payment-webhook", kwargs={"provider": "simulator"})
        base = settings.PAYMENT_SIMULATOR_WEBHOOK_BASE or f"http://127.0.0.1:{request.get_port()}"
        ref = simulator.send_payment(
            order=order,
            succeeded=request.POST.get("action") == "pay",
            webhook_url=base.rstrip("/") + path,
            host=request.get_host(),
            schema_name=request.tenant.schema_name,
        )
        return HttpResponseRedirect(
            reverse("pay-simulator-sent", kwargs={"order_id": order.pk, "ref": ref}), status=303
        )
    return render(request, "billing/pay_simulator.html", {"order": order})


@simulator_enabled
@require_GET
def pay_simulator_sent(request, order_id: str, ref: str):
    order = _order_or_404(order_id)
    progress = simulator.payment_progress(order=order, ref=ref)
    context = {"order": order, "progress": progress, "refresh_seconds": REFRESH_SECONDS}
    return render(request, "billing/pay_simulator_sent.html", context)
