from __future__ import annotations

import secrets

from django.db import models
from django.utils import timezone


def new_job_id() -> str:
    return f"stp_{secrets.token_hex(10)}"


def new_batch_id() -> str:
    return f"bat_{secrets.token_hex(10)}"


class Batch(models.Model):
    id = models.CharField(max_length=32, primary_key=True, default=new_batch_id)
    customer = models.ForeignKey("portal.Customer", on_delete=models.PROTECT, related_name="batches")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return self.id


class StampJob(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        PROCESSING = "processing"
        STAMPED = "stamped"
        FAILED = "failed"

    class Unit(models.TextChoices):
        """What happened to the customer's unit: held while in flight, then committed or released."""

        HELD = "held"
        COMMITTED = "committed"
        RELEASED = "released"

    id = models.CharField(max_length=32, primary_key=True, default=new_job_id)
    # (no index of its own: the (customer, -created_at) index below serves every lookup by customer)
    customer = models.ForeignKey("portal.Customer", on_delete=models.PROTECT, related_name="stamp_jobs", db_index=False)
    batch = models.ForeignKey(Batch, null=True, blank=True, on_delete=models.PROTECT, related_name="jobs")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    unit = models.CharField(max_length=16, choices=Unit.choices, default=Unit.HELD)
    hold_id = models.CharField(max_length=200, unique=True)
    file_name = models.CharField(max_length=255, blank=True)
    sha256_in = models.CharField(max_length=64)
    pages = models.PositiveIntegerField()
    page = models.PositiveIntegerField()
    llx = models.FloatField()
    lly = models.FloatField()
    urx = models.FloatField()
    ury = models.FloatField()
    profile = models.CharField(max_length=32, default="default")
    document_type = models.CharField(max_length=32, blank=True)
    document_number = models.CharField(max_length=100, blank=True)
    document_date = models.DateField(null=True, blank=True)
    reason = models.CharField(max_length=200, blank=True)
    location = models.CharField(max_length=100, blank=True)
    serial = models.CharField(max_length=22, blank=True)  # looked up on the issuer's side, never here
    sha256_out = models.CharField(max_length=64, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    error_detail = models.CharField(max_length=500, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    # Lane bookkeeping: a queued job is not claimed before ``available_at`` (retry backoff); a
    # processing job whose ``claimed_at`` is older than the lease is taken back by the sweeper.
    available_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at",)
        indexes = [
            models.Index(fields=["customer", "-created_at"]),
            models.Index(fields=["status", "created_at"]),
            # the lane's queue: oldest claimable job first
            models.Index(fields=["created_at"], name="stampjob_queued", condition=models.Q(status="queued")),
        ]
        constraints = [
            # never both, never neither: a finished job has its unit resolved, an open one holds it
            models.CheckConstraint(
                name="stamp_job_unit_matches_status",
                condition=(
                    models.Q(status="stamped", unit="committed")
                    | models.Q(status="failed", unit="released")
                    | models.Q(status__in=["queued", "processing"], unit="held")
                ),
            ),
        ]

    def __str__(self) -> str:
        return self.id

    @property
    def issued_serial(self) -> str:
        """The serial as channels and people see it: only once the stamp is recorded. A queued compat job
        already carries the serial reserved for it (stamping.reservations), which verifies nothing yet."""
        return self.serial if self.status == self.Status.STAMPED else ""


class JobDocument(models.Model):
    """The uploaded document of a job, kept apart so lists never load it. The stamped document is
    the issuer's (``issuer.StampedDocument``), recorded with the serial."""

    job = models.OneToOneField(StampJob, primary_key=True, on_delete=models.CASCADE, related_name="document")
    original = models.BinaryField()
    sealed_password = models.BinaryField(null=True)  # encrypted at rest; wiped when the job ends
    # The intake's inspection of ``original``, sealed (``issuer.facts``): the stamp does not parse
    # the document again. None: the issuer rewrites the document before stamping it (or an older intake).
    facts = models.TextField(null=True)

    def __str__(self) -> str:
        return f"document of {self.job_id}"


def new_reservation_id() -> str:
    return f"rsv_{secrets.token_hex(10)}"


class SerialReservation(models.Model):
    """A serial reserved for a later stamp, with one unit of the customer's wallet held until
    ``expires_at`` (the compat facade's ``stampv2``; ``stamping.reservations``). It is stamped by a
    job (``job``, the latest one); a hold never stamped is voided by the ledger's sweeper."""

    id = models.CharField(max_length=32, primary_key=True, default=new_reservation_id)
    serial = models.CharField(max_length=22, unique=True)
    customer = models.ForeignKey("portal.Customer", on_delete=models.PROTECT, related_name="serial_reservations")
    hold_id = models.CharField(max_length=200, unique=True)  # the current hold: the first, or a retry's
    holds = models.PositiveSmallIntegerField(default=1)
    job = models.OneToOneField(
        StampJob, null=True, blank=True, on_delete=models.PROTECT, related_name="reservation"
    )
    document_type = models.CharField(max_length=32, blank=True)
    document_number = models.CharField(max_length=100, blank=True)
    document_date = models.DateField(null=True, blank=True)
    file_name = models.CharField(max_length=255, blank=True)
    reference = models.CharField(max_length=64, blank=True, db_index=True)  # the caller's grouping (a batch)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()

    class Meta:
        ordering = ("-created_at",)
        indexes = [models.Index(fields=["customer", "expires_at"])]

    def __str__(self) -> str:
        return self.serial
