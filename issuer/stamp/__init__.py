"""Rendering of the visible e-Meterai stamp."""

from issuer.stamp.preview import stamp_preview_pdf
from issuer.stamp.render import StampAppearance, StampRenderer, render_stamp, verification_url

__all__ = ["StampAppearance", "StampRenderer", "render_stamp", "stamp_preview_pdf", "verification_url"]
