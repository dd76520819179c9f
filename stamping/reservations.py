"""Serial reservations: a serial handed out before the stamp, its unit held, not spent.

The issuer's own API spends a unit when a serial is generated (``stampv2``) and stamps later
(``docSigningZ``); when the stamp failed or timed out the unit was gone (2022, 2024). Here:

1. ``reserve_serial`` holds one unit of the customer's wallet (``quota.hold_quota``, with the
   reservation's own timeout) and reserves a fresh serial for it, in one transaction;
2. ``stamp_reserved`` queues an ordinary stamping job (``services.request_stamp``) that uses the
   reservation's hold and stamps with the reserved serial: the hold is committed inside the issuer's
   recording transaction, as for every job. A retry while that job is queued, running or stamped gets
   the same job (and so the same document), never a second unit. A job that failed has released its
   unit; a retry holds one again (until the reservation's expiry) and queues a new job;
3. a reservation never stamped keeps its hold until it times out; the ledger's sweeper voids it
   (``billing.sweep_expired_pending``) and the unit is back in the wallet.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from billing import quota
from billing.ledger.errors import LedgerError
from issuer.serials import new_serial, normalize_serial
from kernel.errors import ApplicationError
from stamping.errors import InsufficientQuota
from stamping.models import SerialReservation, StampJob, new_reservation_id
from stamping.services import StampRequest, request_stamp
from tenants.customers.services import customer_get


class ReservationNotFound(ApplicationError):
    code = "reservation_not_found"
    http_status = 404
    title = "No such reserved serial"
    what_to_do = "No serial of that number was reserved in this channel; reserve one first (`stampv2`)."


class ReservationExpired(ApplicationError):
    code = "reservation_expired"
    http_status = 410
    title = "The reserved serial expired"
    what_to_do = "The serial was never stamped and its hold expired (the unit is back); reserve a new serial."


def _hold_id(channel, reservation_id: str, number: int) -> str:
    base = f"reserve:{channel.pk}:{reservation_id}"
    return base if number == 1 else f"{base}:{number}"


def _hold(channel, customer_id: int, hold_id: str, timeout: timedelta) -> None:
    try:
        quota.hold_quota(channel_id=channel.pk, customer_id=customer_id, hold_id=hold_id, timeout=timeout)
    except LedgerError as exc:
        if exc.code != "insufficient_balance":
            raise
        raise InsufficientQuota(
            "There is no e-Meterai quota left to reserve a serial. Buy quota and try again."
        ) from None


@transaction.atomic
def reserve_serial(
    *,
    channel,
    customer_id: int,
    timeout: timedelta,
    document_type: str = "",
    document_number: str = "",
    document_date=None,
    file_name: str = "",
    reference: str = "",
) -> SerialReservation:
    """Hold one unit for ``timeout`` and reserve a new serial for it (both, or neither)."""
    customer = customer_get(customer_id=customer_id)
    reservation_id = new_reservation_id()
    hold_id = _hold_id(channel, reservation_id, 1)
    _hold(channel, customer.pk, hold_id, timeout)
    return SerialReservation.objects.create(
        id=reservation_id,
        serial=new_serial(),
        customer=customer,
        hold_id=hold_id,
        document_type=document_type,
        document_number=document_number[:100],
        document_date=document_date,
        file_name=file_name[:255],
        reference=reference,
        expires_at=timezone.now() + timeout,
    )


@dataclasses.dataclass(frozen=True)
class SerialSpec:
    """What a reservation records about the document it is for."""

    document_type: str = ""
    document_number: str = ""
    document_date: object = None
    file_name: str = ""


@transaction.atomic
def reserve_serials(
    *, channel, customer_id: int, timeout: timedelta, specs: list[SerialSpec], reference: str
) -> list[SerialReservation]:
    """A serial and a held unit for every spec, or none (too little quota refuses the whole batch)."""
    return [
        reserve_serial(
            channel=channel,
            customer_id=customer_id,
            timeout=timeout,
            document_type=spec.document_type,
            document_number=spec.document_number,
            document_date=spec.document_date,
            file_name=spec.file_name,
            reference=reference,
        )
        for spec in specs
    ]


def reservations_for(*, reference: str, customer_id: int) -> list[SerialReservation]:
    """A batch's reservations (by the caller's ``reference``), in the order they were made."""
    return list(
        SerialReservation.objects.select_related("job")
        .filter(reference=reference, customer_id=customer_id)
        .order_by("created_at", "id")
    )


def reservation_get(*, serial: str, customer_id: int | None = None) -> SerialReservation:
    """The reservation of ``serial`` (of ``customer_id`` when given), with its latest job."""
    found = SerialReservation.objects.select_related("job").filter(serial=normalize_serial(serial or ""))
    if customer_id is not None:
        found = found.filter(customer_id=customer_id)
    reservation = found.first()
    if reservation is None:
        raise ReservationNotFound(f"No reserved serial {serial!r} in this channel.")
    return reservation


def stamp_reserved(*, channel, serial: str, customer_id: int, request: StampRequest) -> StampJob:
    """Queue the stamp of a reserved serial, or return the job already doing it (or done).

    The document, page and box are ``request``'s; document type, number and date are the
    reservation's (as given to ``stampv2``)."""
    with transaction.atomic():
        found = reservation_get(serial=serial, customer_id=customer_id)
        reservation = SerialReservation.objects.select_for_update().get(pk=found.pk)
        job = StampJob.objects.filter(pk=reservation.job_id).first() if reservation.job_id else None
        if job is not None and job.status != StampJob.Status.FAILED:
            return job  # queued, running or stamped: a retry is the same stamp
        now = timezone.now()
        if reservation.expires_at <= now:
            raise ReservationExpired(
                f"The serial {reservation.serial} was reserved until {reservation.expires_at:%Y-%m-%d %H:%M} UTC "
                "and never stamped; its unit is back in the balance. Reserve a new serial."
            )
        hold_id = reservation.hold_id
        if job is not None:  # the last attempt failed and gave its unit back: hold one again
            reservation.holds += 1
            hold_id = _hold_id(channel, reservation.pk, reservation.holds)
            _hold(channel, reservation.customer_id, hold_id, reservation.expires_at - now)
        job = request_stamp(
            channel=channel,
            customer_id=reservation.customer_id,
            request=dataclasses.replace(
                request,
                document_type=reservation.document_type,
                document_number=reservation.document_number,
                document_date=reservation.document_date,
                file_name=request.file_name or reservation.file_name,
            ),
            hold_id=hold_id,
            serial=reservation.serial,
        )
        reservation.job = job
        reservation.hold_id = hold_id
        reservation.save(update_fields=["job", "hold_id", "holds"])
    return job


def open_reservations(*, customer_id: int) -> int:
    """Serials of the customer reserved, not expired and not stamped (``notstamp``)."""
    return (
        SerialReservation.objects.filter(customer_id=customer_id, expires_at__gt=timezone.now())
        .exclude(job__status=StampJob.Status.STAMPED)
        .count()
    )
