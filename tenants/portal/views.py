"""The channel's admin portal (session login on the channel's own host)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from gateway.models import ApiKey
from tenants.portal.models import Customer


@login_required(login_url="portal:login")
def dashboard(request):
    channel = request.tenant
    context = {
        "channel": channel,
        "customer_count": Customer.objects.count(),
        "recent_customers": Customer.objects.order_by("-id")[:10],
        "api_keys": ApiKey.objects.filter(channel_id=channel.pk).order_by("-created_at"),
    }
    return render(request, "portal/dashboard.html", context)
