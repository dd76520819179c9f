"""The fast stamping signer.

``StampEngine.stamp`` appends one incremental update to the original bytes holding:

* the signature dictionary (PAdES, ``/SubFilter /ETSI.CAdES.detached``) with a fixed-size
  ``/Contents`` placeholder and a fixed-width ``/ByteRange``;
* a merged signature field + widget annotation whose ``/AP /N`` is the stamp Form XObject;
* the page (or its indirect ``/Annots`` array), the catalog and/or the AcroForm, re-serialised
  with the new references;
* a cross-reference section of the same kind as the original's last one.

It then hashes the two byte ranges (one SHA-256 pass over the original, shared with the input
checksum), builds the CMS container from a per-key template (:mod:`issuer.signing.cms`), and
writes its hex into the placeholder.

How the stamp signs depends on the profile's ``certification`` (``issuer.pdf.rules``):

* ``not_certified`` (``default``): an approval signature with no DocMDP and no field lock, so
  a second e-Meterai, or another party's signature, can follow as a later incremental update;
* ``no_changes`` (``cpns``): on an unsigned document a certification signature (DocMDP P=1: no
  changes allowed); on a document that is already signed an approval signature whose field locks
  all fields with ``/Lock << /Action /All /P 1 >>`` (PDF 2.0), so the stamp is final either way.

Earlier signatures stay valid because their bytes are untouched.

Encrypted documents (AES-128/AES-256 only) are supported when the password is given: new strings
and streams are encrypted with the file key, the signature's ``/Contents`` is left in clear as
ISO 32000 requires, and the trailer keeps ``/Encrypt`` and the first ``/ID``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import pikepdf

from issuer.errors import DocumentChanged, DocumentUnreadable, SigningUnavailable
from issuer.pdf.geometry import Rect
from issuer.pdf.inspect import DocumentInfo, encryption_info, open_pdf, version_tuple
from issuer.pdf.rules import ProfileRules, check_placement
from issuer.serials import is_valid_serial
from issuer.signing.cms import CmsTemplate
from issuer.signing.keys import KeyMaterial
from issuer.signing.syntax import ObjectCipher, StringEncoder, literal, number, pdf_date, serialize, text_bytes
from issuer.signing.timestamps import Timestamper
from issuer.signing.writer import IncrementalUpdate, hex_id
from issuer.stamp.render import StampAppearance, StampRenderer

UPGRADE_TO_VERSION = "1.7"
_BYTE_RANGE_WIDTH = 3 * 11 + 2  # three 10-digit numbers, separators and padding
_ROTATION_MATRIX = {0: b"1 0 0 1 0 0", 90: b"0 1 -1 0 0 0", 180: b"-1 0 0 -1 0 0", 270: b"0 -1 1 0 0 0"}
_CONTENTS_MARGIN = 256


@dataclass(frozen=True, slots=True)
class StampResult:
    pdf: bytes
    sha256_in: str
    sha256_out: str
    serial: str
    page: int
    rect: Rect
    certification: bool
    upgraded_to: str | None
    signed_at: dt.datetime
    timestamped: bool
    verification_url: str


@dataclass(slots=True)
class _Layout:
    """What the update must contain, read from the original document."""

    catalog: pikepdf.Dictionary
    page: pikepdf.Dictionary
    acroform: pikepdf.Dictionary | None
    trailer: pikepdf.Dictionary
    next_number: int
    cipher: ObjectCipher | None


class StampEngine:
    """Long-lived stamping signer: keep one per process so the loaded key and templates are reused."""

    def __init__(
        self,
        key_material: KeyMaterial,
        verify_base_url: str,
        timestamper: Timestamper | None = None,
        *,
        field_name_prefix: str = "eMeterai",
    ) -> None:
        self.keys = key_material
        self.timestamper = timestamper
        self.renderer = StampRenderer(verify_base_url)
        self.template = CmsTemplate(key_material)
        self.field_name_prefix = field_name_prefix

    def _contents_reserve(self) -> int:
        reserve = self.template.size_without_timestamp + _CONTENTS_MARGIN
        if self.timestamper is not None:
            reserve += self.timestamper.reserve
        return reserve

    def stamp(
        self,
        data: bytes,
        *,
        info: DocumentInfo,
        page: int,
        box: tuple[float, float, float, float],
        serial: str,
        reason: str,
        location: str,
        signed_at: dt.datetime,
        password: str | None = None,
        rules: ProfileRules | None = None,
    ) -> StampResult:
        """Stamp and sign ``data`` (already inspected as ``info``) on 1-based ``page`` at ``box``.

        ``box`` is in points, origin at the bottom-left of the page as displayed.  Raises the
        errors of :mod:`issuer.errors`; never returns a partially signed document.
        """
        if not is_valid_serial(serial):
            raise ValueError(f"not a valid e-Meterai serial: {serial!r}")
        if signed_at.tzinfo is None:
            raise ValueError("signed_at must be timezone-aware")
        source_hash = hashlib.sha256(data)
        sha256_in = source_hash.hexdigest()
        if sha256_in != info.sha256:
            raise DocumentChanged(
                "The document differs from the one that was checked; upload it again.",
                extra={"expected_sha256": info.sha256},
            )
        rect = check_placement(info, page, box, rules)
        final = rules is not None and rules.final
        certification = final and not info.is_signed
        upgrade = not info.is_signed and version_tuple(info.pdf_version) < version_tuple(UPGRADE_TO_VERSION)
        base = data
        if upgrade:
            base = _patched_header(data)
            source_hash = hashlib.sha256(base)
        pdf = open_pdf(data, password)
        try:
            layout = self._layout(pdf, page)
            appearance = self.renderer.render(serial)
            for _attempt in range(3):
                reserve = self._contents_reserve()
                update, contents_at = self._build_update(
                    base, info, layout, rect, info.page(page).rotate, appearance.content, appearance,
                    serial=serial, reason=reason, location=location, signed_at=signed_at,
                    certification=certification, lock=final and not certification, upgrade=upgrade,
                    reserve=reserve,
                )  # fmt: skip
                signed = self._sign(base, source_hash, update, contents_at, reserve)
                if signed is not None:
                    break
            else:  # pragma: no cover - the reserve grows to fit the token seen
                raise SigningUnavailable("The signature did not fit its reserved space.")
        except (pikepdf.PdfError, RuntimeError) as exc:
            raise DocumentUnreadable(
                "The PDF is damaged and cannot be stamped. Open and save it again with a PDF application.",
                extra={"reason": str(exc)[:200]},
            ) from None
        finally:
            pdf.close()
        output, out_hash = signed
        return StampResult(
            pdf=output,
            sha256_in=sha256_in,
            sha256_out=out_hash,
            serial=serial,
            page=page,
            rect=rect,
            certification=certification,
            upgraded_to=UPGRADE_TO_VERSION if upgrade else None,
            signed_at=signed_at,
            timestamped=self.timestamper is not None,
            verification_url=appearance.url,
        )

    # -- reading the original ------------------------------------------------------------------

    def _layout(self, pdf: pikepdf.Pdf, page: int) -> _Layout:
        cipher = None
        if encryption_info(pdf) is not None:
            enc = pdf.encryption
            cipher = ObjectCipher(bytes(enc.encryption_key), enc.R)
        trailer = pdf.trailer
        size = trailer.get("/Size")
        highest = max(number for number, _generation in pdf.get_xref_table())
        next_number = max(int(size) if isinstance(size, int) else 0, highest + 1)
        acroform = pdf.Root.get("/AcroForm")
        return _Layout(
            catalog=pdf.Root,
            page=pdf.pages[page - 1].obj,
            acroform=acroform if isinstance(acroform, pikepdf.Dictionary) else None,
            trailer=trailer,
            next_number=next_number,
            cipher=cipher,
        )

    # -- writing the update --------------------------------------------------------------------

    def _build_update(
        self,
        base: bytes,
        info: DocumentInfo,
        layout: _Layout,
        rect: Rect,
        rotate: int,
        content: bytes,
        appearance: StampAppearance,
        *,
        serial: str,
        reason: str,
        location: str,
        signed_at: dt.datetime,
        certification: bool,
        lock: bool,
        upgrade: bool,
        reserve: int,
    ) -> tuple[bytes, int]:
        separator = b"" if base.endswith((b"\n", b"\r")) else b"\n"
        update = IncrementalUpdate(
            base_length=len(base) + len(separator),
            next_number=layout.next_number,
            prev_startxref=info.startxref,
            xref_stream=info.uses_xref_stream,
        )
        cipher = layout.cipher
        sig_number = update.allocate()
        widget_number = update.allocate()
        form_number = update.allocate()

        def strings(number: int, generation: int = 0) -> StringEncoder:
            return cipher.string_encoder(number, generation) if cipher is not None else literal

        # signature dictionary: /Contents is never encrypted (ISO 32000-1, 7.6.1)
        sig_string = strings(sig_number)
        reference = b""
        if certification:
            reference = (
                b" /Reference [<< /Type /SigRef /TransformMethod /DocMDP"
                b" /TransformParams << /Type /TransformParams /P 1 /V /1.2 >> >>]"
            )
        elif lock:
            reference = (
                b" /Reference [<< /Type /SigRef /TransformMethod /FieldMDP"
                b" /TransformParams << /Type /TransformParams /Action /All /V /1.2 >> >>]"
            )
        full_reason = f"[{serial}] e-Meterai {reason}".strip()
        sig_body = (
            b"<< /Type /Sig /Filter /Adobe.PPKLite /SubFilter /ETSI.CAdES.detached"
            b" /ByteRange [" + b" " * _BYTE_RANGE_WIDTH + b"]"
            b" /Reason " + sig_string(text_bytes(full_reason))
            + b" /Location " + sig_string(text_bytes(location))
            + b" /M " + sig_string(pdf_date(signed_at).encode("ascii"))
            + reference
            + b" /Prop_Build << /App << /Name /e-Meterai >> >>"
            + b" /Contents <" + b"0" * (2 * reserve) + b"> >>"
        )  # fmt: skip
        update.put(sig_number, 0, sig_body)

        # the stamp's fonts, embedded (a TrueType subset each: dictionary, descriptor, program)
        font_refs: dict[str, bytes] = {}
        for font in appearance.fonts:
            font_number, descriptor_number, file_number = update.allocate(), update.allocate(), update.allocate()
            program = font.compressed
            if cipher is not None:
                program = cipher.encrypt(file_number, 0, program)
            update.put(file_number, 0, font.file_stream_header(len(program)) + b"\nstream\n" + program + b"\nendstream")
            update.put(descriptor_number, 0, font.descriptor(b"%d 0 R" % file_number))
            update.put(font_number, 0, font.font_dictionary(b"%d 0 R" % descriptor_number))
            font_refs[font.resource] = b"%d 0 R" % font_number
        resources = appearance.resources(font_refs)

        # appearance: the stamp form, rotated against the page's /Rotate so it reads upright
        stream = zlib.compress(content, 6)
        if cipher is not None:
            stream = cipher.encrypt(form_number, 0, stream)
        form_body = (
            b"<< /Type /XObject /Subtype /Form /BBox [0 0 100 100] /Matrix [" + _ROTATION_MATRIX[rotate] + b"]"
            b" /Resources " + resources + b" /Filter /FlateDecode /Length %d >>\nstream\n" % len(stream)
            + stream + b"\nendstream"
        )  # fmt: skip
        update.put(form_number, 0, form_body)

        # merged signature field and widget annotation
        page_ref = b"%d %d R" % layout.page.objgen
        field_lock = b" /Lock << /Type /SigFieldLock /Action /All /P 1 >>" if lock else b""
        field_name = f"{self.field_name_prefix}_{serial}".encode("ascii")
        widget_body = (
            b"<< /Type /Annot /Subtype /Widget /FT /Sig /F 4 /T " + strings(widget_number)(field_name)
            + b" /V %d 0 R /P " % sig_number + page_ref
            + b" /Rect [" + b" ".join(number(v) for v in rect.as_tuple()) + b"]"
            + b" /AP << /N %d 0 R >>" % form_number + field_lock + b" >>"
        )  # fmt: skip
        update.put(widget_number, 0, widget_body)

        self._add_to_page(update, layout, widget_number, strings)
        self._update_catalog(update, layout, widget_number, sig_number, certification, upgrade, strings)

        trailer = self._trailer(layout, info, serial, signed_at)
        rendered = update.render(trailer)
        contents_at = rendered.index(b"/Contents <") + len(b"/Contents ")
        return separator + rendered, contents_at + len(separator)

    def _add_to_page(
        self, update: IncrementalUpdate, layout: _Layout, widget: int, strings: Callable[..., StringEncoder]
    ) -> None:
        page = layout.page
        annots = page.get("/Annots")
        widget_ref = b"%d 0 R" % widget
        if isinstance(annots, pikepdf.Array) and annots.is_indirect:
            number_, generation = annots.objgen
            items = _array_items(annots, strings(number_, generation))
            update.put(number_, generation, b"[" + items + b" " + widget_ref + b"]")
            return
        number_, generation = page.objgen
        encode = strings(number_, generation)
        existing = _array_items(annots, encode) if isinstance(annots, pikepdf.Array) else b""
        body = _dictionary_with(page, encode, {"/Annots": b"[" + existing + b" " + widget_ref + b"]"})
        update.put(number_, generation, body)

    def _update_catalog(
        self,
        update: IncrementalUpdate,
        layout: _Layout,
        widget: int,
        sig: int,
        certification: bool,
        upgrade: bool,
        strings: Callable[..., StringEncoder],
    ) -> None:
        catalog = layout.catalog
        catalog_encode = strings(*catalog.objgen)
        catalog_changes: dict[str, bytes] = {}
        widget_ref = b"%d 0 R" % widget
        acroform = layout.acroform
        if acroform is None:
            acroform_number = update.allocate()
            update.put(acroform_number, 0, b"<< /Fields [" + widget_ref + b"] /SigFlags 3 >>")
            catalog_changes["/AcroForm"] = b"%d 0 R" % acroform_number
        else:
            holder_encode = strings(*acroform.objgen) if acroform.is_indirect else catalog_encode
            fields = acroform.get("/Fields")
            flags = acroform.get("/SigFlags")
            acroform_changes: dict[str, bytes | None] = {}
            if isinstance(fields, pikepdf.Array) and fields.is_indirect:
                items = _array_items(fields, strings(*fields.objgen))
                update.put(*fields.objgen, b"[" + items + b" " + widget_ref + b"]")
            else:
                existing = _array_items(fields, holder_encode) if isinstance(fields, pikepdf.Array) else b""
                acroform_changes["/Fields"] = b"[" + existing + b" " + widget_ref + b"]"
            if not isinstance(flags, int) or flags & 3 != 3:
                acroform_changes["/SigFlags"] = b"%d" % ((flags if isinstance(flags, int) else 0) | 3)
            if "/NeedAppearances" in acroform:
                # poppler regenerates every field when it is set and then draws no signature widget:
                # drop it, as pyHanko does when it adds a signature field (unsigned files had their
                # field appearances generated before: issuer.pdf.prepare)
                acroform_changes["/NeedAppearances"] = None
            if acroform_changes:
                body = _dictionary_with(acroform, holder_encode, acroform_changes)
                if acroform.is_indirect:
                    update.put(*acroform.objgen, body)
                else:
                    catalog_changes["/AcroForm"] = body
        if certification:
            perms = catalog.get("/Perms")
            docmdp = {"/DocMDP": b"%d 0 R" % sig}
            if isinstance(perms, pikepdf.Dictionary) and not perms.is_indirect:
                catalog_changes["/Perms"] = _dictionary_with(perms, catalog_encode, docmdp)
            else:
                catalog_changes["/Perms"] = b"<< /DocMDP %d 0 R >>" % sig
        if upgrade:
            catalog_changes["/Version"] = b"/" + UPGRADE_TO_VERSION.encode("ascii")
        if catalog_changes:
            update.put(*catalog.objgen, _dictionary_with(catalog, catalog_encode, catalog_changes))

    def _trailer(self, layout: _Layout, info: DocumentInfo, serial: str, signed_at: dt.datetime) -> dict[bytes, bytes]:
        trailer = layout.trailer
        entries: dict[bytes, bytes] = {b"/Root": b"%d %d R" % layout.catalog.objgen}
        document_info = trailer.get("/Info")
        if isinstance(document_info, pikepdf.Dictionary) and document_info.is_indirect:
            entries[b"/Info"] = b"%d %d R" % document_info.objgen
        encrypt = trailer.get("/Encrypt")
        if isinstance(encrypt, pikepdf.Dictionary):
            entries[b"/Encrypt"] = b"%d %d R" % encrypt.objgen if encrypt.is_indirect else serialize(encrypt, literal)
        instance = hashlib.sha256(f"{info.sha256}:{serial}:{signed_at.isoformat()}".encode()).digest()[:16]
        ids = trailer.get("/ID")
        permanent = bytes(ids[0]) if isinstance(ids, pikepdf.Array) and len(ids) == 2 else instance
        entries[b"/ID"] = b"[" + hex_id(permanent) + b" " + hex_id(instance) + b"]"
        return entries

    # -- signing -------------------------------------------------------------------------------

    def _sign(
        self, base: bytes, source_hash: hashlib._Hash, update: bytes, contents_at: int, reserve: int
    ) -> tuple[bytes, str] | None:
        contents_end = contents_at + 2 * reserve + 2  # includes the angle brackets
        start = len(base)
        total = start + len(update)
        first_length = start + contents_at
        second_start = start + contents_end
        byte_range = b"0 %d %d %d" % (first_length, second_start, total - second_start)
        byte_range_at = update.index(b"/ByteRange [") + len(b"/ByteRange [")
        update = (
            update[:byte_range_at] + byte_range.ljust(_BYTE_RANGE_WIDTH) + update[byte_range_at + _BYTE_RANGE_WIDTH :]
        )
        ranges_hash = source_hash.copy()
        ranges_hash.update(memoryview(update)[:contents_at])
        ranges_hash.update(memoryview(update)[contents_end:])
        timestamp = self.timestamper.timestamp if self.timestamper is not None else None
        cms = self.template.build(ranges_hash.digest(), timestamp)
        if len(cms) > reserve:
            if self.timestamper is None:  # pragma: no cover - the reserve is computed from the template
                raise SigningUnavailable("The signature container is larger than expected.")
            self.timestamper.reserve = len(cms) - self.template.size_without_timestamp + 1024
            return None
        signed_update = update[: contents_at + 1] + cms.hex().encode("ascii") + update[contents_at + 1 + 2 * len(cms) :]
        output_hash = source_hash.copy()
        output_hash.update(signed_update)
        return base + signed_update, output_hash.hexdigest()


def _array_items(array: pikepdf.Array, encode: StringEncoder) -> bytes:
    return b" ".join(serialize(item, encode) for item in array)


def _dictionary_with(
    dictionary: pikepdf.Dictionary, encode: StringEncoder, changes: dict[str, bytes | None]
) -> bytes:
    """Serialise ``dictionary`` with the entries in ``changes`` replaced or added (raw syntax), or
    removed (``None``)."""
    parts = [b"<<"]
    for key, value in dictionary.items():
        if key in changes:
            continue
        parts.append(pikepdf.Name(key).unparse())
        parts.append(serialize(value, encode))
    for key, raw in changes.items():
        if raw is None:
            continue
        parts.append(pikepdf.Name(key).unparse())
        parts.append(raw)
    parts.append(b">>")
    return b" ".join(parts)


def _patched_header(data: bytes) -> bytes:
    """``data`` with the header version set to 1.7 (same length, so all offsets stay valid)."""
    if data[5:6] == b"1" and data[6:7] == b"." and data[7:8].isdigit() and not data[8:9].isdigit():
        return data[:5] + UPGRADE_TO_VERSION.encode("ascii") + data[8:]
    return data
