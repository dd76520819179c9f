"""Issuer host pages: landing, public status, stamp verification (by serial and by upload)."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.shortcuts import redirect, render
from django.urls import reverse

from gateway.errors import ApplicationError
from issuer.pdf.inspect import check_size
from issuer.selectors import verify_document, verify_serial
from issuer.serials import normalize_serial
from tenants.models import Channel


def home(request):
    channels = Channel.objects.filter(kind=Channel.Kind.CHANNEL, is_active=True).prefetch_related("domains")
    return render(request, "issuer/home.html", {"channels": channels})


def status_page(request):
    return render(
        request,
        "issuer/status.html",
        {
            "components": [
                ("Storefront API", "operational"),
                ("Stamping", "operational"),
                ("Verification", "operational"),
            ]
        },
    )


def verify_serial_page(request, serial: str):
    """``/v/<serial>``: where the stamp's QR code points."""
    try:
        result = verify_serial(serial)
    except ApplicationError as exc:
        context = {"serial": normalize_serial(serial)[:40], "error": exc}
        return render(request, "issuer/verify_serial.html", context, status=exc.http_status)
    return render(request, "issuer/verify_serial.html", {"serial": result["serial"], "result": result})


class VerifyUploadForm(forms.Form):
    document = forms.FileField(label="Stamped PDF")
    password = forms.CharField(
        label="Document password (only if the PDF is protected)",
        required=False,
        strip=False,
        max_length=256,
        widget=forms.PasswordInput,
    )


def verify_page(request):
    """``/verify``: look up a serial, or upload a stamped PDF to check its signature and serial."""
    if request.method == "GET" and request.GET.get("serial"):
        serial = normalize_serial(request.GET["serial"]).replace(" ", "")[:40] or "-"
        return redirect(reverse("verify-serial", kwargs={"serial": serial}))
    form = VerifyUploadForm(request.POST or None, request.FILES or None)
    context: dict = {"form": form}
    status = 200
    if request.method == "POST":
        if form.is_valid():
            upload = form.cleaned_data["document"]
            try:
                check_size(upload.size, settings.STAMP_DEFAULT_MAX_BYTES)
                result = verify_document(upload.read(), form.cleaned_data["password"] or None)
                for stamp in result["stamps"]:
                    stamp["check_list"] = [(name.replace("_", " "), ok) for name, ok in stamp["checks"].items()]
                context["result"] = result
            except ApplicationError as exc:
                context["error"] = exc
                status = exc.http_status
        else:
            status = 400
    return render(request, "issuer/verify.html", context, status=status)
