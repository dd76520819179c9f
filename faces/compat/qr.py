"""The stamp's QR as the issuer's API hands it out with a serial: a base64 JPEG."""

from __future__ import annotations

import base64
import io

from django.conf import settings
from PIL import Image  # Pillow comes with pikepdf (requirements.txt)

from issuer.stamp.render import qr_matrix, verification_url

SCALE = 8
QUIET = 4  # modules of white around the symbol, as QR readers expect


def qr_jpeg_base64(serial: str) -> str:
    """The QR of the serial's verification URL (what the stamp itself carries), as base64 JPEG."""
    rows = qr_matrix(verification_url(settings.VERIFY_BASE_URL, serial))
    size = len(rows[0]) + 2 * QUIET
    image = Image.new("L", (size, size), 255)
    for y, row in enumerate(rows):
        for x, value in enumerate(row):
            if value == 0:
                image.putpixel((x + QUIET, y + QUIET), 0)
    image = image.resize((size * SCALE, size * SCALE), Image.Resampling.NEAREST)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90)
    return base64.b64encode(out.getvalue()).decode()
