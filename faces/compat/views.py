"""The facade's views: the issuer's e-Meterai API as distributor clients call it, on a channel host
under ``/compat/``. Thin, as every face: parse the lenient input, call one domain service, answer in
the issuer's shapes. Refusals keep our HTTP status and headers (``Retry-After``) and carry the
facade's string code, our problem ``code`` and the ``request_id`` (docs/compat.md has the table)."""

from __future__ import annotations

import datetime
import re
import secrets
import time

from django.conf import settings
from django.db import transaction
from django.http import HttpResponse
from drf_spectacular.openapi import AutoSchema
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from billing import quota
from faces.compat import accounts
from faces.compat.auth import CompatTokenAuthentication
from faces.compat.errors import CompatInvalidInput, CompatStampPending, CompatUploadNotFound
from faces.compat.models import CompatUpload
from faces.compat.qr import qr_jpeg_base64
from gateway.http.auth import HasScope
from gateway.http.edge import EdgeMixin, base_url
from issuer.selectors import document_types
from issuer.services import UnknownDocumentType
from kernel.errors import ApplicationError
from outbox.webhooks import enqueue_callback
from stamping import admission
from stamping.models import StampJob
from stamping.reservations import (
    SerialSpec,
    open_reservations,
    reservation_get,
    reservations_for,
    reserve_serial,
    reserve_serials,
    stamp_reserved,
)
from stamping.selectors import stamp_job_get, stamped_document
from stamping.services import StampRequest

# --------------------------------------------------------------------------- codes

# Our problem codes -> (the facade's statusCode, docSigningZ's errorCode). Anything else: ("09", "92").
BUSY = ("08", "89")
FACADE_CODES: dict[str, tuple[str, str]] = {
    "compat_invalid_token": ("01", "01"),
    "compat_invalid_credentials": ("01", "01"),
    "invalid_api_key": ("01", "01"),
    "permission_denied": ("01", "01"),
    "not_authenticated": ("01", "01"),
    "compat_invalid_input": ("02", "90"),
    "validation_failed": ("02", "90"),
    "parse_error": ("02", "90"),
    "insufficient_quota": ("03", "88"),
    "reservation_not_found": ("04", "87"),
    "compat_upload_not_found": ("04", "87"),
    "customer_not_found": ("04", "87"),
    "stamp_not_found": ("04", "87"),
    "not_found": ("04", "87"),
    "reservation_expired": ("05", "86"),
    "hold_lost": ("05", "86"),
    "document_not_ready": ("07", "97"),
    "compat_stamp_pending": ("07", "97"),
    "document_certified": ("06", "83"),
    "document_already_final": ("06", "83"),
    "wrong_password": ("06", "84"),
    "document_encrypted": ("06", "84"),
    "unknown_document_type": ("06", "90"),
    "unknown_profile": ("06", "90"),
    "rate_limited": BUSY,
    "overloaded": BUSY,
    "channel_busy": BUSY,
    "compat_login_throttled": BUSY,
    "service_unavailable": BUSY,
    "signing_unavailable": ("09", "93"),
    "serial_taken": ("09", "92"),
    "invalid_webhook_endpoint": ("02", "90"),
}
DOCUMENT_REFUSED = ("06", "84")  # every other refusal of the document's checks (issuer.errors.DocumentError)


def facade_codes(code: str, status: int) -> tuple[str, str]:
    if code in FACADE_CODES:
        return FACADE_CODES[code]
    if status == 422 or code.startswith(("document_", "page_", "stamp_", "pdf_", "not_a_pdf", "too_many")):
        return DOCUMENT_REFUSED
    return ("09", "92")


# --------------------------------------------------------------------------- lenient input


def text(data, name: str, *, limit: int = 255) -> str:
    """A string field as clients send it: missing, null, ``false`` and ``"false"`` are empty."""
    value = data.get(name) if hasattr(data, "get") else None
    if value is None or value is False or isinstance(value, list | dict):
        return ""
    value = str(value).strip()
    if value.lower() in ("false", "null", "none", "undefined"):
        return ""
    if len(value) > limit or "\x00" in value:
        raise CompatInvalidInput(f"`{name}` is too long or malformed.", extra={"field": name})
    return value


def flag(data, name: str) -> bool:
    value = data.get(name) if hasattr(data, "get") else None
    return value is True or (isinstance(value, str | int) and str(value).strip().lower() in ("true", "1", "yes"))


def number(data, name: str, *, required: bool = True, default: float | None = None) -> float:
    raw = text(data, name, limit=40)
    if not raw:
        if required:
            raise CompatInvalidInput(f"`{name}` is required.", extra={"field": name})
        return default
    try:
        value = float(raw)
    except ValueError:
        raise CompatInvalidInput(f"`{name}` must be a number, not {raw!r}.", extra={"field": name}) from None
    if value != value or value in (float("inf"), float("-inf")):
        raise CompatInvalidInput(f"`{name}` must be a finite number.", extra={"field": name})
    return value


_DATE_FORMATS = ("%Y-%m-%d", "%d-%m-%Y", "%d/%m/%Y", "%Y/%m/%d")


def date_field(data, name: str) -> datetime.date | None:
    raw = text(data, name, limit=40)
    if not raw:
        return None
    for fmt in _DATE_FORMATS:
        try:
            return datetime.datetime.strptime(raw[:10], fmt).date()  # noqa: DTZ007 - a calendar date
        except ValueError:
            continue
    raise CompatInvalidInput(f"`{name}` must be a date such as 2026-11-29, not {raw!r}.", extra={"field": name})


def document_type_code(value: str) -> str:
    """``namadoc`` as clients send it: our type's code, its name, or its ``jenisdoc`` id."""
    if not value:
        return ""
    for doc_type in document_types():
        if value.lower() in (doc_type.code.lower(), doc_type.name.lower(), str(doc_type.pk)):
            return doc_type.code
    raise UnknownDocumentType(
        f"There is no document type {value!r}; list them with GET /compat/jenisdoc.", extra={"document_type": value}
    )


# --------------------------------------------------------------------------- the base view


class _NotInOpenApi(AutoSchema):
    """The facade answers in the issuer's shapes, documented in docs/compat.md, not in the OpenAPI
    documents of our own API."""

    def is_excluded(self) -> bool:
        return True


class CompatView(EdgeMixin, APIView):
    """A facade call: the compat user's token, its API key's rate limit and scope; answers in the
    issuer's shapes. No ``Idempotency-Key`` machinery: the facade's retries are by serial."""

    schema = _NotInOpenApi()

    authentication_classes = [CompatTokenAuthentication]
    permission_classes = [HasScope]
    parser_classes = [JSONParser, FormParser, MultiPartParser]
    idempotent_methods = frozenset()
    required_scope = "read"

    def failure(self, *, status_code: str, signing_code: str, problem: dict) -> dict:
        return {"statusCode": status_code, "message": problem.get("detail", "error")}

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        problem = response.data if isinstance(response.data, dict) else {}
        code = str(problem.get("code", "internal_error"))
        status_code, signing_code = facade_codes(code, response.status_code)
        body = self.failure(status_code=status_code, signing_code=signing_code, problem=problem)
        body.update({"code": code, "request_id": problem.get("request_id")})
        if response.get("Retry-After"):
            body["retry_after"] = int(response["Retry-After"])
        if problem.get("errors"):
            body["errors"] = problem["errors"]
        answer = Response(body, status=response.status_code)
        for name, value in response.items():
            if name.lower() != "content-type":
                answer[name] = value
        if getattr(response, "_has_been_logged", False):
            answer._has_been_logged = True  # a refusal that sheds load is an answer, not a server error
        return answer

    def customer_id(self, request) -> int:
        return request.user.customer_id

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if request.method == "POST" and not hasattr(request.data, "get"):
            raise CompatInvalidInput("Send the fields as a JSON object or a form.")


class LoginApi(CompatView):
    """``POST /api/users/login {user, password}``."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    def post(self, request):
        username = text(request.data, "user", limit=150) or text(request.data, "username", limit=150)
        password = request.data.get("password")
        if not username or not isinstance(password, str) or not password:
            raise CompatInvalidInput("Send `user` and `password`.")
        user, token = accounts.login(channel=request.tenant, username=username, password=password)
        login = {"token": token, "user": {"id": user.pk, "email": user.email, "username": user.username}}
        return Response(
            {"statusCode": "00", "message": "success", "token": token, "result": {"data": {"login": login}}}
        )


class SaldoApi(CompatView):
    """``GET|POST /function/saldopos``: units the caller can use, and serials reserved, not stamped."""

    def failure(self, *, status_code, signing_code, problem):
        return {"statusCode": status_code, "result": {"status": status_code, "message": problem.get("detail")}}

    def get(self, request):
        customer_id = self.customer_id(request)
        wallet = quota.wallet_balance(channel_id=request.tenant.pk, customer_id=customer_id)
        notstamp = open_reservations(customer_id=customer_id)
        return Response(
            {
                "statusCode": "00",
                "result": {"status": "00", "saldo": wallet["available"], "notstamp": notstamp, "message": "success"},
            }
        )

    post = get


class JenisDocApi(CompatView):
    """``GET /jenisdoc``: our document types."""

    def get(self, request):
        types = [{"id": t.pk, "kode": t.code, "nama": t.name} for t in document_types()]
        return Response({"statusCode": "00", "message": "success", "result": types})


class UploadApi(CompatView):
    """``POST /fileupload/uploaddoc2`` (multipart ``file``): kept until ``docSigningZ`` stamps it."""

    parser_classes = [MultiPartParser, FormParser]
    required_scope = "stamp"

    def post(self, request):
        upload = request.FILES.get("file")
        if upload is None or not upload.size:
            raise CompatInvalidInput("Send the PDF as the multipart field `file`.", extra={"field": "file"})
        if upload.size > settings.STAMP_DEFAULT_MAX_BYTES:
            raise CompatInvalidInput(
                f"The file is larger than {settings.STAMP_DEFAULT_MAX_BYTES} bytes.", extra={"field": "file"}
            )
        name = (getattr(upload, "name", "") or "document.pdf").rsplit("/", 1)[-1][:255]
        stored = CompatUpload.objects.create(
            user_id=request.user.compat_user.pk, name=name, data=upload.read(), size=upload.size
        )
        return Response({"statusCode": "00", "message": "success", "id": stored.pk, "name": stored.name})


class StampV2Api(CompatView):
    """``POST /chanel/stampv2``: a serial reserved for the caller, one unit held (not spent)."""

    required_scope = "stamp"

    def failure(self, *, status_code, signing_code, problem):
        return {"statusCode": status_code, "message": "error", "result": {"err": problem.get("detail")}}

    def post(self, request):
        data = request.data
        reservation = reserve_serial(
            channel=request.tenant,
            customer_id=self.customer_id(request),
            timeout=datetime.timedelta(seconds=settings.COMPAT_RESERVATION_SECONDS),
            document_type=document_type_code(text(data, "namadoc", limit=120)),
            document_number=text(data, "nodoc", limit=100),
            document_date=date_field(data, "tgldoc"),
            file_name=text(data, "namafile") or text(data, "idfile"),
        )
        result = {"sn": reservation.serial, "image": qr_jpeg_base64(reservation.serial)}
        if flag(data, "isUpload"):
            result["filenameQR"] = f"{reservation.serial}.jpg"
        return Response({"statusCode": "00", "message": "success", "result": result})


def _upload_for(user_id: int, data) -> CompatUpload:
    uploads = CompatUpload.objects.filter(user_id=user_id)
    wanted = text(data, "docId") or text(data, "idfile")
    if wanted:
        found = uploads.filter(pk=wanted).first()
        if found is not None:
            return found
    source = (text(data, "src", limit=1000) or wanted).replace("\\", "/").rsplit("/", 1)[-1]
    found = uploads.filter(pk=source).first() or (uploads.filter(name=source).first() if source else None)
    if found is None:
        raise CompatUploadNotFound(
            "No uploaded document matches `docId`/`src`; upload it with /compat/fileupload/uploaddoc2 first."
        )
    return found


def file_url(request, serial: str) -> str:
    return f"{base_url(request)}/compat/getfile3/{serial}.pdf"


IN_FLIGHT = (StampJob.Status.QUEUED, StampJob.Status.PROCESSING)
PENDING_RETRY_AFTER = 5
FAILED_JOB_STATUS = {"83": 422, "84": 422, "90": 422, "86": 410}  # else 502: the signing side failed


class DocSigningZApi(CompatView):
    """``POST /keystamp/adapter/docSigningZ``: stamp the uploaded document with the reserved serial.

    The reservation's hold is committed only when the stamp is recorded (by the stamping worker, in the
    issuer's transaction). The answer waits up to ``COMPAT_SIGN_WAIT_SECONDS`` for it, else says 97:
    the same call again (same ``refToken``) gets the same stamp."""

    required_scope = "stamp"

    def failure(self, *, status_code, signing_code, problem):
        return {"status": "False", "errorCode": signing_code, "errorMessage": problem.get("detail")}

    def post(self, request):
        data = request.data
        serial = text(data, "refToken", limit=40)
        if not serial:
            raise CompatInvalidInput("`refToken` (the serial from stampv2) is required.", extra={"field": "refToken"})
        customer_id = self.customer_id(request)
        reservation = reservation_get(serial=serial, customer_id=customer_id)
        job = reservation.job
        if job is None or job.status == StampJob.Status.FAILED:
            # A new stamping job: the lane's admission as for the storefront (a busy lane: 89 + retry_after).
            upload = _upload_for(request.user.compat_user.pk, data)
            page = int(number(data, "visSignaturePage", required=False, default=1))
            box = tuple(number(data, name) for name in ("visLLX", "visLLY", "visURX", "visURY"))
            admission.admit(channel=request.tenant)
            job = stamp_reserved(
                channel=request.tenant,
                serial=reservation.serial,
                customer_id=customer_id,
                request=StampRequest(
                    data=bytes(upload.data),
                    page=max(page, 1),
                    box=box,
                    password=text(data, "docpass", limit=128) or None,
                    file_name=upload.name,
                    reason=text(data, "reason", limit=200),
                    location=text(data, "location", limit=100),
                ),
            )
        job = self._wait(job)
        return self._answer(request, job, reservation.serial)

    def _wait(self, job: StampJob) -> StampJob:
        """Poll the job (one indexed read) until it finishes or the wait is over; the pause grows from
        0.1 s to 1 s, so a long wait costs some 25 reads, not hundreds."""
        deadline = time.monotonic() + settings.COMPAT_SIGN_WAIT_SECONDS
        pause = 0.1
        while job.status in IN_FLIGHT and time.monotonic() < deadline:
            time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            pause = min(pause * 1.5, 1.0)
            job = stamp_job_get(job_id=job.pk)
        return job

    def _answer(self, request, job: StampJob, serial: str):
        if job.status == StampJob.Status.STAMPED:
            return Response({"status": "True", "errorCode": "00", "urlFile": file_url(request, serial)})
        if job.status in IN_FLIGHT:
            pending = CompatStampPending(
                f"The stamp of {serial} is {job.status}; nothing more was charged. Send the same call again "
                '(retryFlag "1"): it gets this stamp.',
                extra={"serial": serial},
            )
            pending.headers = {"Retry-After": str(PENDING_RETRY_AFTER)}
            raise pending
        _, signing_code = facade_codes(job.error_code, 422)
        return Response(
            {
                "status": "False",
                "errorCode": signing_code,
                "errorMessage": f"{job.error_detail} The unit was not spent; the serial stays reserved for a retry.",
                "code": job.error_code,
            },
            status=FAILED_JOB_STATUS.get(signing_code, 502),
        )


_SERIAL_NAME = re.compile(r"([0-9A-Za-z]{22})(?:\.pdf)?")


class GetFileApi(CompatView):
    """``GET /getfile3/{name}`` and ``urlFile``: the stamped PDF."""

    def perform_content_negotiation(self, request, force=False):
        return super().perform_content_negotiation(request, force=True)

    def get(self, request, name):
        match = _SERIAL_NAME.fullmatch(name.rsplit("/", 1)[-1])
        if match is None:
            raise CompatUploadNotFound(f"No stamped document {name!r}.")
        reservation = reservation_get(serial=match.group(1), customer_id=self.customer_id(request))
        if reservation.job is None or reservation.job.status != StampJob.Status.STAMPED:
            from stamping.errors import DocumentNotReady

            raise DocumentNotReady(f"The serial {reservation.serial} is not stamped (yet).")
        response = HttpResponse(stamped_document(reservation.job), content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="{reservation.serial}.pdf"'
        return response


class StampStatusApi(CompatView):
    """``GET /chanel/stamp/ext?filter={SN}``: STAMP or NOTSTAMP."""

    def get(self, request):
        serial = text(request.query_params, "filter", limit=40)
        rows = []
        if serial:
            try:
                reservation = reservation_get(serial=serial, customer_id=self.customer_id(request))
            except ApplicationError:
                reservation = None
            if reservation is not None:
                stamped = reservation.job is not None and reservation.job.status == StampJob.Status.STAMPED
                rows.append(
                    {
                        "sn": reservation.serial,
                        "status": "STAMP" if stamped else "NOTSTAMP",
                        "namadoc": reservation.document_type,
                        "nodoc": reservation.document_number,
                        "tgldoc": reservation.document_date.isoformat() if reservation.document_date else None,
                        "namafile": reservation.file_name,
                        "expires_at": reservation.expires_at.isoformat(),
                    }
                )
        return Response({"statusCode": "00", "message": "success", "result": {"total": len(rows), "data": rows}})


MAX_BATCH_DOCUMENTS = 100
BATCH_EVENT = "compat.batch_serial"


def _status(reservation) -> str:
    stamped = reservation.job is not None and reservation.job.status == StampJob.Status.STAMPED
    return "STAMP" if stamped else "NOTSTAMP"


class BatchApi(CompatView):
    """``POST /api/v2/serialnumber/batch {return_url, document:[...]}``: a serial (and a held unit) per
    document, all or none; each result is POSTed to ``return_url`` by the webhook outbox (signed,
    retried, public addresses only)."""

    required_scope = "stamp"

    def failure(self, *, status_code, signing_code, problem):
        return {"statusCode": status_code, "errCode": status_code, "message": problem.get("detail")}

    def post(self, request):
        data = request.data
        return_url = text(data, "return_url", limit=500)
        documents = data.get("document") if hasattr(data, "get") else None
        if not return_url:
            raise CompatInvalidInput("`return_url` is required: the results are POSTed there.")
        if not isinstance(documents, list) or not documents or len(documents) > MAX_BATCH_DOCUMENTS:
            raise CompatInvalidInput(f"`document` must list 1 to {MAX_BATCH_DOCUMENTS} documents (a JSON body).")
        specs = []
        for index, document in enumerate(documents):
            if not isinstance(document, dict):
                raise CompatInvalidInput(f"`document[{index}]` must be an object.", extra={"index": index})
            specs.append(
                SerialSpec(
                    document_type=document_type_code(text(document, "namadoc", limit=120)),
                    document_number=text(document, "nodoc", limit=100),
                    document_date=date_field(document, "tgldoc"),
                    file_name=text(document, "namafile"),
                )
            )
        batch_id = f"bsn_{secrets.token_hex(10)}"
        with transaction.atomic():  # the serials, their holds and their callbacks: together or none
            reservations = reserve_serials(
                channel=request.tenant,
                customer_id=self.customer_id(request),
                timeout=datetime.timedelta(seconds=settings.COMPAT_RESERVATION_SECONDS),
                specs=specs,
                reference=batch_id,
            )
            for proc_id, reservation in enumerate(reservations, start=1):
                enqueue_callback(
                    url=return_url,
                    event_type=BATCH_EVENT,
                    payload={
                        "errCode": "00",
                        "result": {
                            "batchId": batch_id,
                            "procId": str(proc_id),
                            "serialNumber": reservation.serial,
                            "qrImage": qr_jpeg_base64(reservation.serial),
                            "status": "SUCCESS",
                        },
                    },
                )
        return Response(
            {"statusCode": "00", "message": "success", "result": {"batchId": batch_id, "total": len(reservations)}}
        )


class BatchStatusApi(CompatView):
    """``GET /snqr/status-batch?batchId=``: the batch's serials and whether each is stamped."""

    def get(self, request):
        batch_id = text(request.query_params, "batchId", limit=40)
        reservations = reservations_for(reference=batch_id, customer_id=self.customer_id(request)) if batch_id else []
        if not reservations:
            from stamping.reservations import ReservationNotFound

            raise ReservationNotFound(f"No batch {batch_id!r} of this user.")
        rows = [
            {"procId": str(i), "serialNumber": r.serial, "status": _status(r)}
            for i, r in enumerate(reservations, start=1)
        ]
        result = {"batchId": batch_id, "total": len(rows), "data": rows}
        return Response({"statusCode": "00", "message": "success", "result": result})
