"""Issuer host pages: landing, public status."""

from __future__ import annotations

from django.shortcuts import render

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
