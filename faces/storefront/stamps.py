"""Storefront stamping endpoints: ``/stamps``, ``/batches``, ``/document-types``, ``/balance``."""

from __future__ import annotations

from django.http import HttpResponse
from django.utils.http import content_disposition_header
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from billing.ledger import services as ledger
from faces.storefront.listing import list_filters, list_parameters, newest_first_page
from faces.storefront.stamp_input import FiniteFloatField, PlacementInput, StampInput, validate_stamp_input
from faces.storefront.views import ChannelApiView
from gateway.http.edge import json_response
from gateway.http.parsers import SingleUploadParser
from gateway.http.schema import problems
from issuer.checks import preview_document
from kernel import metrics
from kernel.timestamps import utc_timestamp
from stamping import admission
from stamping.errors import DocumentNotReady
from stamping.models import StampJob
from stamping.selectors import batch_get, jobs_ahead_of, stamp_job_get, stamp_jobs_for_listing, stamped_document
from stamping.services import StampRequest, request_batch, request_stamp
from tenants.customers.services import customer_get

MAX_BATCH_DOCUMENTS = 50
PAGE_SIZE = 50


# --------------------------------------------------------------------------- documentation only

DOCUMENT_CHECKS = (
    "customer_not_found",
    "unknown_profile",
    "not_a_pdf",
    "document_unreadable",
    "document_encrypted",
    "wrong_password",
    "encryption_not_supported",
    "document_too_large",
    "too_many_pages",
    "page_size_not_allowed",
    "pdf_version_too_old",
    "document_already_final",
    "document_certified",
    "page_out_of_range",
    "invalid_stamp_box",
    "stamp_out_of_bounds",
    "stamp_overlaps_signature",
    "insufficient_quota",
    "overloaded",
    "stamping_paused",
)


class QueueDoc(serializers.Serializer):
    position = serializers.IntegerField(
        help_text="1 = next to be stamped: one more than the channel's jobs queued or being stamped ahead of it."
    )
    eta_seconds = serializers.IntegerField(
        help_text="Seconds until it is stamped (at least 1), from the lane model: the workers, the channels "
        "sharing them and the measured time per stamp (docs/stamping.md)."
    )
    eta_ms = serializers.IntegerField(help_text="The same ETA in milliseconds.")


class StampErrorDoc(serializers.Serializer):
    code = serializers.CharField(help_text="Why the stamp failed (a code from the error catalogue).")
    detail = serializers.CharField()


class StampJobDoc(serializers.Serializer):
    id = serializers.CharField(help_text="`stp_...`")
    customer = serializers.IntegerField()
    batch = serializers.CharField(allow_null=True)
    status = serializers.ChoiceField(choices=StampJob.Status.values)
    unit = serializers.ChoiceField(
        choices=StampJob.Unit.values, help_text="The customer's unit: held while in flight, then committed or released."
    )
    serial = serializers.CharField(allow_null=True, help_text="The e-Meterai serial, once stamped.")
    file_name = serializers.CharField(allow_blank=True)
    sha256 = serializers.CharField(help_text="SHA-256 of the uploaded document.")
    pages = serializers.IntegerField()
    page = serializers.IntegerField()
    box = serializers.ListField(
        child=serializers.FloatField(), min_length=4, max_length=4, help_text="llx, lly, urx, ury"
    )
    profile = serializers.CharField()
    document_type = serializers.CharField(allow_null=True)
    document_number = serializers.CharField(allow_null=True)
    document_date = serializers.DateField(allow_null=True)
    error = StampErrorDoc(allow_null=True)
    attempts = serializers.IntegerField()
    created_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    document_url = serializers.CharField(allow_null=True, help_text="Where to download the stamped PDF, once stamped.")
    queue = QueueDoc(required=False, help_text="While queued: the position and an honest ETA.")
    repaired = serializers.BooleanField(
        required=False,
        help_text="On the answer to the request, when true: the PDF's damaged cross-reference table is rebuilt "
        "before stamping (unsigned files only; a damaged signed file is refused).",
    )
    covers_content = serializers.BooleanField(
        required=False,
        help_text="With `box=auto`, on the answer to the request: whether the chosen box still covers something "
        "drawn on the page (only when the page has no empty place of the stamp's size).",
    )


class StampListDoc(serializers.Serializer):
    results = StampJobDoc(many=True)
    next_cursor = serializers.CharField(
        allow_null=True, help_text="Pass as `cursor` for the next page; null at the end."
    )


class BatchAcceptedDoc(serializers.Serializer):
    id = serializers.CharField(help_text="`bat_...`")
    documents = serializers.IntegerField()
    jobs = StampJobDoc(many=True)


class BatchCountsDoc(serializers.Serializer):
    queued = serializers.IntegerField()
    processing = serializers.IntegerField()
    stamped = serializers.IntegerField()
    failed = serializers.IntegerField()


class BatchDoc(serializers.Serializer):
    id = serializers.CharField()
    customer = serializers.IntegerField()
    total = serializers.IntegerField()
    counts = BatchCountsDoc()
    progress = serializers.FloatField(help_text="Finished (stamped or failed) / total, 0..1.")
    finished = serializers.BooleanField()
    jobs = StampJobDoc(many=True)


class DocumentTypeDoc(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()


class ProfileDoc(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    max_bytes = serializers.IntegerField()


class CatalogueDoc(serializers.Serializer):
    document_types = DocumentTypeDoc(many=True)
    profiles = ProfileDoc(many=True)


class BalanceDoc(serializers.Serializer):
    channel = serializers.CharField()
    allocated = serializers.IntegerField(help_text="Every unit ever allocated: available + reserved_for_orders + sold.")
    available = serializers.IntegerField()
    reserved_for_orders = serializers.IntegerField()
    sold = serializers.IntegerField(
        help_text="Sold to customers and not refunded: in_wallets + held_for_stamps + used."
    )
    in_wallets = serializers.IntegerField(help_text="In customers' wallets, free for them to use.")
    held_for_stamps = serializers.IntegerField()
    used = serializers.IntegerField()
    refunded = serializers.IntegerField(help_text="Units ever refunded from wallets back to the channel's stock.")
    low_stock_threshold = serializers.IntegerField()
    low_stock = serializers.BooleanField()


JOB_ID = OpenApiParameter("job_id", OpenApiTypes.STR, OpenApiParameter.PATH, description="The stamp's id (`stp_...`).")
LOCATION = OpenApiParameter(
    "Location", OpenApiTypes.STR, OpenApiParameter.HEADER, response=[202], description="Where to poll."
)
ASYNC = (
    "Checks the document exactly as the issuer will (a bad one is refused here, nothing held), holds one unit of "
    "the customer's quota and answers `202` with the job (`Location` says where to poll). A worker stamps it; "
    "poll `GET /api/v1/stamps/{id}` or subscribe to the `stamp.completed` / `stamp.failed` webhooks. A failed "
    "stamp gives the unit back. `503 overloaded` (with `Retry-After`) when the channel's backlog is full."
)


def _request_from(data: dict, upload) -> StampRequest:
    return StampRequest(
        data=upload.read(),
        page=data["page"],
        box=None if data.get("box") == "auto" else (data["llx"], data["lly"], data["urx"], data["ury"]),
        profile=data["profile"],
        password=data["password"] or None,
        file_name=getattr(upload, "name", "") or "",
        document_type=data["document_type"],
        document_number=data["document_number"],
        document_date=data["document_date"],
        reason=data["reason"],
        location=data["location"],
    )


def job_output(
    job: StampJob, *, position: int | None = None, queue: admission.QueueState | None = None, budget: int | None = None
) -> dict:
    """The job as the API shows it; with ``position`` (jobs of its lane ahead of it, 0: none), its place
    in the queue and the ETA the lane model gives that place (``queue``, or read now)."""
    body = {
        "id": job.id,
        "customer": job.customer_id,
        "batch": job.batch_id,
        "status": job.status,
        "unit": job.unit,
        "serial": job.issued_serial or None,
        "file_name": job.file_name,
        "sha256": job.sha256_in,
        "pages": job.pages,
        "page": job.page,
        "box": [job.llx, job.lly, job.urx, job.ury],
        "profile": job.profile,
        "document_type": job.document_type or None,
        "document_number": job.document_number or None,
        "document_date": job.document_date.isoformat() if job.document_date else None,
        "error": {"code": job.error_code, "detail": job.error_detail} if job.error_code else None,
        "attempts": job.attempts,
        "created_at": utc_timestamp(job.created_at),
        "finished_at": utc_timestamp(job.finished_at),
        "document_url": f"/api/v1/stamps/{job.id}/document" if job.status == StampJob.Status.STAMPED else None,
    }
    covers = getattr(job, "covers_content", None)
    if covers is not None:  # box=auto, on the answer to the request only
        body["covers_content"] = covers
    if getattr(job, "repaired", False):  # on the answer to the request only
        body["repaired"] = True
    if position is not None:
        queue = queue if queue is not None else admission.queue_state(budget=budget)
        body["queue"] = {
            "position": position + 1,
            "eta_seconds": queue.eta_seconds(position),
            "eta_ms": queue.eta_ms(position),
        }
    return body


def _promised(request, body: dict) -> dict:
    """Counts the wait a 202 promises (``gateway_stamp_eta_promised_seconds``), for the ETA error."""
    metrics.STAMP_ETA_PROMISED.labels(request.tenant.schema_name).observe(body["queue"]["eta_seconds"])
    return body


def _job_get(job_id: str) -> StampJob:
    return stamp_job_get(job_id=job_id)


class StampListApi(ChannelApiView):
    parser_classes = [SingleUploadParser, FormParser]
    brownout_class = "stamping"

    def get_required_scope(self):
        return "stamp" if self.request.method == "POST" else "read"

    def rate_limit_reads(self, request) -> tuple:
        return admission.state_reads() if request.method == "POST" else ()  # the queue, for admission

    def initial(self, request, *args, **kwargs):
        """Admission right after the key, the rate limit and the scope: a refusal reads no body and
        touches no database, with or without an ``Idempotency-Key`` (a request already accepted under
        the key keeps its job; its retry gets the stored answer once the channel takes work again)."""
        super().initial(request, *args, **kwargs)
        request.stamp_queue = self._admit(request) if request.method == "POST" else None

    def _admit(self, request) -> admission.QueueState:
        return admission.admit(channel=request.tenant, answers=getattr(request.rate_limit, "reads", None))

    @extend_schema(
        tags=["stamps"],
        summary="Stamp a document (asynchronous)",
        description=ASYNC,
        request={"multipart/form-data": StampInput},
        responses={202: StampJobDoc},
        parameters=[LOCATION],
    )
    @problems(*DOCUMENT_CHECKS)
    def post(self, request):
        queue = request.stamp_queue or self._admit(request)
        data = validate_stamp_input(request.data)
        job = request_stamp(
            channel=request.tenant, customer_id=data["customer"], request=_request_from(data, data["document"])
        )
        body = _promised(request, job_output(job, position=queue.waiting, queue=queue))
        return json_response(
            request,
            body,
            status=202,
            headers={"Location": f"/api/v1/stamps/{job.id}"},
        )

    @extend_schema(
        tags=["stamps"],
        operation_id="stamps_list",
        summary="List stamps, newest first",
        description="Cursor pagination: 50 per page; follow `next_cursor` until it is null.",
        parameters=list_parameters("stamps", StampJob.Status.values),
        responses={200: StampListDoc},
    )
    @problems("customer_not_found", "invalid_cursor")
    def get(self, request):
        """History, newest first; ``?customer=&status=&from=&to=&cursor=``."""
        params = request.query_params
        page = newest_first_page(
            stamp_jobs_for_listing(status=params.get("status") or None, **list_filters(params)),
            cursor=params.get("cursor"),
            kind=STAMP_CURSOR,
            size=PAGE_SIZE,
        )
        return Response({"results": [job_output(j) for j in page.results], "next_cursor": page.next_cursor})


STAMP_CURSOR = "stamp"


class PreviewInput(serializers.Serializer):
    document = serializers.FileField(allow_empty_file=False)
    page = serializers.IntegerField(min_value=1, default=1)
    profile = serializers.SlugField(max_length=40, default="default")
    password = serializers.CharField(max_length=128, required=False, default="", trim_whitespace=False)
    size = FiniteFloatField(required=False, help_text="Side of the stamp to place, in points (default 100).")
    llx = FiniteFloatField(required=False)
    lly = FiniteFloatField(required=False)
    urx = FiniteFloatField(required=False)
    ury = FiniteFloatField(required=False)

    def validate(self, attrs):
        given = [name for name in ("llx", "lly", "urx", "ury") if name in attrs]
        if given and len(given) != 4:
            raise serializers.ValidationError({"llx": ["Give all four of llx, lly, urx and ury, or none."]})
        return attrs


class PageSizeDoc(serializers.Serializer):
    page = serializers.IntegerField()
    width = serializers.FloatField(help_text="Points, as displayed (rotation applied).")
    height = serializers.FloatField()
    rotate = serializers.IntegerField()


class PreviewImageDoc(serializers.Serializer):
    media_type = serializers.CharField(help_text="`image/png`")
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    pixels_per_point = serializers.FloatField()
    data = serializers.CharField(help_text="The PNG, base64.")


class PreviewDoc(serializers.Serializer):
    pages = serializers.IntegerField()
    page_sizes = PageSizeDoc(many=True)
    page = serializers.IntegerField()
    suggested_box = serializers.ListField(
        child=serializers.FloatField(), min_length=4, max_length=4,
        help_text="llx, lly, urx, ury: the empty place nearest the bottom-right corner (what `box=auto` picks).",
    )  # fmt: skip
    suggested_box_covers_content = serializers.BooleanField(help_text="True only when the page has no empty place.")
    repaired = serializers.BooleanField(help_text="The file's cross-reference table will be rebuilt before stamping.")
    image = PreviewImageDoc(help_text="The page rendered by PDFium at 72 dpi, as displayed.")
    box = serializers.ListField(child=serializers.FloatField(), required=False, help_text="The box you gave.")
    covers_content = serializers.BooleanField(required=False, help_text="Whether the box you gave covers content.")


class StampPreviewApi(ChannelApiView):
    """``POST /api/v1/stamps/preview``: a dry run of a stamp request (nothing held, nothing stamped)."""

    parser_classes = [SingleUploadParser, FormParser]
    required_scope = "stamp"

    @extend_schema(
        tags=["stamps"],
        summary="Preview a stamp (dry run)",
        description="Runs the stamp request's document checks and answers with the page count and sizes, a PNG "
        "of `page` and a suggested box (the empty place nearest the bottom-right corner: what `box=auto` picks). "
        "With `llx`, `lly`, `urx`, `ury` it also checks that box and says whether it covers text or drawings "
        "(`covers_content`). Nothing is held or charged. A POST because it carries the document.",
        request={"multipart/form-data": PreviewInput},
        responses={200: PreviewDoc},
    )
    @problems(*[code for code in DOCUMENT_CHECKS if code not in ("customer_not_found", "insufficient_quota")])
    def post(self, request):
        serializer = PreviewInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        box = (data["llx"], data["lly"], data["urx"], data["ury"]) if "llx" in data else None
        answer = preview_document(
            data=data["document"].read(), page=data["page"], profile=data["profile"],
            password=data["password"] or None, box=box, size=data.get("size"),
        )  # fmt: skip
        return json_response(request, answer)


class StampDetailApi(ChannelApiView):
    @extend_schema(tags=["stamps"], summary="Get a stamp", parameters=[JOB_ID], responses={200: StampJobDoc})
    @problems("stamp_not_found")
    def get(self, request, job_id):
        job = _job_get(job_id)
        position = None
        if job.status == StampJob.Status.QUEUED:  # ahead: the lane's jobs queued or being stamped, as on the 202
            position = jobs_ahead_of(job)
        return json_response(request, job_output(job, position=position, budget=request.tenant.stamping_concurrency))


class StampDocumentApi(ChannelApiView):
    def perform_content_negotiation(self, request, force=False):
        # The answer is a PDF, not rendered by DRF: `Accept: application/pdf` must not be a 406 (it was).
        # Refusals are still problem+json.
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(
        tags=["stamps"],
        summary="Download the stamped PDF",
        parameters=[
            JOB_ID,
            OpenApiParameter("Content-Disposition", OpenApiTypes.STR, OpenApiParameter.HEADER, response=[200]),
            OpenApiParameter(
                "ETag", OpenApiTypes.STR, OpenApiParameter.HEADER, response=[200], description="SHA-256 of the PDF."
            ),
        ],
        responses={(200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY, description="The stamped PDF.")},
    )
    @problems("stamp_not_found", "document_not_ready", "document_purged")
    def get(self, request, job_id):
        job = _job_get(job_id)
        if job.status != StampJob.Status.STAMPED:
            raise DocumentNotReady(f"The stamp is {job.status}; the document is available once it is stamped.")
        name = (job.file_name.rsplit(".", 1)[0] or job.id) + f"-{job.serial}.pdf"
        response = HttpResponse(stamped_document(job), content_type="application/pdf")
        # The name comes from the uploaded file: quoted and encoded by Django, never pasted in.
        response["Content-Disposition"] = content_disposition_header(as_attachment=True, filename=name)
        response["ETag"] = f'"{job.sha256_out}"'
        return response


class BatchInput(PlacementInput):
    documents = serializers.ListField(child=serializers.FileField(), min_length=1, max_length=MAX_BATCH_DOCUMENTS)


class BatchListApi(ChannelApiView):
    parser_classes = [MultiPartParser, FormParser]
    required_scope = "stamp"
    brownout_class = "stamping"

    @extend_schema(
        tags=["stamps"],
        summary="Stamp up to 50 documents (asynchronous)",
        description=ASYNC.replace("the document", "every document").replace("one unit", "one unit per document")
        + " All documents are accepted and held, or none: a refusal names every refused document in "
        "`documents` (`index` from 0 in the order sent, `file_name`, `code`, `detail`), with the first one's "
        "code and status.",
        request={"multipart/form-data": BatchInput},
        responses={202: BatchAcceptedDoc},
        parameters=[LOCATION],
    )
    @problems(*DOCUMENT_CHECKS)
    def post(self, request):
        payload = {key: request.data.get(key) for key in request.data if key != "documents"}
        payload["documents"] = request.FILES.getlist("documents")
        data = BatchInput(data=payload)
        data.is_valid(raise_exception=True)
        customer = customer_get(customer_id=data.validated_data["customer"])
        documents = data.validated_data["documents"]
        queue = admission.admit(channel=request.tenant, new_jobs=len(documents))
        batch, jobs = request_batch(
            channel=request.tenant,
            customer_id=customer.pk,
            requests=[_request_from(data.validated_data, upload) for upload in documents],
        )
        return Response(
            {
                "id": batch.id,
                "documents": len(jobs),
                "jobs": [
                    _promised(request, job_output(j, position=queue.waiting + i, queue=queue))
                    for i, j in enumerate(jobs)
                ],
            },
            status=202,
            headers={"Location": f"/api/v1/batches/{batch.id}"},
        )


class BatchDetailApi(ChannelApiView):
    @extend_schema(
        tags=["stamps"],
        summary="Get a batch and its progress",
        parameters=[OpenApiParameter("batch_id", OpenApiTypes.STR, OpenApiParameter.PATH, description="`bat_...`")],
        responses={200: BatchDoc},
    )
    @problems("stamp_not_found")
    def get(self, request, batch_id):
        batch = batch_get(batch_id=batch_id)
        jobs = list(batch.jobs.order_by("created_at"))
        counts = {status: sum(1 for j in jobs if j.status == status) for status in StampJob.Status.values}
        done = counts["stamped"] + counts["failed"]
        return Response(
            {
                "id": batch.id,
                "customer": batch.customer_id,
                "total": len(jobs),
                "counts": counts,
                "progress": round(done / len(jobs), 4) if jobs else 1.0,
                "finished": done == len(jobs),
                "jobs": [job_output(j) for j in jobs],
            }
        )


class DocumentTypesApi(ChannelApiView):
    @extend_schema(tags=["catalogue"], summary="Document types and stamp profiles", responses={200: CatalogueDoc})
    def get(self, request):
        from issuer.selectors import active_profiles, document_types

        return Response(
            {
                "document_types": [{"code": t.code, "name": t.name} for t in document_types()],
                "profiles": [
                    {"name": p.name, "description": p.description, "max_bytes": p.max_bytes} for p in active_profiles()
                ],
            }
        )


class BalanceApi(ChannelApiView):
    @extend_schema(tags=["channel"], summary="The channel's stock", responses={200: BalanceDoc})
    def get(self, request):
        balance = ledger.channel_balance(channel_id=request.tenant.pk)
        return Response(
            {
                "channel": request.tenant.code,
                "allocated": balance.allocated,
                "available": balance.available,
                "reserved_for_orders": balance.reserved,
                "sold": balance.sold,
                "in_wallets": balance.in_wallets,
                "held_for_stamps": balance.held,
                "used": balance.used,
                "refunded": balance.refunded,
                "low_stock_threshold": request.tenant.low_stock_threshold,
                "low_stock": balance.available < request.tenant.low_stock_threshold,
            }
        )
