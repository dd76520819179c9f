"""The checks a storefront runs before it holds a unit: the same ones ``stamp_document`` runs.

Refusing a bad document at the door (422 with its code) means no unit is ever held for a stamp
that could not succeed. What the inspection found goes with the job, sealed (``StampCheck.facts``,
``issuer.facts``), and the worker checks the profile and the placement again on it before it
signs, without parsing the document a second time.
"""

from __future__ import annotations

import base64
import dataclasses
import time
from dataclasses import dataclass

from django.conf import settings

from issuer.errors import PageOutOfRange
from issuer.facts import seal as seal_facts
from issuer.pdf import DocumentInfo, ProfileRules, check_placement, check_profile
from issuer.pdf.prepare import PreparedDocument, prepare_document
from issuer.services import _profile
from issuer.stamp.placement import covers_content, render_page, suggest_box

Box = tuple[float, float, float, float]
PROFILE_CACHE_SECONDS = 30.0
_profiles: dict[tuple[str, int], tuple[float, object]] = {}


def _rules(name: str, max_bytes_cap: int):
    """A profile's rules with the gateway's size cap applied, cached per process for a few seconds
    (profiles change rarely; the worker reads them fresh before it signs)."""
    now = time.monotonic()
    key = (name, max_bytes_cap)
    hit = _profiles.get(key)
    if hit is not None and hit[0] > now:
        return hit[1]
    rules = _profile(name).to_rules()
    rules = dataclasses.replace(rules, max_bytes=min(rules.max_bytes, max_bytes_cap))
    _profiles[key] = (now + PROFILE_CACHE_SECONDS, rules)
    return rules


DEFAULT_STAMP_SIZE = 100.0  # points: the usual e-Meterai size on a page
AUTO_DPI = 36.0  # the rendering a box=auto is chosen on (2 points a pixel)


@dataclass(frozen=True, slots=True)
class StampCheck:
    info: DocumentInfo  # with the upload's SHA-256
    box: Box
    covers_content: bool | None  # known when the box was chosen here (``box=None``: auto)
    repaired: bool
    facts: str | None = None  # ``info`` sealed for the stamp (None: the document is rewritten before it is stamped)


def check_document(
    *, data: bytes, page: int, box: Box, profile: str = "default", password: str | None = None
) -> DocumentInfo:
    return check_stamp(data=data, page=page, box=box, profile=profile, password=password).info


def _prepared(data: bytes, rules: ProfileRules, password: str | None) -> tuple[PreparedDocument, DocumentInfo]:
    prepared = prepare_document(data, password=password, max_bytes=rules.max_bytes, max_pages=rules.max_pages)
    info = prepared.info
    if prepared.rewritten:  # the stamp goes on the rewrite; the job keeps the upload's hash
        info = dataclasses.replace(info, sha256=prepared.upload_sha256)
    check_profile(info, rules)
    return prepared, info


def _page_exists(info: DocumentInfo, page: int) -> None:
    if not 1 <= page <= info.page_count:
        raise PageOutOfRange(
            f"Page {page} does not exist; the document has {info.page_count} page(s).",
            extra={"page": page, "page_count": info.page_count},
        )


def stamp_size(rules: ProfileRules, requested: float | None = None) -> float:
    size = DEFAULT_STAMP_SIZE if requested is None else float(requested)
    return min(max(size, rules.min_stamp_size), rules.max_stamp_size)


def check_stamp(
    *, data: bytes, page: int, box: Box | None, profile: str = "default", password: str | None = None
) -> StampCheck:
    """The stamp request's checks; ``box=None`` chooses the box (``box=auto``): the empty place
    nearest the bottom-right corner of the page, on a rendering of it."""
    rules = _rules(profile, settings.STAMP_DEFAULT_MAX_BYTES)
    prepared, info = _prepared(data, rules, password)
    covers = None
    if box is None:
        _page_exists(info, page)
        rendering = render_page(prepared.data, page=page, password=password, dpi=AUTO_DPI, grey=True)
        box, covers = suggest_box(rendering, stamp_size(rules))
    check_placement(info, page, box, rules)
    facts = None if prepared.rewritten else seal_facts(info)
    return StampCheck(info=info, box=box, covers_content=covers, repaired=prepared.repaired, facts=facts)


def preview_document(
    *,
    data: bytes,
    page: int = 1,
    profile: str = "default",
    password: str | None = None,
    box: Box | None = None,
    size: float | None = None,
    dpi: float = 72.0,
) -> dict:
    """A dry run: the document's pages, a PNG of ``page`` (PDFium), a suggested box and, for a given
    ``box``, whether it is accepted and covers content. Refuses what a stamp request would refuse."""
    rules = _rules(profile, settings.STAMP_DEFAULT_MAX_BYTES)
    prepared, info = _prepared(data, rules, password)
    _page_exists(info, page)
    rendering = render_page(prepared.data, page=page, password=password, dpi=dpi)
    suggested, suggested_covers = suggest_box(rendering, stamp_size(rules, size))
    answer = {
        "pages": info.page_count,
        "page_sizes": [
            {"page": geometry.index + 1, "width": round(geometry.width, 2), "height": round(geometry.height, 2),
             "rotate": geometry.rotate}
            for geometry in info.pages
        ],  # fmt: skip
        "page": page,
        "suggested_box": list(suggested),
        "suggested_box_covers_content": suggested_covers,
        "repaired": prepared.repaired,
        "image": {
            "media_type": "image/png",
            "width": rendering.image.width,
            "height": rendering.image.height,
            "pixels_per_point": round(rendering.scale, 4),
            "data": base64.b64encode(rendering.png()).decode("ascii"),
        },
    }
    if box is not None:
        check_placement(info, page, box, rules)
        answer["box"] = list(box)
        answer["covers_content"] = covers_content(rendering, box)
    return answer
