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
from django.utils import dateformat, timezone
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods

from billing.statements import channel_statement, statement_csv_rows
from billing.topups import request_topup, topups_for_channel
from faces.charts import Series, bar_chart
from faces.portal.statement_pdf import render_statement_pdf
from faces.portal.views import portal_login_required
from faces.wording import duty_basis, error_text
from gateway.http.problems import problem_response
from kernel.errors import ApplicationError
from tenants.members.models import Role


class TopUpForm(forms.Form):
    units = forms.IntegerField(
        label=gettext_lazy("Units"), min_value=1, max_value=10_000_000,
        help_text=gettext_lazy("Each unit is Rp 10.000 of stamp duty."),
    )  # fmt: skip
    transfer_reference = forms.CharField(
        max_length=100, label=gettext_lazy("Transfer reference"),
        help_text=gettext_lazy("The reference of the bank transfer that paid the duty."),
    )  # fmt: skip
    proof = forms.FileField(
        label=gettext_lazy("Proof of transfer"), help_text=gettext_lazy("PDF, PNG or JPEG, at most 900 KB.")
    )


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
                form.add_error(None, error_text(exc))
                status = 400
            else:
                messages.success(
                    request,
                    _("Top-up request %(id)s for %(units)s units is sent to the issuer.")
                    % {"id": created.pk, "units": created.units},
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
        request, status=400, code="invalid_period", title=_("Invalid month"), detail=_("Give the month as YYYY-MM.")
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
        labels=[dateformat.format(day, "d M") for day in found.days],
        stacks=[Series(_("Sold"), found.sold_per_day, css="ok")],
        unit=_("units"), title=_("Units sold per day, %(month)s") % {"month": found.label}, width=1040,
    )  # fmt: skip
    context = {
        "statement": found, "chart": chart, "previous": _previous(*wanted), "next": _next(*wanted),
        "basis": duty_basis(),
    }  # fmt: skip
    return render(request, "portal/statement.html", context)


@portal_login_required(Role.FINANCE)
@require_GET
def statement_file(request, month: str, kind: str):
    wanted = _month(month)
    if kind not in ("csv", "pdf"):
        return render(request, "portal/not_found.html", {"what": _("statement format")}, status=404)
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
