"""The back office's channel pages: onboarding a new channel (provisioned in the background, its
progress shown until it is ready, its owner invited by a one-time link), changing a channel's price,
limits and stamping share, suspending and reinstating it with a reason. Every change goes through
``tenants.services``, which writes the audit log in the change's transaction."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from faces.backoffice.views import staff_required
from faces.wording import error_text
from kernel.errors import ApplicationError
from tenants import services as tenants
from tenants.models import Channel, Domain, Onboarding

SETTING_LABELS = {
    "service_fee_rupiah": (gettext_lazy("Price: service fee per unit (Rp)"), 0, 1_000),
    "rate_limit_per_key": (gettext_lazy("Requests per second per API key"), 1, 50),
    "rate_limit_per_channel": (gettext_lazy("Requests per second for the channel"), 1, 200),
    "rate_limit_burst": (gettext_lazy("Burst (requests)"), 1, 100),
    "stamping_concurrency": (gettext_lazy("Stamping share (documents at once)"), 1, 4),
    "low_stock_threshold": (gettext_lazy("Low-stock threshold (units)"), 0, 100),
}


class _SettingsForm(forms.Form):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field, (label, minimum, default) in SETTING_LABELS.items():
            self.fields[field] = forms.IntegerField(label=label, min_value=minimum, initial=default)

    def settings(self) -> dict[str, int]:
        return {field: self.cleaned_data[field] for field in SETTING_LABELS}


class NewChannelForm(_SettingsForm):
    code = forms.CharField(
        label=gettext_lazy("Code"), max_length=31,
        help_text=gettext_lazy("Lower-case letters, digits, underscores; also the schema name."),
    )  # fmt: skip
    name = forms.CharField(label=gettext_lazy("Name"), max_length=200)
    hosts = forms.CharField(
        label=gettext_lazy("Hosts"), max_length=1000,
        help_text=gettext_lazy("Host names, separated by spaces or commas; the first is primary."),
    )  # fmt: skip
    owner_email = forms.EmailField(
        label=gettext_lazy("Owner's e-mail"), help_text=gettext_lazy("Gets a one-time link to join as the owner.")
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.order_fields(["code", "name", "hosts", "owner_email", *SETTING_LABELS])

    def host_list(self) -> list[str]:
        return [h for h in self.cleaned_data["hosts"].replace(",", " ").split() if h]


class StatusForm(forms.Form):
    reason = forms.CharField(
        label=gettext_lazy("Reason"), max_length=500, help_text=gettext_lazy("Why; kept in the audit log.")
    )


def _portal_url(request, host: str) -> str:
    """Where the new channel's portal answers, as seen from this back office (same scheme and port)."""
    port = request.get_port()
    default = {"http": "80", "https": "443"}[request.scheme]
    return f"{request.scheme}://{host}" + ("" if str(port) == default else f":{port}")


@staff_required
@require_GET
def channels(request):
    rows = [
        (channel, list(Domain.objects.filter(tenant=channel).values_list("domain", flat=True)))
        for channel in Channel.objects.filter(kind=Channel.Kind.CHANNEL).order_by("code")
    ]
    onboardings = Onboarding.objects.all()[:10]
    return render(request, "issuer/backoffice/channels.html", {"rows": rows, "onboardings": onboardings})


@staff_required
@require_http_methods(["GET", "POST"])
def channel_new(request):
    form = NewChannelForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            hosts = form.host_list()
            try:
                onboarding = tenants.request_onboarding(
                    code=form.cleaned_data["code"], name=form.cleaned_data["name"], hosts=hosts,
                    settings_=form.settings(), owner_email=form.cleaned_data["owner_email"],
                    portal_url=_portal_url(request, hosts[0].lower()) if hosts else "", actor=request.user,
                )  # fmt: skip
            except ApplicationError as exc:
                form.add_error(None, error_text(exc))
                status = exc.http_status
            else:
                return redirect("backoffice:onboarding", onboarding_id=onboarding.pk)
        else:
            status = 400
    return render(request, "issuer/backoffice/channel_new.html", {"form": form}, status=status)


@staff_required
@require_GET
def onboarding(request, onboarding_id: int):
    """The progress of a new channel; ``static/js/live.js`` refreshes the progress fragment."""
    row = get_object_or_404(Onboarding, pk=onboarding_id)
    template = (
        "issuer/backoffice/_onboarding_live.html"
        if request.GET.get("partial")
        else ("issuer/backoffice/onboarding.html")
    )
    return render(request, template, {"onboarding": row})


@staff_required
@require_GET
def onboarding_json(request, onboarding_id: int):
    row = get_object_or_404(Onboarding, pk=onboarding_id)
    return JsonResponse({"id": row.pk, "code": row.code, "state": row.state, "step": row.step, "error": row.error})


@staff_required
@require_http_methods(["GET", "POST"])
def channel_detail(request, code: str):
    channel = get_object_or_404(Channel, code=code, kind=Channel.Kind.CHANNEL)
    initial = {field: getattr(channel, field) for field in SETTING_LABELS}
    form = _SettingsForm(request.POST or None, initial=initial)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            changes = {k: v for k, v in form.settings().items() if getattr(channel, k) != v}
            try:
                tenants.set_channel_limits(channel=channel, changes=changes, actor=request.user)
            except ApplicationError as exc:
                form.add_error(None, error_text(exc))
                status = exc.http_status
            else:
                messages.success(
                    request,
                    ngettext(
                        "%(channel)s: %(n)s setting changed.", "%(channel)s: %(n)s settings changed.", len(changes)
                    )
                    % {"channel": channel.name, "n": len(changes)},
                )
                return redirect("backoffice:channel", code=channel.code)
        else:
            status = 400
    hosts = list(Domain.objects.filter(tenant=channel).values_list("domain", flat=True))
    context = {"channel": channel, "form": form, "status_form": StatusForm(), "hosts": hosts}
    return render(request, "issuer/backoffice/channel.html", context, status=status)


@staff_required
@require_POST
def channel_status(request, code: str):
    channel = get_object_or_404(Channel, code=code, kind=Channel.Kind.CHANNEL)
    form = StatusForm(request.POST)
    active = request.POST.get("active") == "1"
    if not form.is_valid():
        messages.error(request, _("Give a reason: it is kept in the audit log."))
        return redirect("backoffice:channel", code=channel.code)
    tenants.set_channel_active(channel=channel, active=active, actor=request.user, reason=form.cleaned_data["reason"])
    done = _("%(channel)s is reinstated.") if active else _("%(channel)s is suspended.")
    messages.success(request, done % {"channel": channel.name})
    return redirect("backoffice:channel", code=channel.code)
