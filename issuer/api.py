"""Public verification API on the issuer's host (no authentication: anyone may check a stamp)."""

from __future__ import annotations

from django.conf import settings
from rest_framework import serializers
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from issuer.pdf.inspect import check_size
from issuer.selectors import verify_document, verify_serial


class PublicApiView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]


class VerifySerialApi(PublicApiView):
    """``GET /api/v1/verify/{serial}``: the serial's public status."""

    def get(self, request, serial: str):
        return Response(verify_serial(serial))


class VerifyDocumentApi(PublicApiView):
    """``POST /api/v1/verify`` (multipart ``document``, optional ``password``): verify a stamped PDF."""

    parser_classes = [MultiPartParser, FormParser]

    class InputSerializer(serializers.Serializer):
        document = serializers.FileField(allow_empty_file=False)
        password = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False, max_length=256)

    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["document"]
        check_size(upload.size, settings.STAMP_DEFAULT_MAX_BYTES)
        return Response(verify_document(upload.read(), data.validated_data.get("password") or None))
