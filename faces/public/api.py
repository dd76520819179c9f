"""Public verification API on the issuer's host (no authentication: anyone may check a stamp)."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from faces.public import presenting
from gateway.http.edge import RateLimitHeadersMixin
from gateway.http.schema import PARSED, problems
from gateway.ratelimit import enforce_public_rate_limit
from issuer.models import Serial
from issuer.pdf.inspect import check_size
from issuer.selectors import verify_document, verify_serial


class PublicApiView(RateLimitHeadersMixin, APIView):
    """No API key; each request is charged to its client address and to all clients together
    (``gateway.ratelimit.check_public_rate_limit``), before its body is read."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    public_rate_limit = True  # the schema documents 429 and the RateLimit headers

    def rate_limit_cost(self, request) -> int:
        return 1

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        request.rate_limit = enforce_public_rate_limit(request, cost=self.rate_limit_cost(request))


# --------------------------------------------------------------------------- documentation only

CHECKS = ("signature_intact", "signer_trusted", "registered", "serial_used", "matches_registry",
          "unchanged_since_stamping")  # fmt: skip


class ChannelDoc(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()


class SerialStatusDoc(serializers.Serializer):
    serial = serializers.CharField()
    status = serializers.ChoiceField(choices=Serial.Status.values)
    valid = serializers.BooleanField(help_text="True when the serial was used for a completed stamp.")
    used_at = serializers.DateTimeField(allow_null=True)
    voided_at = serializers.DateTimeField(allow_null=True)
    channel = ChannelDoc(help_text="The channel that sold it.")
    profile = serializers.CharField()
    document_type = serializers.CharField(allow_null=True)
    verification_url = serializers.CharField()


class StampChecksDoc(serializers.Serializer):
    signature_intact = serializers.BooleanField()
    signer_trusted = serializers.BooleanField()
    registered = serializers.BooleanField()
    serial_used = serializers.BooleanField()
    matches_registry = serializers.BooleanField()
    unchanged_since_stamping = serializers.BooleanField()


class StampVerdictDoc(serializers.Serializer):
    serial = serializers.CharField()
    valid = serializers.BooleanField()
    failed_check = serializers.ChoiceField(choices=CHECKS, allow_null=True)
    checks = StampChecksDoc()
    changes_allowed = serializers.BooleanField(
        help_text="False when this e-Meterai is final (DocMDP P=1 or a field lock): nothing may follow it."
    )
    later_revisions = serializers.BooleanField(
        help_text="Something was appended after this e-Meterai (e.g. a second e-Meterai); it stays valid when "
        "its signature allows changes and what followed is another signature or form filling."
    )
    registry = SerialStatusDoc(required=False, help_text="When the serial is registered.")


class SignatureDoc(serializers.Serializer):
    field = serializers.CharField()
    valid = serializers.BooleanField()
    intact = serializers.BooleanField()
    trusted = serializers.BooleanField()
    covers_whole_document = serializers.BooleanField()
    changes_allowed = serializers.BooleanField(
        help_text="The signature lets the document change after it (false for DocMDP P=1 or a field lock)."
    )
    signer = serializers.CharField(allow_blank=True)
    signing_time = serializers.DateTimeField(allow_null=True)
    reason = serializers.CharField(allow_null=True)
    serial = serializers.CharField(allow_null=True)


class DocumentVerdictDoc(serializers.Serializer):
    valid = serializers.BooleanField(help_text="At least one e-Meterai, and every e-Meterai passes every check.")
    failed_check = serializers.ChoiceField(choices=("no_stamp", *CHECKS), allow_null=True)
    document_sha256 = serializers.CharField()
    stamps = StampVerdictDoc(many=True)
    signatures = SignatureDoc(many=True, help_text="Every signature in the document, ours or not.")


class VerifySerialApi(PublicApiView):
    """``GET /api/v1/verify/{serial}``: the serial's public status."""

    @extend_schema(
        tags=["verification"],
        summary="Check a serial",
        description="The public status of a serial printed under an e-Meterai. Spaces and case are forgiven.",
        parameters=[OpenApiParameter("serial", OpenApiTypes.STR, OpenApiParameter.PATH)],
        responses={200: SerialStatusDoc},
    )
    @problems("invalid_serial", "serial_not_found", "rate_limited")
    def get(self, request, serial: str):
        return Response(presenting.serial_status(verify_serial(serial)))


class VerifyDocumentApi(PublicApiView):
    """``POST /api/v1/verify`` (multipart ``document``, optional ``password``): verify a stamped PDF."""

    parser_classes = [MultiPartParser, FormParser]

    def rate_limit_cost(self, request) -> int:
        return settings.PUBLIC_UPLOAD_COST  # a document to check costs more than a serial to look up

    class InputSerializer(serializers.Serializer):
        document = serializers.FileField(allow_empty_file=False)
        password = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False, max_length=256)

    @extend_schema(
        tags=["verification"],
        summary="Verify a stamped PDF",
        description="Checks every e-Meterai signature in the document and each serial against the registry. "
        "A document that is not validly stamped is still `200`, with `valid: false` and `failed_check`.",
        request={"multipart/form-data": InputSerializer},
        responses={200: DocumentVerdictDoc},
    )
    @problems(
        *PARSED, "not_a_pdf", "document_unreadable", "wrong_password", "document_too_large", "document_too_complex",
        "verification_busy", "rate_limited",
    )  # fmt: skip
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["document"]
        check_size(upload.size, settings.STAMP_DEFAULT_MAX_BYTES)
        return Response(
            presenting.document_verdict(verify_document(upload.read(), data.validated_data.get("password") or None))
        )
