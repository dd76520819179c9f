"""Top-up requests from channels on the back office's deposits page: the proof, and the maker's step
(recording the request as a pending deposit; another person confirms it as any deposit)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from billing.ledger.models import TopUpRequest
from billing.topups import record_topup
from faces.backoffice.views import staff_required
from faces.wording import error_text
from kernel.errors import ApplicationError

_EXTENSIONS = {"application/pdf": "pdf", "image/png": "png", "image/jpeg": "jpg"}


@staff_required
@require_POST
def topup_record(request, request_id: int):
    get_object_or_404(TopUpRequest, pk=request_id)
    try:
        topup = record_topup(request_id=request_id, recorded_by=request.user)
    except ApplicationError as exc:
        messages.error(request, error_text(exc))
    else:
        messages.success(
            request,
            _("Top-up request %(id)s recorded as deposit %(reference)s; another person confirms it.")
            % {"id": topup.pk, "reference": topup.deposit.reference},
        )
    return redirect("backoffice:deposits")


@staff_required
@require_GET
def topup_proof(request, request_id: int):
    topup = get_object_or_404(TopUpRequest, pk=request_id)
    response = HttpResponse(bytes(topup.proof), content_type=topup.proof_type)
    name = f"topup-{topup.pk}-proof.{_EXTENSIONS.get(topup.proof_type, 'bin')}"
    response["Content-Disposition"] = content_disposition_header(as_attachment=True, filename=name)
    response["X-Content-Type-Options"] = "nosniff"
    return response
