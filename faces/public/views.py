"""Issuer host pages: landing, public status, stamp verification (by serial and by upload)."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET

from faces.backoffice import selectors
from faces.charts import Series, line_chart
from faces.public import presenting
from faces.public.presenting import local
from gateway.ratelimit import RateLimited, enforce_public_rate_limit
from issuer import selectors as issuer_selectors
from issuer.pdf.inspect import check_size
from issuer.selectors import verify_document, verify_serial
from issuer.serials import normalize_serial
from kernel.errors import ApplicationError
from stamping.brownout import selectors as brownout
from tenants.selectors import active_channels


@require_GET
def root_certificate(request, fmt: str):
    """``/ca/root.pem`` and ``/ca/root.crt`` (DER): the issuer's root certificate, at a stable URL."""
    pem = fmt == "pem"
    response = HttpResponse(
        issuer_selectors.root_certificate(pem=pem),
        content_type="application/x-pem-file" if pem else "application/pkix-cert",
    )
    response["Content-Disposition"] = f'attachment; filename="e-meterai-root.{fmt}"'
    response["Cache-Control"] = "public, max-age=3600"
    return response


def home(request):
    return render(request, "issuer/home.html", {"channels": active_channels()})


def _status_context() -> dict:
    components = selectors.component_health()
    incidents = selectors.open_incidents()
    queues = selectors.channel_queues([c for c in selectors.channels() if c.is_active])
    window = selectors.WINDOWS["1h"]
    starts = selectors.bucket_starts(window)
    stamps = selectors.stamps_per_bucket(starts=starts, bucket=window.bucket)
    throughput = line_chart(
        labels=[timezone.localtime(start).strftime("%H:%M") for start in starts],
        series=[Series(q["channel"].name, stamps.get(q["channel"].pk, [0] * len(starts))) for q in queues],
        unit="stamps/min",
        title="Stamps completed per minute, last hour",
        width=1040,
        height=240,
    )
    return {
        "throughput": throughput,
        "components": components,
        "overall": selectors.overall_state(components, incidents),
        "incidents": incidents,
        "resolved": selectors.recent_incidents(),
        "queues": queues,
        "queue_total": sum(q["queue_depth"] for q in queues),
        "checked_at": timezone.localtime(),
    }


def status_page(request):
    """``/status``: component health, each channel's stamping queue with an honest ETA, incident notes.

    Refreshes itself: with JavaScript ``static/js/live.js`` swaps in ``?partial=1`` every 15 s,
    without it a ``<noscript>`` meta refresh reloads the page every 30 s. At a deadline everyone
    watches this page, so what it shows is worked out at most once every few seconds
    (``selectors.STATUS_CACHE_SECONDS``; a new or changed incident note shows at once).
    """
    # the pauses in force are not in the shared cache: a pause or a resume shows within seconds
    context = selectors.cached_status(_status_context)
    pauses = brownout.all_pauses()
    if pauses:  # new work refused somewhere: not "all systems operational"
        overall = "degraded" if context["overall"] == "operational" else context["overall"]
        context = context | {"brownouts": pauses, "overall": overall}
    template = "issuer/_status_live.html" if request.GET.get("partial") else "issuer/status.html"
    response = render(request, template, context)
    response["Cache-Control"] = "no-cache, max-age=0"
    return response


def _render_refusal(request, template: str, context: dict, exc: ApplicationError):
    response = render(request, template, context | {"error": exc}, status=exc.http_status)
    for name, value in (getattr(exc, "headers", None) or {}).items():
        response[name] = value
    return response


def verify_serial_page(request, serial: str):
    """``/v/<serial>``: where the stamp's QR code points."""
    try:
        enforce_public_rate_limit(request)
        result = verify_serial(serial)
    except ApplicationError as exc:
        return _render_refusal(request, "issuer/verify_serial.html", {"serial": normalize_serial(serial)[:40]}, exc)
    result = presenting.serial_status(result)
    times = {name: local(result[name]) for name in ("used_at", "voided_at")}
    return render(request, "issuer/verify_serial.html", {"serial": result["serial"], "result": result, **times})


class VerifyUploadForm(forms.Form):
    document = forms.FileField(label="Stamped PDF")
    password = forms.CharField(
        label="Document password (only if the PDF is protected)",
        required=False,
        strip=False,
        max_length=256,
        widget=forms.PasswordInput,
    )


@csrf_exempt  # the CSRF check reads the form: it runs in _verify_page, after the rate limit
def verify_page(request):
    """``/verify``: look up a serial, or upload a stamped PDF to check its signature and serial.

    A POST is charged to the public rate limit before anything reads its body (the CSRF check parses
    the whole upload, so it comes second); a body over the limit never got here
    (``gateway.middleware.BodyLimitMiddleware``)."""
    if request.method == "GET" and request.GET.get("serial"):
        serial = normalize_serial(request.GET["serial"]).replace(" ", "")[:40] or "-"
        return redirect(reverse("verify-serial", kwargs={"serial": serial}))
    if request.method == "POST":
        try:  # before the upload is read
            enforce_public_rate_limit(request, cost=settings.PUBLIC_UPLOAD_COST)
        except RateLimited as exc:
            return _render_refusal(request, "issuer/verify.html", {"form": VerifyUploadForm()}, exc)
    return _verify_page(request)


@csrf_protect
def _verify_page(request):
    form = VerifyUploadForm(request.POST or None, request.FILES or None)
    context: dict = {"form": form}
    status = 200
    if request.method == "POST":
        if form.is_valid():
            upload = form.cleaned_data["document"]
            try:
                check_size(upload.size, settings.STAMP_DEFAULT_MAX_BYTES)
                result = presenting.document_verdict(
                    verify_document(upload.read(), form.cleaned_data["password"] or None)
                )
                for stamp in result["stamps"]:
                    stamp["check_list"] = [(name.replace("_", " "), ok) for name, ok in stamp["checks"].items()]
                    stamp["used_at_local"] = local((stamp.get("registry") or {}).get("used_at"))
                for sig in result["signatures"]:
                    sig["signing_time_local"] = local(sig["signing_time"])
                context["result"] = result
            except ApplicationError as exc:
                context["error"] = exc
                status = exc.http_status
        else:
            status = 400
    response = render(request, "issuer/verify.html", context, status=status)
    for name, value in (getattr(context.get("error"), "headers", None) or {}).items():
        response[name] = value  # e.g. Retry-After with verification_busy
    return response
