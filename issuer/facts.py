"""A document's inspection, sealed at intake and opened by the stamp, so a stamp job inspects once.

A stamp request's document is inspected at the door (``issuer.checks.check_stamp``: refused there, no
unit is held for it). The worker used to inspect the same bytes again before it signed: a second
parse by qpdf and a second SHA-256 of the whole upload (0.6 ms of CPU for an 800 KB scan, a third
of what the engine's stamp costs on it). The intake now keeps what it found, ``DocumentInfo``, next
to the upload, and the stamp takes it from there:

* **Bound to the bytes.** The facts carry the upload's SHA-256, and the engine hashes the bytes it
  signs and refuses any that differ (``DocumentChanged``): facts can only describe the document
  they were made from.
* **Sealed.** The text is signed with a key derived from the project secret (``django.core.signing``,
  its own salt): facts altered where they are stored, or written by anything but this code, do not
  open, and the stamp inspects the document itself, as it did before.
* **Versioned.** A release that describes documents differently changes ``VERSION``; facts of an
  older release do not open either, with the same result.

The rules are not part of the facts: the stamp checks the profile and the placement again, with the
profile as it is when it signs. The engine (``issuer.pdf``, no Django) only ever sees the opened
``DocumentInfo`` (``prepare_document(known=...)``); the sealing is the service's.
"""

from __future__ import annotations

import json

from django.core import signing

from issuer.pdf import DocumentInfo, EncryptionInfo, PageGeom, Rect, SignatureFieldInfo

VERSION = 1
SALT = "issuer.facts"


def _signer() -> signing.Signer:
    return signing.Signer(salt=SALT)  # (built per call: it reads SECRET_KEY and its fallbacks then)


def _rect(rect: Rect | None) -> list[float] | None:
    return None if rect is None else [rect.llx, rect.lly, rect.urx, rect.ury]


def _unrect(values: list[float] | None) -> Rect | None:
    return None if values is None else Rect(*(float(value) for value in values))


def seal(info: DocumentInfo) -> str:
    """``info`` as sealed text (compact JSON and its signature)."""
    body = {
        "v": VERSION,
        "size": info.size,
        "sha256": info.sha256,
        "version": info.pdf_version,
        "header": info.header_version,
        "pages": [
            [page.index, page.width, page.height, page.rotate, _rect(page.visible), _rect(page.media_box)]
            for page in info.pages
        ],
        "count": info.page_count,
        "encryption": None
        if info.encryption is None
        else [info.encryption.revision, info.encryption.method, info.encryption.key_bits],
        "encrypted": info.encrypted,
        "signatures": [
            [
                sig.field_name,
                sig.page_index,
                _rect(sig.rect),
                sig.signed,
                sig.is_certification,
                sig.docmdp_permission,
                sig.lock_permission,
                sig.sub_filter,
            ]
            for sig in info.signatures
        ],
        "xref_stream": info.uses_xref_stream,
        "startxref": info.startxref,
        "linearized": info.linearized,
        "need_appearances": info.need_appearances,
    }
    return _signer().sign(json.dumps(body, separators=(",", ":"), allow_nan=False))


def unseal(text: str | None) -> DocumentInfo | None:
    """The ``DocumentInfo`` sealed in ``text``; None when there is none, it does not open (altered, another
    key) or it was sealed by another version of this code."""
    if not text:
        return None
    try:
        body = json.loads(_signer().unsign(text))
        if body.get("v") != VERSION:
            return None
        encryption = body["encryption"]
        return DocumentInfo(
            size=int(body["size"]),
            sha256=str(body["sha256"]),
            pdf_version=str(body["version"]),
            header_version=str(body["header"]),
            page_count=int(body["count"]),
            pages=tuple(
                PageGeom(int(index), float(width), float(height), int(rotate), _unrect(visible), _unrect(media))
                for index, width, height, rotate, visible, media in body["pages"]
            ),
            encrypted=bool(body["encrypted"]),
            encryption=None
            if encryption is None
            else EncryptionInfo(int(encryption[0]), str(encryption[1]), int(encryption[2])),
            signatures=tuple(
                SignatureFieldInfo(
                    str(name), page_index, _unrect(rect), bool(signed), bool(certification), docmdp, lock, sub
                )
                for name, page_index, rect, signed, certification, docmdp, lock, sub in body["signatures"]
            ),
            uses_xref_stream=bool(body["xref_stream"]),
            startxref=int(body["startxref"]),
            linearized=bool(body["linearized"]),
            need_appearances=bool(body["need_appearances"]),
        )
    except (signing.BadSignature, ValueError, KeyError, TypeError, AttributeError):
        return None
