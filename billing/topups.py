"""Stock top-ups asked for from a channel's portal.

A channel's finance member requests N units, naming the bank transfer that pays their stamp duty and
uploading its proof (:func:`request_topup`). Issuer staff see the request on the deposits page:
one person records it as a :class:`~billing.ledger.models.Deposit` (:func:`record_topup`), another
confirms that deposit as any other (``billing.deposits.confirm_deposit``: maker-checker, the units
are allocated once). The confirmation marks the request confirmed and sends the channel a
``stock.credited`` webhook, in its own transaction.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction

from billing.deposits import create_deposit
from billing.ledger.models import TopUpRequest
from kernel.errors import ApplicationError
from staff.audit import record

MAX_PROOF_BYTES = 900 * 1024  # a portal request carries at most REQUEST_MAX_BYTES (1 MB) in all
MAX_UNITS = 10_000_000
# Accepted proofs, recognised by their first bytes (not by what the browser says they are).
_SIGNATURES = {b"%PDF-": "application/pdf", b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg"}


class TopUpRefused(ApplicationError):
    code = "topup_refused"
    http_status = 400
    title = "The top-up request is refused"
    what_to_do = (
        "Ask for a whole number of units (at least 1), name the bank transfer's reference, and attach its "
        "proof as a PDF, PNG or JPEG of at most 900 KB. A reference is used for one request only."
    )


def proof_type(data: bytes) -> str | None:
    return next((kind for signature, kind in _SIGNATURES.items() if data.startswith(signature)), None)


def request_topup(
    *, channel, units: int, transfer_reference: str, proof_name: str, proof: bytes, requested_by: str
) -> TopUpRequest:
    """Record a channel's request. The same reference with the same units again returns the first
    request (a double submit asks once)."""
    reference = transfer_reference.strip()
    if not 0 < units <= MAX_UNITS:
        raise TopUpRefused(f"Ask for between 1 and {MAX_UNITS:,} units.")
    if not reference:
        raise TopUpRefused("Name the bank transfer's reference.")
    if len(proof) > MAX_PROOF_BYTES:
        raise TopUpRefused("The proof is larger than 900 KB.")
    kind = proof_type(proof)
    if kind is None:
        raise TopUpRefused("The proof is not a PDF, PNG or JPEG file.")
    try:
        with transaction.atomic():
            request = TopUpRequest.objects.create(
                channel=channel, units=units, transfer_reference=reference, proof_name=proof_name[:200],
                proof_type=kind, proof=proof, requested_by=requested_by[:200],
            )  # fmt: skip
            record(requested_by, "topup.requested", request, channel=channel.code, units=units, reference=reference)
            return request
    except IntegrityError:
        existing = TopUpRequest.objects.get(channel=channel, transfer_reference=reference)
        if existing.units != units:
            raise TopUpRefused(f"The reference {reference!r} is already used by another request.") from None
        return existing


@transaction.atomic
def record_topup(*, request_id: int, recorded_by: Any) -> TopUpRequest:
    """The maker's step: turn the request into a pending deposit (permission and audit as any deposit)."""
    request = TopUpRequest.objects.select_for_update().select_related("channel").get(pk=request_id)
    if request.state != TopUpRequest.State.REQUESTED:
        return request
    deposit = create_deposit(
        channel=request.channel,
        units=request.units,
        reference=f"topup-{request.pk}-{request.transfer_reference}"[:100],
        recorded_by=recorded_by,
    )
    request.deposit = deposit
    request.state = TopUpRequest.State.RECORDED
    request.save(update_fields=["deposit", "state"])
    return request


def topups_for_channel(*, channel, limit: int = 50) -> list[TopUpRequest]:
    return list(TopUpRequest.objects.filter(channel=channel).defer("proof").select_related("deposit")[:limit])


def open_topups() -> list[TopUpRequest]:
    """Requests the issuer has not confirmed yet (the deposits page lists them)."""
    states = (TopUpRequest.State.REQUESTED, TopUpRequest.State.RECORDED)
    return list(TopUpRequest.objects.filter(state__in=states).defer("proof").select_related("channel", "deposit"))
