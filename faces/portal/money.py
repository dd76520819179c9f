"""The portal's money pages for finance members: stock top-up requests and monthly statements.
Kept apart from ``views.py``; the rules are in ``billing.topups`` and ``billing.statements``."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.db import connection
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from billing.topups import request_topup, topups_for_channel
from faces.portal.views import portal_login_required
from kernel.errors import ApplicationError
from tenants.members.models import Role


class TopUpForm(forms.Form):
    units = forms.IntegerField(
        min_value=1, max_value=10_000_000, help_text="Each unit is Rp 10.000 of stamp duty."
    )
    transfer_reference = forms.CharField(
        max_length=100, label="Transfer reference", help_text="The reference of the bank transfer that paid the duty."
    )
    proof = forms.FileField(label="Proof of transfer", help_text="PDF, PNG or JPEG, at most 900 KB.")


@portal_login_required(Role.FINANCE)
@require_http_methods(["GET", "POST"])
def topups(request):
    form = TopUpForm(request.POST or None, request.FILES or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            upload = form.cleaned_data["proof"]
            try:
                created = request_topup(
                    channel=request.tenant, units=form.cleaned_data["units"],
                    transfer_reference=form.cleaned_data["transfer_reference"], proof_name=upload.name,
                    proof=upload.read(), requested_by=f"{connection.schema_name}:{request.user.get_username()}",
                )  # fmt: skip
            except ApplicationError as exc:
                form.add_error(None, exc.message)
                status = 400
            else:
                messages.success(
                    request, f"Top-up request {created.pk} for {created.units} units is sent to the issuer."
                )
                return redirect("portal:topups")
        else:
            status = 400
    context = {"form": form, "requests": topups_for_channel(channel=request.tenant)}
    return render(request, "portal/topups.html", context, status=status)
