"""The checks a storefront runs before it holds a unit: the same ones ``stamp_document`` runs.

Refusing a bad document at the door (422 with its code) means no unit is ever held for a stamp
that could not succeed; the worker runs the checks again, on the same bytes, before it signs.
"""

from __future__ import annotations

import dataclasses
import time

from django.conf import settings

from issuer.pdf import DocumentInfo, check_placement, check_profile
from issuer.pdf.prepare import prepare_document
from issuer.services import _profile

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


def check_document(
    *, data: bytes, page: int, box: Box, profile: str = "default", password: str | None = None
) -> DocumentInfo:
    rules = _rules(profile, settings.STAMP_DEFAULT_MAX_BYTES)
    prepared = prepare_document(data, password=password, max_bytes=rules.max_bytes, max_pages=rules.max_pages)
    info = prepared.info
    if prepared.rewritten:  # the stamp goes on the rewrite; the job keeps the upload's hash
        info = dataclasses.replace(info, sha256=prepared.upload_sha256)
    check_profile(info, rules)
    check_placement(info, page, box, rules)
    return info
