"""The channel's admin portal (session login on the channel's own host, users in the channel's schema).

Views validate input, call one service or selector and shape the page. Pages work without
JavaScript; the dashboard chart and the stamp history refresh themselves when it is available.
"""

from __future__ import annotations

from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import dateformat, timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from billing.ledger.selectors import channel_balance
from billing.retail.models import Order
from billing.retail.selectors import orders_for_portal, recent_orders
from faces.charts import Series, bar_chart, blank_before
from faces.logins import ThrottledLoginView
from faces.portal import selectors
from faces.portal.forms import ApiKeyForm, WebhookEndpointForm
from faces.wording import error_text
from gateway.apikeys import DEFAULT_ROTATION_OVERLAP, issue_api_key, revoke_api_key, rotate_api_key
from gateway.http.problems import localized, problem_response
from issuer.stamp.render import verification_url
from kernel.errors import ApplicationError, NotFound
from outbox import selectors as outbox_selectors
from outbox.models import WebhookDelivery, WebhookEndpoint
from outbox.webhooks import create_webhook_endpoint, replay_delivery
from stamping.models import StampJob
from stamping.selectors import jobs_in_flight, recent_stamp_jobs, stamp_jobs_for_portal
from tenants.customers.selectors import customer_count, customers_for_portal
from tenants.members.models import Role
from tenants.members.services import RoleRefused, require_role
from tenants.services import ChannelSuspended, refuse_if_suspended


def _refusal_page(request, exc: ApplicationError):
    """``exc`` as a problem, its title and what to do in the page's language (``gateway.http.problems.localized``)."""
    said = localized({"title": exc.title, "detail": f"{exc.message} {exc.what_to_do}"}, exc)
    return problem_response(request, status=exc.http_status, code=exc.code, title=said["title"], detail=said["detail"])


def _suspended_page(request, exc: ChannelSuspended):
    return _refusal_page(request, exc)


EVERYONE = tuple(Role.values)


def portal_login_required(*roles: str):
    """The one check of every portal page and action: a suspended channel answers ``403
    channel_suspended``; anonymous visitors go to the sign-in page; a signed-in user whose role is not
    among ``roles`` (owners pass everywhere) gets ``403 role_refused`` and nothing is done. A removed
    member is inactive, so Django's session check has already signed it out."""

    def decorate(view):
        @wraps(view)
        def checked(request, *args, **kwargs):
            try:
                member = require_role(request.user, roles)
            except RoleRefused as exc:
                return _refusal_page(request, exc)
            request.member = member
            return view(request, *args, **kwargs)

        checked_signed_in = login_required(login_url="portal:login")(checked)

        @wraps(view)
        def wrapped(request, *args, **kwargs):
            try:
                refuse_if_suspended(request.tenant)
            except ChannelSuspended as exc:
                return _suspended_page(request, exc)
            return checked_signed_in(request, *args, **kwargs)

        wrapped.portal_roles = roles
        return wrapped

    return decorate


class PortalLoginView(ThrottledLoginView):
    """The portal's sign-in, throttled per account and address of this channel; refused while the
    channel is suspended."""

    template_name = "portal/login.html"
    redirect_authenticated_user = True
    next_page = "portal:dashboard"

    def throttle_realm(self) -> str:
        return self.request.tenant.schema_name

    def dispatch(self, request, *args, **kwargs):
        try:
            refuse_if_suspended(request.tenant)
        except ChannelSuspended as exc:
            return _suspended_page(request, exc)
        return super().dispatch(request, *args, **kwargs)


PAGE_SIZE = 25


def _page(request, queryset):
    return Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))


def _activity_chart(window: selectors.ActivityRange, channel) -> tuple[dict, int, int]:
    starts, stamped, failed = selectors.stamp_activity(window)
    total_stamped, total_failed = sum(stamped), sum(failed)
    # No bar, and no 0 in the table, for the hours or days before the channel existed.
    stamped = blank_before(stamped, starts=starts, step=window.step, since=channel.created_at)
    failed = blank_before(failed, starts=starts, step=window.step, since=channel.created_at)
    chart = bar_chart(
        labels=[dateformat.format(timezone.localtime(s), window.fmt) for s in starts],
        stacks=[
            Series(_("Stamped"), stamped, css="ok"),
            Series(_("Failed"), failed, css="bad"),
        ],
        unit=_("documents"),
        title=_("Stamps, %(period)s") % {"period": str(window.label).lower()},
    )
    return chart, total_stamped, total_failed


@portal_login_required(*EVERYONE)
@require_GET
def dashboard(request):
    channel = request.tenant
    balance = channel_balance(channel_id=channel.pk)
    window = selectors.activity_range(request.GET.get("range"))
    chart, stamped_total, failed_total = _activity_chart(window, channel)
    context = {
        "channel": channel,
        "balance": balance,
        "low_stock": balance.available < channel.low_stock_threshold,
        "stock_parts": _stock_parts(balance),
        "window": window,
        "ranges": selectors.RANGES.values(),
        "chart": chart,
        "stamped_total": stamped_total,
        "failed_total": failed_total,
        "customer_count": customer_count(),
        "in_flight": jobs_in_flight(),
        "recent_orders": recent_orders(5),
        "recent_jobs": recent_stamp_jobs(5),
        "verify_base": settings.VERIFY_BASE_URL,
    }
    template = "portal/_dashboard_live.html" if request.GET.get("partial") else "portal/dashboard.html"
    return render(request, template, context)


def _stock_parts(balance) -> list[dict]:
    """Where the channel's allocated units are now, as shares of one bar."""
    looks = {
        "available": (_("Available"), "ok"),
        "reserved": (_("Reserved"), "c2"),
        "in_wallets": (_("In wallets"), "c1"),
        "held": (_("Held"), "c3"),
        "used": (_("Used"), "c7"),
    }
    parts = [(*looks[key], value) for key, value in balance.parts()]
    total = balance.allocated or 1
    shares, offset = [], 0.0
    for name, css, value in parts:
        if value > 0:  # ``offset``: where the part starts in the bar (drawn in SVG: no inline style)
            percent = round(100 * value / total, 2)
            shares.append({"name": name, "value": value, "css": css, "percent": percent, "offset": round(offset, 2)})
            offset += percent
    return shares


@portal_login_required(Role.SUPPORT)
@require_GET
def customers(request):
    q = request.GET.get("q", "").strip()
    page = _page(request, customers_for_portal(search=q))
    quotas = selectors.customer_quotas(channel_id=request.tenant.pk, customer_ids=[c.pk for c in page])
    rows = [(customer, quotas[customer.pk]) for customer in page]
    return render(request, "portal/customers.html", {"page": page, "rows": rows, "q": q})


@portal_login_required(Role.FINANCE)
@require_GET
def orders(request):
    wanted = request.GET.get("status", "")
    context = {
        "page": _page(request, orders_for_portal(status=wanted)),
        "statuses": Order.Status.choices,
        "wanted": wanted,
    }
    return render(request, "portal/orders.html", context)


@portal_login_required(Role.SUPPORT)
@require_GET
def stamps(request):
    wanted = request.GET.get("status", "")
    page = _page(request, stamp_jobs_for_portal(status=wanted))
    jobs = [
        (job, verification_url(settings.VERIFY_BASE_URL, job.issued_serial) if job.issued_serial else "")
        for job in page
    ]
    in_flight = jobs_in_flight()
    context = {
        "page": page,
        "jobs": jobs,
        "statuses": StampJob.Status.choices,
        "wanted": wanted,
        "wanted_label": _(dict(StampJob.Status.choices)[wanted]) if wanted in StampJob.Status.values else wanted,
        "batches": selectors.batch_progress(),
        "in_flight": in_flight,
    }
    template = "portal/_stamps_live.html" if request.GET.get("partial") else "portal/stamps.html"
    return render(request, template, context)


# --------------------------------------------------------------------------- API keys


NEW_KEY_SESSION = "portal_new_api_key"


@portal_login_required(Role.DEVELOPER)
@require_http_methods(["GET", "POST"])
def api_keys(request):
    """Keys of the channel; a POST issues one and redirects (so a reload never issues another). The
    plaintext waits in the session for that one GET, which shows it and forgets it."""
    channel = request.tenant
    form = ApiKeyForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                issued = issue_api_key(
                    channel=channel, name=form.cleaned_data["name"], scopes=tuple(form.cleaned_data["scopes"])
                )
            except ApplicationError as exc:
                form.add_error(None, error_text(exc))
                status = 400
            else:
                request.session[NEW_KEY_SESSION] = {"id": issued.api_key.pk, "plaintext": issued.plaintext}
                return redirect("portal:api-keys")
        else:
            status = 400
    issued = request.session.pop(NEW_KEY_SESSION, None)
    keys = selectors.api_keys_for(channel=channel)
    if issued:
        issued["api_key"] = next((k for k in keys if k.pk == issued["id"]), None)
    response = render(request, "portal/api_keys.html", {"form": form, "issued": issued, "keys": keys}, status=status)
    if issued:
        response["Cache-Control"] = "no-store"  # the only page that ever shows the key: keep it out of caches
    return response


@portal_login_required(Role.DEVELOPER)
@require_POST
def api_key_rotate(request, key_id: int):
    """Issue the key's successor (shown once, like a new key); the old key keeps working for the
    overlap window so every client can switch, then expires."""
    try:
        key = selectors.api_key_get_for(channel=request.tenant, key_id=key_id)
        issued = rotate_api_key(api_key=key)
    except NotFound:
        return render(request, "portal/not_found.html", {"what": _("API key")}, status=404)
    except ApplicationError as exc:
        messages.error(request, error_text(exc))
        return redirect("portal:api-keys")
    request.session[NEW_KEY_SESSION] = {"id": issued.api_key.pk, "plaintext": issued.plaintext}
    hours = int(DEFAULT_ROTATION_OVERLAP.total_seconds() // 3600)
    messages.success(
        request,
        _("Key “%(name)s” rotated. The old key (emk_%(prefix)s_…) keeps working for %(hours)s hours.")
        % {"name": key.name, "prefix": key.prefix, "hours": hours},
    )
    return redirect("portal:api-keys")


@portal_login_required(Role.DEVELOPER)
@require_POST
def api_key_revoke(request, key_id: int):
    try:
        key = selectors.api_key_get_for(channel=request.tenant, key_id=key_id)
    except NotFound:
        return render(request, "portal/not_found.html", {"what": _("API key")}, status=404)
    already = key.revoked_at is not None
    revoke_api_key(api_key=key)
    if not already:
        messages.success(
            request,
            _("Key “%(name)s” (emk_%(prefix)s_…) is revoked. Requests with it are refused now.")
            % {"name": key.name, "prefix": key.prefix},
        )
    return redirect("portal:api-keys")


# --------------------------------------------------------------------------- webhooks


@portal_login_required(Role.DEVELOPER)
@require_http_methods(["GET", "POST"])
def webhooks(request):
    form = WebhookEndpointForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                endpoint = create_webhook_endpoint(**form.cleaned_data)
            except ApplicationError as exc:
                form.add_error(None, error_text(exc))
                status = 400
            else:
                messages.success(request, _("Endpoint added. Verify each delivery with its signing secret (below)."))
                return redirect("portal:webhook-endpoint", endpoint_id=endpoint.pk)
        else:
            status = 400
    wanted = request.GET.get("status", "")
    context = {
        "form": form,
        "endpoints": outbox_selectors.endpoints(),
        "page": _page(request, outbox_selectors.deliveries(status=wanted)),
        "statuses": WebhookDelivery.Status.choices,
        "wanted": wanted,
    }
    return render(request, "portal/webhooks.html", context, status=status)


@portal_login_required(Role.DEVELOPER)
@require_GET
def webhook_endpoint(request, endpoint_id: int):
    endpoint = get_object_or_404(WebhookEndpoint, pk=endpoint_id)
    page = _page(request, endpoint.deliveries.order_by("-id"))
    return render(request, "portal/webhook_endpoint.html", {"endpoint": endpoint, "page": page})


@portal_login_required(Role.DEVELOPER)
@require_POST
def webhook_replay(request, delivery_id: int):
    try:
        delivery = replay_delivery(delivery_id=delivery_id)
    except NotFound:
        return render(request, "portal/not_found.html", {"what": _("webhook delivery")}, status=404)
    queued = {"id": delivery.pk, "event": delivery.event_type}
    messages.success(request, _("Delivery %(id)s (%(event)s) is queued to be sent again.") % queued)
    back = request.POST.get("back", "")
    if back.startswith("/") and not back.startswith("//"):
        return redirect(back)
    return redirect("portal:webhooks")
