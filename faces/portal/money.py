"""The portal's money pages for finance members: stock top-up requests and monthly statements.
Kept apart from ``views.py``; the rules are in ``billing.topups`` and ``billing.statements``."""

from __future__ import annotations

import csv
import io
import re

from django import forms
from django.contrib import messages
from django.db import connection
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET, require_http_methods

from billing.statements import channel_statement, statement_csv_rows
from billing.topups import request_topup, topups_for_channel
from faces.charts import Series, bar_chart
from faces.portal.statement_pdf import render_statement_pdf
from faces.portal.views import portal_login_required
from gateway.http.problems import problem_response
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


# --------------------------------------------------------------------------- statements

_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def _month(text: str | None) -> tuple[int, int] | None:
    if not text:
        today = timezone.localdate()
        return today.year, today.month
    found = _MONTH.match(text)
    return (int(found.group(1)), int(found.group(2))) if found else None


def _bad_month(request):
    return problem_response(
        request, status=400, code="invalid_period", title="Invalid month", detail="Give the month as YYYY-MM."
    )


def _previous(year: int, month: int) -> str:
    return f"{year - 1:04d}-12" if month == 1 else f"{year:04d}-{month - 1:02d}"


def _next(year: int, month: int) -> str:
    return f"{year + 1:04d}-01" if month == 12 else f"{year:04d}-{month + 1:02d}"


@portal_login_required(Role.FINANCE)
@require_GET
def statement(request):
    wanted = _month(request.GET.get("month"))
    if wanted is None:
        return _bad_month(request)
    found = channel_statement(channel=request.tenant, year=wanted[0], month=wanted[1])
    chart = bar_chart(
        labels=[day.strftime("%d %b") for day in found.days],
        stacks=[Series("Sold", found.sold_per_day, css="ok")],
        unit="units", title=f"Units sold per day, {found.label}", width=1040,
    )  # fmt: skip
    context = {"statement": found, "chart": chart, "previous": _previous(*wanted), "next": _next(*wanted)}
    return render(request, "portal/statement.html", context)


@portal_login_required(Role.FINANCE)
@require_GET
def statement_file(request, month: str, kind: str):
    wanted = _month(month)
    if kind not in ("csv", "pdf"):
        return render(request, "portal/not_found.html", {"what": "statement format"}, status=404)
    if wanted is None:
        return _bad_month(request)
    found = channel_statement(channel=request.tenant, year=wanted[0], month=wanted[1])
    name = f"statement_{found.channel_code}_{found.label}.{kind}"
    if kind == "csv":
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(statement_csv_rows(found))
        response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    else:
        response = HttpResponse(render_statement_pdf(found), content_type="application/pdf")
    response["Content-Disposition"] = content_disposition_header(as_attachment=True, filename=name)
    return response
