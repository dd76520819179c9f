"""The issuer's back office (issuer host, ``/backoffice/``): issuer staff only, session login with a
password (throttled, ``faces.logins``) and a one-time code (``staff.otp``); sessions end after
``BACKOFFICE_SESSION_IDLE_SECONDS`` idle and ``BACKOFFICE_SESSION_MAX_SECONDS`` after the sign-in.

Views validate input, call one service or selector, and shape the page. Every page works without
JavaScript; the overview's charts refresh themselves when it is available (``static/js/live.js``
asks for ``?partial=charts`` and swaps the fragment in).
"""

from __future__ import annotations

import io
import time
from datetime import timedelta
from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.views import redirect_to_login
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse, reverse_lazy
from django.utils import timezone
from django.utils.http import content_disposition_header, url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_otp import login as django_otp_login

from billing.deposits import CONFIRM_PERMISSION, RECORD_PERMISSION, confirm_deposit, create_deposit
from billing.ledger.models import Deposit
from billing.ledger.selectors import (
    channel_balance,
    deposits_for_listing,
    large_deposits,
    pending_deposit_count,
    reconciliation_runs,
)
from billing.reconciliation import reconcile
from billing.settlement import settlement_rows, settlement_totals, write_csv
from billing.topups import open_topups
from faces.backoffice import selectors
from faces.backoffice.forms import (
    BrownoutForm,
    DepositForm,
    IncidentForm,
    OtpCodeForm,
    PeriodForm,
    SerialLookupForm,
    StaffLoginForm,
)
from faces.charts import Series, blank_before, format_number, line_chart
from faces.logins import ThrottledLoginView
from faces.wording import duty_basis, error_text, said
from gateway.http.problems import localized, problem_response
from issuer.incidents import create_incident_note, resolve_incident_note, update_incident_note
from issuer.models import IncidentNote
from issuer.selectors import recent_serials, resolved_incidents, serial_get
from issuer.stamp.render import qr_matrix, qr_rectangles
from kernel.errors import ApplicationError
from staff import otp
from staff.audit import record
from staff.selectors import audit_actions, audit_entries
from stamping.brownout import selectors as brownout_selectors
from stamping.brownout import services as brownout
from stamping.brownout.models import Brownout

LOGIN_URL = reverse_lazy("backoffice:login")
SIGNED_IN_AT = "backoffice_signed_in_at"  # session key: when the password was accepted (epoch seconds)


def _not_staff(request):
    return problem_response(
        request,
        status=403,
        code="permission_denied",
        title=_("Issuer staff only"),
        detail=_("The back office is for issuer staff. Sign out and sign in with a staff account."),
    )


def _session_over(request) -> bool:
    """A back-office session lasts at most ``BACKOFFICE_SESSION_MAX_SECONDS`` from its sign-in (the idle
    limit is the session's own expiry, renewed on every page: see :func:`staff_required`)."""
    signed_in_at = request.session.get(SIGNED_IN_AT)
    if not isinstance(signed_in_at, int | float):
        return True
    return time.time() - signed_in_at > settings.BACKOFFICE_SESSION_MAX_SECONDS


def _password_checked(request):
    """Anonymous visitors, non-staff users and ended sessions are answered here; None lets staff on."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path(), LOGIN_URL)
    if not request.user.is_staff:
        return _not_staff(request)
    if _session_over(request):
        logout(request)
        messages.info(request, _("Your back-office session ended. Sign in again."))
        return redirect_to_login(request.get_full_path(), LOGIN_URL)
    return None


def staff_required(view):
    """Staff with a verified second factor only: anonymous visitors go to the sign-in page, staff
    without a verified code to the code page (or the enrolment page), others are refused. Every page
    renews the session's idle expiry."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        refusal = _password_checked(request)
        if refusal is not None:
            return refusal
        if otp.session_device(request.session, request.user) is None:
            return redirect_to_login(request.get_full_path(), reverse("backoffice:otp-verify"))
        if not request.GET.get("partial"):  # a page's own refresh is not a person at work
            request.session.set_expiry(settings.BACKOFFICE_SESSION_IDLE_SECONDS)
        return view(request, *args, **kwargs)

    return wrapped


class StaffLoginView(ThrottledLoginView):
    """Password first (throttled per account and address); the code page comes next."""

    template_name = "issuer/backoffice/login.html"
    authentication_form = StaffLoginForm
    redirect_authenticated_user = False  # a signed-in session without its code comes back here to restart
    next_page = reverse_lazy("backoffice:overview")

    def throttle_realm(self) -> str:
        return "backoffice"

    def form_valid(self, form):
        response = super().form_valid(form)
        self.request.session[SIGNED_IN_AT] = int(time.time())
        self.request.session.set_expiry(settings.BACKOFFICE_SESSION_IDLE_SECONDS)
        record(self.request.user, "staff.signed_in", self.request.user, second_factor="pending")
        nxt = self.get_redirect_url()
        return redirect(_with_next(reverse("backoffice:otp-verify"), nxt)) if response.status_code == 302 else response


def _with_next(url: str, nxt: str) -> str:
    return f"{url}?{urlencode({'next': nxt})}" if nxt else url


def _next_url(request) -> str:
    wanted = request.POST.get("next") or request.GET.get("next") or ""
    if wanted and url_has_allowed_host_and_scheme(wanted, allowed_hosts={request.get_host()}):
        return wanted
    return reverse("backoffice:overview")


@require_http_methods(["GET", "POST"])
def otp_verify(request):
    """The second step of the sign-in: a code from the person's authenticator app."""
    refusal = _password_checked(request)
    if refusal is not None:
        return refusal
    if otp.confirmed_device(request.user) is None:
        return redirect(_with_next(reverse("backoffice:otp-enrol"), _next_url(request)))
    form = OtpCodeForm(request.POST or None)
    status, headers = 200, {}
    if request.method == "POST":
        device, status, headers = _checked_code(
            form,
            lambda token: otp.verify_code(user=request.user, token=token),
            wrong=_("That code is not valid. Enter the six-digit code your authenticator app shows now."),
        )
        if device is not None:
            _signed_in_with(request, device)
            record(request.user, "staff.verified", request.user)
            return redirect(_next_url(request))
    context = {"form": form, "next": _next_url(request)}
    return _with_headers(render(request, "issuer/backoffice/otp_verify.html", context, status=status), headers)


def _checked_code(form, check, *, wrong: str):
    """A posted one-time code, checked: ``(device, 200, {})`` when ``check(token)`` proves it; else the
    form carries why - ``wrong``, with 400, or the throttle's wait, with its 429 and headers."""
    try:
        device = check(form.data.get("token", "")) if form.is_valid() else None
    except otp.OtpCodeThrottled as exc:
        form.add_error(None, _throttled_text(exc))
        return None, exc.http_status, exc.headers
    if device is not None:
        return device, 200, {}
    form.add_error(None, wrong)
    return None, 400, {}


def _throttled_text(exc: otp.OtpCodeThrottled) -> str:
    return _("Too many wrong codes in a row: wait %(wait)s s before the next one.") % {"wait": exc.wait_seconds}


def _signed_in_with(request, device) -> None:
    """The second factor is proven: a new session key, the device on the session, the idle limit."""
    request.session.cycle_key()
    django_otp_login(request, device)
    request.session.set_expiry(settings.BACKOFFICE_SESSION_IDLE_SECONDS)


@require_http_methods(["GET", "POST"])
def otp_enrol(request):
    """Enrolment of a second factor: the device's QR code and secret, confirmed by its first code."""
    refusal = _password_checked(request)
    if refusal is not None:
        return refusal
    if otp.confirmed_device(request.user) is not None and otp.pending_device(request.user) is None:
        return redirect(_with_next(reverse("backoffice:otp-verify"), _next_url(request)))
    device = otp.pending_device(request.user)
    if device is None:
        if not settings.BACKOFFICE_OTP_SELF_ENROL:
            exc = otp.OtpEnrolmentClosed(_("Your account has no second factor yet."))
            said = localized({"title": exc.title, "detail": f"{exc.message} {exc.what_to_do}"}, exc)
            return problem_response(
                request, status=exc.http_status, code=exc.code, title=said["title"], detail=said["detail"]
            )
        device = otp.start_enrolment(user=request.user, actor=request.user)
    form = OtpCodeForm(request.POST or None)
    status, headers = 200, {}
    if request.method == "POST":
        confirmed, status, headers = _checked_code(
            form,
            lambda token: otp.confirm_enrolment(user=request.user, token=token),
            wrong=_("That code does not match. Scan the QR code again, then enter the code the app shows."),
        )
        if confirmed is not None:
            _signed_in_with(request, confirmed)
            messages.success(request, _("Your authenticator app is set up. Use it at every sign-in."))
            return redirect(_next_url(request))
    uri = device.config_url
    context = {
        "form": form,
        "next": _next_url(request),
        "uri": uri,
        "secret": otp.secret_text(device),
        "qr": qr_svg(uri),
    }
    return _with_headers(render(request, "issuer/backoffice/otp_enrol.html", context, status=status), headers)


def _with_headers(response, headers: dict):
    for name, value in headers.items():
        response[name] = value
    return response


def qr_svg(text: str) -> dict:
    """The QR code of ``text`` as SVG rectangles (the stamp's own QR drawing, y turned downwards), with a
    four-module quiet zone."""
    rows = qr_matrix(text)
    size = len(rows)
    quiet = 4
    rects = [(x + quiet, size - y - h + quiet, w, h) for x, y, w, h in qr_rectangles(rows)]
    return {"size": size + 2 * quiet, "rects": rects}


class StaffLogoutView(auth_views.LogoutView):
    next_page = reverse_lazy("backoffice:login")


# --------------------------------------------------------------------------- overview


def _overview_charts(window: selectors.Window, rows: list[dict]) -> dict:
    starts = selectors.bucket_starts(window)
    labels = [timezone.localtime(s).strftime("%H:%M") for s in starts]
    stamps = selectors.stamps_per_bucket(starts=starts, bucket=window.bucket)
    stock = selectors.stock_per_bucket(
        starts=starts,
        bucket=window.bucket,
        available_now={row["channel"].pk: row["balance"].available for row in rows},
    )
    per_minute = window.bucket_minutes

    def series(row: dict, values: list) -> Series:  # nothing drawn for the time before the channel existed
        channel = row["channel"]
        return Series(channel.name, blank_before(values, starts=starts, step=window.bucket, since=channel.created_at))

    stamp_series = [
        series(row, [n / per_minute for n in stamps.get(row["channel"].pk, [0] * len(starts))]) for row in rows
    ]
    stock_series = [series(row, stock.get(row["channel"].pk, [0] * len(starts))) for row in rows]
    return {
        "stamps_chart": line_chart(
            labels=labels, series=stamp_series, unit=_("stamps/min"), title=_("Stamps per minute")
        ),
        "stock_chart": line_chart(labels=labels, series=stock_series, unit=_("units"), title=_("Available stock")),
        "stamps_total": sum(sum(v) for v in stamps.values()),
    }


@staff_required
@require_GET
def overview(request):
    window = selectors.chart_window(request.GET.get("window"))
    rows = selectors.channel_overview()
    context = {
        "rows": rows,
        "window": window,
        "windows": selectors.WINDOWS.values(),
        "low_stock_count": sum(1 for row in rows if row["low_stock"]),
        "queue_total": sum(row["queue_depth"] for row in rows),
        "open_incidents": selectors.open_incidents(),
        "last_run": next(iter(reconciliation_runs(1)), None),
        "pending_deposits": pending_deposit_count(),
        "large_deposits": large_deposits(
            min_units=settings.LARGE_DEPOSIT_UNITS, since=timezone.now() - timedelta(days=7)
        ),
        "large_deposit_units": settings.LARGE_DEPOSIT_UNITS,
        **_overview_charts(window, rows),
    }
    template = (
        "issuer/backoffice/_overview_live.html" if request.GET.get("partial") else "issuer/backoffice/overview.html"
    )
    return render(request, template, context)


# --------------------------------------------------------------------------- deposits


@staff_required
@require_http_methods(["GET", "POST"])
def deposits(request):
    form = DepositForm(request.POST or None)
    status = 200
    may_record = request.user.has_perm(RECORD_PERMISSION)
    if request.method == "POST":
        if form.is_valid():
            try:
                deposit = create_deposit(
                    channel=form.cleaned_data["channel"],
                    units=form.cleaned_data["units"],
                    reference=form.cleaned_data["reference"],
                    recorded_by=request.user,
                )
            except ApplicationError as exc:
                form.add_error(None, error_text(exc))
                status = exc.http_status
            else:
                messages.success(
                    request,
                    _(
                        "Deposit %(reference)s recorded: %(units)s units for %(channel)s. Confirm it once the "
                        "money has arrived."
                    )
                    % {
                        "reference": deposit.reference,
                        "units": format_number(deposit.units),
                        "channel": deposit.channel.name,
                    },
                )
                return redirect("backoffice:deposits")
        else:
            status = 400
    wanted = request.GET.get("status", "")
    page = Paginator(deposits_for_listing(status=wanted), 25).get_page(request.GET.get("page"))
    stock = [(channel, channel_balance(channel_id=channel.pk)) for channel in selectors.channels()]
    context = {
        "form": form,
        "page": page,
        "statuses": Deposit.Status.choices,
        "wanted": wanted,
        "wanted_label": _(dict(Deposit.Status.choices)[wanted]) if wanted in Deposit.Status.values else wanted,
        "stock": stock,
        "may_record": may_record,
        "may_confirm": request.user.has_perm(CONFIRM_PERMISSION),
        "large_deposit_units": settings.LARGE_DEPOSIT_UNITS,
        "topups": open_topups(),
    }
    return render(request, "issuer/backoffice/deposits.html", context, status=status)


@staff_required
@require_POST
def deposit_confirm(request, deposit_id: int):
    get_object_or_404(Deposit, pk=deposit_id)
    try:
        deposit = confirm_deposit(deposit_id=deposit_id, confirmed_by=request.user)
    except ApplicationError as exc:
        messages.error(request, error_text(exc))
    else:
        messages.success(
            request,
            _("Deposit %(reference)s confirmed: %(units)s units allocated to %(channel)s.")
            % {"reference": deposit.reference, "units": format_number(deposit.units), "channel": deposit.channel.name},
        )
    return redirect("backoffice:deposits")


# --------------------------------------------------------------------------- reconciliation


@staff_required
@require_GET
def reconciliation(request):
    runs = reconciliation_runs(15)
    if runs:
        for check in runs[0].report.get("checks", []):
            check["label"] = check["name"].replace("_", " ").capitalize()
        runs[0].duration_ms = round((runs[0].finished_at - runs[0].started_at).total_seconds() * 1000)
    context = {"last_run": runs[0] if runs else None, "runs": runs}
    return render(request, "issuer/backoffice/reconciliation.html", context)


@staff_required
@require_POST
def reconciliation_run(request):
    report = reconcile(store=True, actor=request.user)
    if report["ok"]:
        messages.success(request, _("Reconciliation finished: every invariant holds."))
    else:
        failed = [check["name"] for check in report["checks"] if not check["ok"]]
        messages.error(request, _("Reconciliation found violations in: %(checks)s.") % {"checks": ", ".join(failed)})
    return redirect("backoffice:reconciliation")


# --------------------------------------------------------------------------- settlement


def _period(request) -> tuple[PeriodForm, dict | None]:
    form = PeriodForm(request.GET if "date_from" in request.GET else None, initial=PeriodForm.default_period())
    if form.is_bound:
        return form, form.cleaned_data if form.is_valid() else None
    return form, PeriodForm.default_period()


@staff_required
@require_GET
def settlement(request):
    form, period = _period(request)
    rows = settlement_rows(**period) if period else []
    context = {
        "form": form,
        "period": period,
        "rows": rows,
        "totals": settlement_totals(rows),
        "duty_basis": duty_basis(),
    }
    return render(request, "issuer/backoffice/settlement.html", context, status=200 if period else 400)


@staff_required
@require_GET
def settlement_csv(request):
    form, period = _period(request)
    if period is None:
        return problem_response(
            request,
            status=400,
            code="invalid_period",
            title=_("Invalid period"),
            detail=" ".join(form.errors.get("__all__", [])) or _("Give both dates as YYYY-MM-DD."),
        )
    out = io.StringIO()
    write_csv(settlement_rows(**period), out)
    name = f"settlement_{period['date_from'].isoformat()}_{period['date_to'].isoformat()}.csv"
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = content_disposition_header(as_attachment=True, filename=name)
    return response


# --------------------------------------------------------------------------- serials


@staff_required
@require_GET
def serials(request):
    form = SerialLookupForm(request.GET or None)
    found, error = None, None
    if form.is_bound and form.is_valid():
        try:
            found = serial_get(form.cleaned_data["serial"])
        except ApplicationError as exc:
            error = exc
    recent = recent_serials(20)
    status = error.http_status if error else 200
    return render(
        request,
        "issuer/backoffice/serials.html",
        {"form": form, "found": found, "error": said(error) if error else None, "recent": recent},
        status=status,
    )


# --------------------------------------------------------------------------- incidents


@staff_required
@require_http_methods(["GET", "POST"])
def incidents(request):
    form = IncidentForm(
        request.POST or None, initial={"started_at": timezone.localtime().replace(second=0, microsecond=0)}
    )
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                note = create_incident_note(**form.cleaned_data, actor=request.user)
            except ApplicationError as exc:
                form.add_error(None, error_text(exc))
                status = 400
            else:
                messages.success(request, _("Incident note “%(title)s” is on the status page.") % {"title": note.title})
                return redirect("backoffice:incidents")
        else:
            status = 400
    context = {
        "form": form,
        "open": selectors.open_incidents(),
        "closed": resolved_incidents(30),
    }
    return render(request, "issuer/backoffice/incidents.html", context, status=status)


@staff_required
@require_http_methods(["GET", "POST"])
def incident_edit(request, note_id: int):
    note = get_object_or_404(IncidentNote, pk=note_id)
    initial = {
        "title": note.title,
        "body": note.body,
        "severity": note.severity,
        "started_at": timezone.localtime(note.started_at),
        "resolved_at": timezone.localtime(note.resolved_at) if note.resolved_at else None,
    }
    form = IncidentForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            update_incident_note(note_id=note.pk, **form.cleaned_data, actor=request.user)
        except ApplicationError as exc:
            form.add_error(None, error_text(exc))
        else:
            messages.success(request, _("Incident note saved."))
            return redirect("backoffice:incidents")
    status = 400 if form.is_bound and form.errors else 200
    return render(request, "issuer/backoffice/incident_edit.html", {"form": form, "note": note}, status=status)


@staff_required
@require_POST
def incident_resolve(request, note_id: int):
    note = get_object_or_404(IncidentNote, pk=note_id)
    resolve_incident_note(note_id=note.pk, actor=request.user)
    messages.success(request, _("“%(title)s” marked resolved.") % {"title": note.title})
    return redirect("backoffice:incidents")


# --------------------------------------------------------------------------- brownout


def _scope(row: Brownout) -> str:
    return _("all") if row.scope == "all" else row.scope


@staff_required
@require_http_methods(["GET", "POST"])
def brownouts(request):
    """Pause new customers, purchases or stamp requests (one channel or all) and see what is paused;
    each change is audit-logged and announced to the channels by webhook (``stamping.brownout``)."""
    form = BrownoutForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                paused = brownout.pause(**form.cleaned_data, actor=request.user)
            except ApplicationError as exc:
                form.add_error(None, error_text(exc))
                status = 400
            else:
                messages.success(
                    request,
                    _("%(what)s paused for %(scope)s.")
                    % {"what": _(paused.get_kind_display()).capitalize(), "scope": _scope(paused)},
                )
                return redirect("backoffice:brownouts")
        else:
            status = 400
    context = {
        "form": form,
        "open": list(brownout_selectors.open_brownouts()),
        "closed": brownout_selectors.recent_brownouts(),
        "auto_channel": settings.BROWNOUT_AUTO_CHANNEL,
        "auto_issuer": settings.BROWNOUT_AUTO_ISSUER,
    }
    return render(request, "issuer/backoffice/brownouts.html", context, status=status)


@staff_required
@require_POST
def brownout_resume(request, brownout_id: int):
    row = get_object_or_404(Brownout, pk=brownout_id, ended_at__isnull=True)
    brownout.resume(kind=row.kind, channel=row.channel, actor=request.user)
    resumed = {"what": _(row.get_kind_display()).capitalize(), "scope": _scope(row)}
    messages.success(request, _("%(what)s resumed for %(scope)s.") % resumed)
    return redirect("backoffice:brownouts")


# --------------------------------------------------------------------------- audit log


@staff_required
@require_GET
def audit_log(request):
    wanted = request.GET.get("action", "")
    page = Paginator(audit_entries(action=wanted), 50).get_page(request.GET.get("page"))
    context = {"page": page, "actions": audit_actions(), "wanted": wanted}
    return render(request, "issuer/backoffice/audit.html", context)
