"""The reference storefront, ``/shop/`` on a channel's host: what an applicant uses on a phone.

It calls the same services as the storefront API (customers, orders, the pay pages) and never a
private shortcut. Every page works without JavaScript. A refusal is shown as a page a person can act
on (never a raw error); a purchase pause (brownout) or an incident is shown on every page, and a
page that waits for something (a payment) refreshes itself.
"""

from __future__ import annotations

import math
import secrets
from functools import wraps

from django import forms
from django.conf import settings
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from billing import quota
from billing.retail import services as retail
from billing.retail.errors import OrderNotFound
from billing.retail.selectors import order_get_for, orders_for_listing
from faces.backoffice.selectors import open_incidents
from faces.shop import signin
from gateway.http.edge import base_url
from gateway.ratelimit import check_login_attempt, client_address, client_bucket
from kernel.errors import ApplicationError
from stamping.brownout import selectors as brownout
from stamping.brownout.services import refuse_if_paused
from stamping.selectors import stamp_jobs_for_listing
from tenants.customers.services import CustomerNotFound, customer_get

SESSION_KEY = "shop_customer"
FORM_ONCE_SECONDS = 24 * 3600


class FormOnce:
    """A form that costs something (an order, a unit) is carried out once per token it carries, even sent
    twice at the same moment (a double tap) or again after a lost answer: the first request claims the
    token in Redis (SET NX, atomic), records what it made, and every later one is sent to that. A refused
    attempt (or one cut short by an outage) gives the token back, so the same form can be sent again. A
    process killed between the work and ``made`` leaves the token claimed: a resend then goes to the home
    page, where the order or stamp (committed or not, never twice) is listed."""

    def __init__(self, request, kind: str):
        from django.core.cache import cache

        self.cache = cache
        token = (request.POST.get("token") or "")[:64]
        self.key = f"shop:once:{kind}:{request.shop_customer.pk}:{token}" if token else None

    def claim(self) -> tuple[bool, str | None]:
        """(claimed, what an earlier request with the token made, if it has finished)."""
        if self.key is None:
            return True, None
        if self.cache.add(self.key, "", timeout=FORM_ONCE_SECONDS):
            return True, None
        return False, self.cache.get(self.key) or None

    def made(self, object_id: str) -> None:
        if self.key is not None:
            self.cache.set(self.key, object_id, timeout=FORM_ONCE_SECONDS)

    def release(self) -> None:
        if self.key is not None:
            self.cache.delete(self.key)


MAX_UNITS = 20


def shop_enabled(request) -> bool:
    channel = getattr(request, "tenant", None)
    return bool(settings.SHOP_ENABLED and channel is not None and channel.code not in settings.SHOP_DISABLED_CHANNELS)


def storefront(view):
    """404 where the storefront is switched off; the signed-in customer (or ``None``) on the request."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not shop_enabled(request):
            raise Http404("no storefront on this channel")
        request.shop_customer = None
        customer_id = request.session.get(SESSION_KEY)
        if customer_id is not None:
            try:
                request.shop_customer = customer_get(customer_id=customer_id)
            except CustomerNotFound:
                request.session.pop(SESSION_KEY, None)
        return view(request, *args, **kwargs)

    return wrapped


def signed_in(view):
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if request.shop_customer is None:
            return HttpResponseRedirect(reverse("shop:home"))
        return view(request, *args, **kwargs)

    return wrapped


def _page(request, template: str, context: dict | None = None, *, status: int = 200):
    channel = request.tenant
    context = {
        "channel": channel,
        "customer": request.shop_customer,
        "incidents": open_incidents(),
        "pauses": brownout.pauses_for(channel.pk),
        **(context or {}),
    }
    return render(request, template, context, status=status)


def _problem(request, exc: ApplicationError) -> dict:
    """The refusal's problem body in the page's language, with the request id a person quotes."""
    from gateway.http.problems import localized, problem_body

    problem = localized(exc.as_problem(), exc)
    return {**problem, **problem_body(
        request=request, status=exc.http_status, code=exc.code, title=problem["title"], detail=problem["detail"]
    )}  # fmt: skip


def _refused(request, exc: ApplicationError, *, again: str | None = None):
    """A refusal as a page: the error's own title and what to do (in the page's language), a reference,
    and for a pause or an overload a page that tries again by itself."""
    problem = _problem(request, exc)
    retry_after = (getattr(exc, "headers", None) or {}).get("Retry-After")
    context = {"problem": problem, "retry_after": retry_after, "again": again if retry_after else None}
    response = _page(request, "shop/refused.html", context, status=exc.http_status)
    if retry_after:
        response["Retry-After"] = retry_after
    return response


# ---------------------------------------------------------------- signing in


class EmailForm(forms.Form):
    email = forms.EmailField(label=gettext_lazy("Your e-mail address"), max_length=254)


@storefront
@require_GET
def home(request):
    customer = request.shop_customer
    if customer is None:
        return _page(request, "shop/signin.html", {"form": EmailForm()})
    balance = quota.wallet_balance(channel_id=request.tenant.pk, customer_id=customer.pk)
    context = {
        "balance": balance,
        "orders": list(orders_for_listing(customer_id=customer.pk)[:5]),
        "stamps": list(stamp_jobs_for_listing(customer_id=customer.pk)[:20]),
        "buy_token": secrets.token_urlsafe(16),
        "unit_choices": (1, 2, 5, 10),
        "verify_base": settings.VERIFY_BASE_URL,
    }
    return _page(request, "shop/home.html", context)


@storefront
@require_POST
def request_link(request):
    form = EmailForm(request.POST)
    if not form.is_valid():
        return _page(request, "shop/signin.html", {"form": form}, status=400)
    email = signin.normalize_email(form.cleaned_data["email"])
    decision = check_login_attempt(
        realm=f"shop:{request.tenant.schema_name}", account=email, client=client_bucket(client_address(request))
    )
    if not decision.allowed:
        wait = math.ceil(decision.retry_after)
        response = _page(request, "shop/signin.html", {"form": form, "wait": wait}, status=429)
        response["Retry-After"] = str(wait)
        return response
    signin.send_link(
        channel=request.tenant,
        email=email,
        build_link=lambda token: base_url(request) + reverse("shop:signin", kwargs={"token": token}),
    )
    return _page(request, "shop/link_sent.html", {"email": email})


@storefront
@require_http_methods(["GET", "POST"])
def sign_in(request, token: str):
    """GET shows a button (a mail scanner that opens the link does not use it up); POST signs in."""
    if request.method == "GET":
        return _page(request, "shop/signin_confirm.html", {"token": token})
    pending = signin.peek(token)
    if pending is not None and signin.existing_customer(pending) is None:
        try:  # a new applicant waits while registrations are paused; the link stays usable
            refuse_if_paused(kind="registrations", channel=request.tenant)
            from stamping import admission

            admission.admit_lower(channel=request.tenant, kind="registrations")
        except ApplicationError as exc:
            return _refused(request, exc)
    email = signin.redeem(token)
    if email is None:
        return _page(request, "shop/signin.html", {"form": EmailForm(), "link_expired": True}, status=400)
    customer = signin.customer_for(email)
    request.session.cycle_key()
    request.session[SESSION_KEY] = customer.pk
    return HttpResponseRedirect(reverse("shop:home"), status=303)


@storefront
@require_POST
def sign_out(request):
    request.session.flush()
    return HttpResponseRedirect(reverse("shop:home"), status=303)


# ---------------------------------------------------------------- buying units


@storefront
@signed_in
@require_POST
def buy(request):
    try:
        quantity = int(request.POST.get("quantity", ""))
    except ValueError:
        quantity = 0
    if not 1 <= quantity <= MAX_UNITS:
        return HttpResponseRedirect(reverse("shop:home"))
    once = FormOnce(request, "order")
    claimed, earlier = once.claim()
    if not claimed:  # the same form sent again (double tap, retry): the same order
        target = reverse("shop:order", kwargs={"order_id": earlier}) if earlier else reverse("shop:home")
        return HttpResponseRedirect(target, status=303)
    try:
        from stamping import admission

        refuse_if_paused(kind="purchases", channel=request.tenant)
        admission.admit_lower(channel=request.tenant, kind="purchases")
        order = retail.create_order(channel=request.tenant, customer=request.shop_customer, quantity=quantity)
    except ApplicationError as exc:
        once.release()
        return _refused(request, exc, again=reverse("shop:home"))
    except BaseException:  # an outage page says "send it again": let the same form through then
        once.release()
        raise
    once.made(order.pk)
    return HttpResponseRedirect(reverse("shop:order", kwargs={"order_id": order.pk}), status=303)


@storefront
@signed_in
@require_GET
def order_page(request, order_id: str):
    try:
        order = order_get_for(customer=request.shop_customer, order_id=order_id)
    except OrderNotFound:
        raise Http404(order_id) from None
    pay_url = reverse("pay-checkout", kwargs={"provider": order.provider, "order_id": order.pk})
    return _page(request, "shop/order.html", {"order": order, "pay_url": pay_url, "refresh": 3})


# ---------------------------------------------------------------- stamping a document

# The CPNS preset: BKN's profile and a statement letter, the stamp at the foot of an A4 page on the right,
# where the applicant signs (points from the bottom-left corner).
PRESETS = {
    "cpns": {"profile": "cpns", "document_type": "surat-pernyataan", "box": (400.0, 90.0, 520.0, 210.0)},
    "custom": {"profile": "default", "document_type": "", "box": None},
}


class StampForm(forms.Form):
    # Not required: after "find an empty place" the PDF is kept (``preview``) and need not be chosen again.
    document = forms.FileField(label=gettext_lazy("Your PDF"), required=False)
    preview = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)
    preset = forms.ChoiceField(
        label=gettext_lazy("What is the document?"),
        choices=[
            ("cpns", gettext_lazy("CPNS application (BKN rules: A4, at most 800 KB)")),
            ("custom", gettext_lazy("Another document")),
        ],
        initial="cpns",
        widget=forms.RadioSelect,
    )
    page = forms.IntegerField(label=gettext_lazy("Page"), min_value=1, initial=1)
    llx = forms.FloatField(label=gettext_lazy("Left (pt)"), initial=400, required=False)
    lly = forms.FloatField(label=gettext_lazy("Bottom (pt)"), initial=90, required=False)
    urx = forms.FloatField(label=gettext_lazy("Right (pt)"), initial=520, required=False)
    ury = forms.FloatField(label=gettext_lazy("Top (pt)"), initial=210, required=False)
    password = forms.CharField(
        label=gettext_lazy("Document password (only if the PDF is protected)"),
        required=False,
        strip=False,
        max_length=128,
        widget=forms.PasswordInput,
    )

    def clean(self):
        data = super().clean()
        preset = PRESETS[data.get("preset") or "custom"]
        box = preset["box"]
        if box is None:  # another document: the box the applicant placed (or typed, without JavaScript)
            values = [data.get(k) for k in ("llx", "lly", "urx", "ury")]
            if any(v is None for v in values):
                raise forms.ValidationError(gettext_lazy("Give the stamp's four sides, or choose the CPNS preset."))
            box = tuple(values)
        data["box"] = box
        data["profile"] = preset["profile"]
        data["document_type"] = preset["document_type"]
        return data


def _admission_wait(request):
    """``None`` when the channel takes a new document now; else the waiting page (position and ETA from
    the admission queue), which comes back by itself after ``Retry-After``."""
    from stamping import admission

    try:
        refuse_if_paused(kind="stamping", channel=request.tenant)
        admission.admit(channel=request.tenant)
    except ApplicationError as exc:
        return _waiting(request, exc)
    return None


def _waiting(request, exc: ApplicationError):
    """The honest waiting page: why (the refusal's translated title and what to do), the applicant's place
    and ETA in the channel's queue (the admission queue's lane model), and a page that comes back by
    itself to the upload form after ``Retry-After``."""
    from stamping import admission

    if exc.http_status != 503:
        return _refused(request, exc)
    state = admission.queue_state(budget=request.tenant.stamping_concurrency)
    retry_after = (getattr(exc, "headers", None) or {}).get("Retry-After") or "10"
    context = {
        "problem": _problem(request, exc),
        "retry_after": retry_after,
        "queue_position": state.waiting + 1,
        "eta_seconds": state.eta_seconds(state.waiting),
        "again": reverse("shop:stamp"),
    }
    response = _page(request, "shop/waiting.html", context, status=503)
    response["Retry-After"] = retry_after
    return response


@storefront
@signed_in
@require_http_methods(["GET", "POST"])
def stamp(request):
    from stamping.services import StampRequest, request_stamp

    waiting = _admission_wait(request)
    if waiting is not None:
        return waiting
    form = StampForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and "suggest" in request.POST:
        return _suggestion_page(request, form)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        document = _chosen_document(request, form)
        if document is None:
            context = {"form": form, "token": secrets.token_urlsafe(16), "snap": SNAP_POINTS}
            return _page(request, "shop/stamp.html", context, status=400)
        content, file_name = document
        once = FormOnce(request, "stamp")
        claimed, earlier = once.claim()
        if not claimed:  # sent twice: one stamp, one unit
            target = reverse("shop:job", kwargs={"job_id": earlier}) if earlier else reverse("shop:home")
            return HttpResponseRedirect(target, status=303)
        try:
            job = request_stamp(
                channel=request.tenant,
                customer_id=request.shop_customer.pk,
                request=StampRequest(
                    data=content,
                    page=data["page"],
                    box=data["box"],
                    profile=data["profile"],
                    password=data["password"] or None,
                    file_name=file_name,
                    document_type=data["document_type"],
                ),
            )
        except ApplicationError as exc:
            once.release()
            if (getattr(exc, "headers", None) or {}).get("Retry-After"):
                return _waiting(request, exc)
            token = secrets.token_urlsafe(16)
            context = {"form": form, "problem": _problem(request, exc), "token": token, "snap": SNAP_POINTS}
            return _page(request, "shop/stamp.html", context, status=exc.http_status)
        except BaseException:  # (as in buy)
            once.release()
            raise
        once.made(job.pk)
        return HttpResponseRedirect(reverse("shop:job", kwargs={"job_id": job.pk}), status=303)
    status = 400 if request.method == "POST" else 200
    context = {"form": form, "token": secrets.token_urlsafe(16), "snap": SNAP_POINTS}
    return _page(request, "shop/stamp.html", context, status=status)


def _chosen_document(request, form) -> tuple[bytes, str] | None:
    """The PDF to stamp: the one sent with the form, else the one kept by "find an empty place"
    (``None``, with the form's error, when there is neither)."""
    upload = form.cleaned_data.get("document")
    if upload is not None:
        return upload.read(), (upload.name or "")[:255]
    kept = kept_preview(request, form.cleaned_data.get("preview") or "")
    if kept is None:
        form.add_error("document", _("Choose your PDF."))
        return None
    return kept["data"], kept["file_name"]


def _suggestion_page(request, form):
    """Without JavaScript, "find an empty place": the suggested place on the chosen page (the same
    dry run as the placement script's, :func:`suggest_place`), shown on the page and filled into the
    box form; the PDF is kept, so the applicant only has to press "stamp" (or change the box). Charged
    to the preview rate limit like the script's previews."""
    refused = _preview_rate_limit(request)
    if refused is not None:
        return refused
    form.is_valid()  # the box may still be empty: only the document, page and password matter here
    data = form.cleaned_data
    token = secrets.token_urlsafe(16)
    document = _chosen_document(request, form)
    if document is None:
        return _page(request, "shop/stamp.html", {"form": form, "token": token, "snap": SNAP_POINTS}, status=400)
    try:
        answer = suggest_place(
            data=document[0], page=data.get("page") or 1, password=data.get("password") or None,
            file_name=document[1], customer_id=request.shop_customer.pk,
        )  # fmt: skip
    except ApplicationError as exc:
        context = {"form": form, "problem": _problem(request, exc), "token": token, "snap": SNAP_POINTS}
        return _page(request, "shop/stamp.html", context, status=exc.http_status)
    llx, lly, urx, ury = (int(v) if v == int(v) else v for v in answer["suggested_box"])  # 464, not 464.0
    initial = {
        "preset": "custom", "page": answer["page"], "preview": answer["token"],
        "llx": llx, "lly": lly, "urx": urx, "ury": ury,
    }  # fmt: skip
    context = {
        "form": StampForm(initial=initial),
        "token": token,
        "snap": SNAP_POINTS,
        "suggestion": answer | {"file_name": document[1], "svg_y": round(answer["height"] - ury, 2),
                                "side_x": round(urx - llx, 2), "side_y": round(ury - lly, 2)},
    }  # fmt: skip
    return _page(request, "shop/stamp.html", context)


def _own_job(request, job_id: str):
    from stamping.errors import StampJobNotFound
    from stamping.selectors import stamp_job_get

    try:
        job = stamp_job_get(job_id=job_id)
    except StampJobNotFound:
        raise Http404(job_id) from None
    if job.customer_id != request.shop_customer.pk:
        raise Http404(job_id)
    return job


@storefront
@signed_in
@require_GET
def job_page(request, job_id: str):
    from stamping import admission
    from stamping.models import StampJob
    from stamping.selectors import jobs_ahead_of

    job = _own_job(request, job_id)
    context = {"job": job, "verify_base": settings.VERIFY_BASE_URL, "waiting": False}
    if job.status in (StampJob.Status.QUEUED, StampJob.Status.PROCESSING):
        ahead = jobs_ahead_of(job)
        state = admission.queue_state(budget=request.tenant.stamping_concurrency)
        context |= {"waiting": True, "queue_position": ahead + 1, "eta_seconds": state.eta_seconds(ahead)}
    if request.GET.get("partial"):
        return render(request, "shop/_job_live.html", context)
    return _page(request, "shop/job.html", context)


@storefront
@signed_in
@require_GET
def job_document(request, job_id: str):
    from django.http import HttpResponse
    from django.utils.http import content_disposition_header

    from stamping.models import StampJob
    from stamping.selectors import stamped_document

    job = _own_job(request, job_id)
    if job.status != StampJob.Status.STAMPED:
        return HttpResponseRedirect(reverse("shop:job", kwargs={"job_id": job.pk}))
    name = (job.file_name.rsplit(".", 1)[0] or job.id) + f"-{job.serial}.pdf"
    response = HttpResponse(stamped_document(job), content_type="application/pdf")
    response["Content-Disposition"] = content_disposition_header(as_attachment=True, filename=name)
    return response


# ---------------------------------------------------------------- the page preview for placement

PREVIEW_KEY = "shop:preview:{token}"
PREVIEW_SECONDS = 30 * 60
# A box dropped this close to the suggested empty place snaps to it (static/js/placement.js reads it
# from the page): points between the dropped box's centre and the suggestion's edges.
SNAP_POINTS = 40


def _preview_rate_limit(request):
    """``None`` when the applicant (and their address) may preview again; else the 429 with
    ``Retry-After``: ``application/problem+json`` for the script and the image, the friendly page for a
    browser that asked for a page."""
    from gateway.ratelimit import RateLimited, enforce_shop_preview_rate_limit

    try:
        enforce_shop_preview_rate_limit(request)
    except RateLimited as exc:
        if "text/html" in request.headers.get("Accept", ""):
            return _refused(request, exc, again=reverse("shop:stamp"))
        return _problem_json(request, exc)
    return None


def _problem_json(request, exc: ApplicationError):
    from django.http import JsonResponse

    from gateway.http.problems import PROBLEM_CONTENT_TYPE

    response = JsonResponse(_problem(request, exc), status=exc.http_status, content_type=PROBLEM_CONTENT_TYPE)
    for name, value in (getattr(exc, "headers", None) or {}).items():
        response[name] = value
    return response


def suggest_place(*, data: bytes, page: int, password: str | None, file_name: str, customer_id) -> dict:
    """The storefront API's dry run (``issuer.checks.preview_document``, what ``POST
    /api/v1/stamps/preview`` answers) for a placed box: the page's size, its rendering and the
    suggested empty place (what ``box=auto`` picks). The upload and the rendering are kept for
    :data:`PREVIEW_SECONDS`, for this applicant only, under a new token; refuses (an
    ``ApplicationError``) what a stamp request would refuse."""
    import base64

    from django.core.cache import cache

    from issuer.checks import preview_document

    answer = preview_document(data=data, page=page, profile=PRESETS["custom"]["profile"], password=password)
    size = answer["page_sizes"][page - 1]
    token = secrets.token_urlsafe(16)
    kept = {
        "customer": customer_id, "data": data, "file_name": file_name, "page": page,
        "png": base64.b64decode(answer["image"]["data"]),
    }  # fmt: skip
    cache.set(PREVIEW_KEY.format(token=token), kept, timeout=PREVIEW_SECONDS)
    return {
        "token": token,
        "pages": answer["pages"],
        "page": page,
        "width": size["width"],
        "height": size["height"],
        "image": reverse("shop:preview-page", kwargs={"token": token, "page": page}),
        "suggested_box": answer["suggested_box"],
        "suggested_box_covers_content": answer["suggested_box_covers_content"],
    }


def kept_preview(request, token: str) -> dict | None:
    """The document an applicant previewed (``None`` if it expired or is someone else's)."""
    from django.core.cache import cache

    kept = cache.get(PREVIEW_KEY.format(token=token)) if token else None
    if not isinstance(kept, dict) or kept.get("customer") != request.shop_customer.pk:
        return None
    return kept


@storefront
@signed_in
@require_POST
def preview(request):
    """``POST /shop/stamp/preview`` (``static/js/placement.js``): the chosen page, its size in points and
    the suggested empty place for the stamp (:func:`suggest_place`); the PDF is kept 30 minutes for
    the placement. Charged to the preview rate limit before the upload is read."""
    from django.http import JsonResponse

    refused = _preview_rate_limit(request)
    if refused is not None:
        return refused
    from gateway.http.problems import problem_response

    upload = request.FILES.get("document")
    if upload is None:
        return problem_response(
            request, status=400, code="validation_failed", title=_("The request has invalid fields"),
            detail=_("Choose your PDF first."),
        )  # fmt: skip
    try:
        page = max(1, int(request.POST.get("page") or 1))
    except ValueError:
        page = 1
    try:
        answer = suggest_place(
            data=upload.read(), page=page, password=request.POST.get("password") or None,
            file_name=(upload.name or "")[:255], customer_id=request.shop_customer.pk,
        )  # fmt: skip
    except ApplicationError as exc:
        return _problem_json(request, exc)
    return JsonResponse(answer)


@storefront
@signed_in
@require_GET
def preview_page(request, token: str, page: int):
    """The previewed page as a PNG (as the storefront API's preview renders it), for the applicant who
    uploaded it."""
    from django.http import HttpResponse

    refused = _preview_rate_limit(request)
    if refused is not None:
        return refused
    kept = kept_preview(request, token)
    if kept is None or kept["page"] != page:
        raise Http404(token)
    response = HttpResponse(kept["png"], content_type="image/png")
    response["Cache-Control"] = "private, max-age=1800"
    return response
