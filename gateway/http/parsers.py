"""``multipart/form-data`` for the single-document upload (``POST /api/v1/stamps``).

Django's multipart parser is general (file-upload handlers, spooling to disk) and costs about 0.2 ms
of CPU for a small upload, a tenth of the whole stamp request; this one, on the ``multipart``
package's push parser (strict, with header limits, about 25 us), keeps the body in memory, which
this endpoint does anyway: the document is read whole to be checked and stored. The body is capped at
the largest document the gateway accepts plus room for the form fields, and a larger one is refused
(``413 document_too_large``) before it is read.
"""

from __future__ import annotations

import multipart
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import QueryDict
from django.utils.datastructures import MultiValueDict
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser, DataAndFiles

from issuer.errors import DocumentTooLarge

FIELDS_ALLOWANCE = 64 * 1024  # the form fields and part headers around the document
CHUNK = 64 * 1024
MAX_PARTS = 64


def max_body_bytes() -> int:
    return settings.STAMP_DEFAULT_MAX_BYTES + FIELDS_ALLOWANCE


class SingleUploadParser(BaseParser):
    """Fields and files -> ``request.data`` (one QueryDict; files in memory); ``request.FILES`` stays
    empty. (DRF copies the fields to merge files into them when the parser returns files apart.)"""

    media_type = "multipart/form-data"

    def parse(self, stream, media_type=None, parser_context=None):
        meta = parser_context["request"].META
        _, options = multipart.parse_options_header(media_type or meta.get("CONTENT_TYPE", ""))
        boundary = options.get("boundary")
        if not boundary:
            raise ParseError("Multipart form parse error - the Content-Type has no boundary.")
        try:
            length = int(meta.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        limit = max_body_bytes()
        if length > limit:
            raise DocumentTooLarge(f"The upload is {length} bytes; the most a request may carry is {limit} bytes.")
        fields: dict[str, list] = {}
        try:
            parser = multipart.PushMultipartParser(boundary, max_segment_count=MAX_PARTS, strict=True)
            segment, chunks, read = None, [], 0
            while True:
                chunk = stream.read(CHUNK) if stream is not None else b""
                read += len(chunk)
                if read > limit:
                    raise DocumentTooLarge(f"The upload is larger than the {limit} bytes a request may carry.")
                for event in parser.parse(chunk):
                    if isinstance(event, multipart.MultipartSegment):
                        segment, chunks = event, []
                    elif event is not None:
                        chunks.append(bytes(event))
                    else:
                        _store(segment, b"".join(chunks), fields)
                if not chunk:
                    break
            parser.close()
        except (multipart.MultipartError, UnicodeDecodeError) as exc:
            raise ParseError(f"Multipart form parse error - {exc}") from None
        # An immutable QueryDict holding exactly what ``appendlist`` would have put in it (names and
        # values are already text), filled at once: ``appendlist`` costs about 4 us per field.
        data = QueryDict()
        dict.update(data, fields)
        return DataAndFiles(data, MultiValueDict())


def _store(segment, content: bytes, fields: dict[str, list]) -> None:
    if segment.filename is None:
        fields.setdefault(segment.name, []).append(content.decode("utf-8"))
    elif segment.filename:  # a file input left empty (no file name) is no file, as Django has it
        fields.setdefault(segment.name, []).append(
            SimpleUploadedFile(segment.filename, content, segment.content_type or "application/octet-stream")
        )
