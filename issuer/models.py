"""The issuer's registry (public schema): stamp profiles, document types, serials, stamped files.

A serial exists in the registry only once a stamp carrying it was signed: it is minted in
memory, signed into the document, and recorded (``used``) in the same transaction that stores the
stamped file.  A serial whose stamp failed after signing started is recorded ``void`` for audit;
it was never handed out.
"""

from __future__ import annotations

import hashlib

from django.db import models
from django.db.models import Q

from issuer.pdf import NO_CHANGES, NOT_CERTIFIED, ProfileRules
from issuer.serials import SERIAL_LENGTH

SERIAL_FORMAT = rf"^[0-9A-Z]{{{SERIAL_LENGTH}}}$"
SHA256_FORMAT = r"^[0-9a-f]{64}$"


class StampProfile(models.Model):
    """Document rules an agency sets (BKN's ``cpns``, the permissive ``default``, ...).

    Profiles are data: the issuer adds one without a release.  ``page_width``/``page_height`` are
    in points and compared in either orientation within ``page_size_tolerance``; both empty means
    any page size.
    """

    name = models.SlugField(max_length=40, unique=True)
    description = models.CharField(max_length=200, blank=True)
    max_bytes = models.PositiveIntegerField()
    page_width = models.FloatField(null=True, blank=True)
    page_height = models.FloatField(null=True, blank=True)
    page_size_tolerance = models.FloatField(default=3.0)
    min_pdf_version = models.CharField(max_length=3, blank=True, help_text='e.g. "1.6"; empty for any version')
    max_pages = models.PositiveIntegerField(default=2000)
    min_stamp_size = models.FloatField(default=20.0)
    max_stamp_size = models.FloatField(default=300.0)
    certification = models.CharField(
        max_length=16,
        choices=[
            (NOT_CERTIFIED, "Not certified: later e-Meterai and signatures stay possible"),
            (NO_CHANGES, "Final: certified, no changes allowed (stamp last)"),
        ],
        default=NOT_CERTIFIED,
        help_text="How the stamp signs: an approval signature, or a certification that allows no later change.",
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("name",)
        constraints = [
            models.CheckConstraint(
                condition=Q(page_width__isnull=True, page_height__isnull=True) | Q(page_width__gt=0, page_height__gt=0),
                name="stampprofile_page_size_both_or_none",
            ),
            models.CheckConstraint(condition=Q(max_bytes__gt=0), name="stampprofile_max_bytes_positive"),
            models.CheckConstraint(
                condition=Q(min_stamp_size__gt=0, max_stamp_size__gte=models.F("min_stamp_size")),
                name="stampprofile_stamp_size_range",
            ),
            models.CheckConstraint(
                condition=Q(min_pdf_version="") | Q(min_pdf_version__regex=r"^[12]\.[0-9]$"),
                name="stampprofile_min_pdf_version_format",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def to_rules(self) -> ProfileRules:
        page_size = None
        if self.page_width is not None and self.page_height is not None:
            page_size = (float(self.page_width), float(self.page_height))
        return ProfileRules(
            name=self.name,
            max_bytes=self.max_bytes,
            page_size=page_size,
            page_size_tolerance=float(self.page_size_tolerance),
            min_pdf_version=self.min_pdf_version or None,
            max_pages=self.max_pages,
            min_stamp_size=float(self.min_stamp_size),
            max_stamp_size=float(self.max_stamp_size),
            certification=self.certification,
        )


class DocumentType(models.Model):
    """The kinds of document a stamp may be put on (the legacy API's ``jenisdoc``)."""

    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=120)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name


class Serial(models.Model):
    """One e-Meterai serial and the stamp that carries it."""

    class Status(models.TextChoices):
        USED = "used", "Used"
        VOID = "void", "Void"

    serial = models.CharField(max_length=SERIAL_LENGTH, unique=True)
    # No index of its own: ``serial_channel_created`` (channel, -created_at) leads with it (every stamp
    # inserts a row; each index is write cost).
    channel = models.ForeignKey("tenants.Channel", on_delete=models.PROTECT, related_name="serials", db_index=False)
    status = models.CharField(max_length=8, choices=Status.choices)
    profile = models.CharField(max_length=40)
    document_sha256 = models.CharField(max_length=64)
    stamped_sha256 = models.CharField(max_length=64, blank=True)
    stamped_size = models.PositiveBigIntegerField(null=True, blank=True)
    page = models.PositiveIntegerField()
    page_count = models.PositiveIntegerField()
    box_llx = models.FloatField()
    box_lly = models.FloatField()
    box_urx = models.FloatField()
    box_ury = models.FloatField()
    certification = models.BooleanField(default=False)
    upgraded_to = models.CharField(max_length=3, blank=True)
    # the upload's cross-reference table was rebuilt before stamping (issuer.pdf.prepare)
    repaired = models.BooleanField(default=False)
    document_type = models.ForeignKey(DocumentType, null=True, blank=True, on_delete=models.PROTECT)
    document_number = models.CharField(max_length=100, blank=True)
    document_date = models.DateField(null=True, blank=True)
    # the caller's idempotency key for the stamp (unique per channel among used serials)
    job_ref = models.CharField(max_length=200, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    used_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)
    void_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = [models.Index(fields=["channel", "-created_at"], name="serial_channel_created")]
        constraints = [
            models.CheckConstraint(condition=Q(serial__regex=SERIAL_FORMAT), name="serial_format"),
            # one used serial per job: a job may have void attempts, never two used stamps
            models.UniqueConstraint(
                fields=["channel", "job_ref"], condition=Q(status="used"), name="serial_one_used_per_job"
            ),
            models.CheckConstraint(
                condition=Q(
                    status="used",
                    used_at__isnull=False,
                    voided_at__isnull=True,
                    stamped_sha256__regex=SHA256_FORMAT,
                    stamped_size__isnull=False,
                )
                | Q(status="void", voided_at__isnull=False),
                name="serial_status_consistent",
            ),
            models.CheckConstraint(condition=Q(document_sha256__regex=SHA256_FORMAT), name="serial_document_sha256"),
            models.CheckConstraint(
                condition=Q(box_urx__gt=models.F("box_llx"), box_ury__gt=models.F("box_lly")),
                name="serial_box_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.serial} ({self.status})"

    @property
    def box(self) -> tuple[float, float, float, float]:
        return (self.box_llx, self.box_lly, self.box_urx, self.box_ury)


class StampedDocument(models.Model):
    """The stamped PDF of a used serial, so a retried job returns the same document.

    Kept in the database, not under MEDIA_ROOT, so it commits (or rolls back) with the serial:
    there is never a used serial without its file, nor an orphan file.

    A stamp is an incremental update: the stamped file is the upload, byte for byte, followed by what
    the stamp appends (a few KB). When the caller keeps the upload for as long as this document
    (``stamp_document(base_kept=True)``: a channel's stamp job), ``pdf`` holds only those appended
    bytes and ``base_size`` is the upload's length; whoever reads the document passes the upload back
    (``issuer.selectors.stamped_pdf``). An 800 KB scan then costs a few KB here, not a second copy
    through PostgreSQL's WAL. ``base_size`` 0: ``pdf`` is the whole file (the upload was rewritten, a
    repaired cross-reference table, or its caller does not keep it). ``sha256`` and ``size`` are
    always the whole stamped file's.
    """

    serial = models.OneToOneField(Serial, on_delete=models.CASCADE, primary_key=True, related_name="stamped")
    pdf = models.BinaryField()
    sha256 = models.CharField(max_length=64)
    size = models.PositiveBigIntegerField()
    # db_default: a process of the release before this field, still running during a deploy, inserts
    # without it (a whole file, which 0 says).
    base_size = models.PositiveBigIntegerField(default=0, db_default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"stamped {self.serial_id}"

    def whole(self, base: bytes | None) -> bytes | None:
        """The whole stamped file, ``base`` (the upload) first when only what the stamp appended is
        stored; None when that needs a base and ``base`` is not the one it was stamped on (gone, or
        other bytes: the result would not hash to ``sha256``)."""
        if not self.base_size:
            return bytes(self.pdf)
        if base is None or len(base) != self.base_size:
            return None
        document = base + bytes(self.pdf)
        return document if hashlib.sha256(document).hexdigest() == self.sha256 else None


class IncidentNote(models.Model):
    """A note on the public status page about a problem users may meet (written in the back office)."""

    class Severity(models.TextChoices):
        INFO = "info", "Information"
        MINOR = "minor", "Degraded service"
        MAJOR = "major", "Outage"

    title = models.CharField(max_length=200)
    body = models.TextField(blank=True, help_text="What users see and what they should do; plain text.")
    severity = models.CharField(max_length=8, choices=Severity.choices, default=Severity.MINOR)
    started_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-started_at", "-id")
        constraints = [
            models.CheckConstraint(
                condition=Q(resolved_at__isnull=True) | Q(resolved_at__gte=models.F("started_at")),
                name="incidentnote_resolved_after_start",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None
