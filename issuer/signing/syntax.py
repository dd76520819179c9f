"""PDF object syntax for the incremental update: strings, dates, numbers, re-serialisation of
existing objects read with pikepdf, and encryption of new strings and streams (AES-128/256)."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Callable
from decimal import Decimal

import pikepdf
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

StringEncoder = Callable[[bytes], bytes]

_LITERAL_ESCAPES = {ord("\\"): b"\\\\", ord("("): b"\\(", ord(")"): b"\\)", ord("\r"): b"\\r", ord("\n"): b"\\n"}


def literal(data: bytes) -> bytes:
    """A PDF literal string ``( ... )`` holding ``data`` (escaped, no encryption)."""
    if not any(byte in _LITERAL_ESCAPES for byte in data):
        return b"(" + data + b")"
    return b"(" + b"".join(_LITERAL_ESCAPES.get(byte, bytes((byte,))) for byte in data) + b")"


def text_bytes(text: str) -> bytes:
    """Encode a PDF text string: printable ASCII as is, anything else as UTF-16BE with BOM."""
    if text.isascii() and text.isprintable():
        return text.encode("ascii")
    return b"\xfe\xff" + text.encode("utf-16-be")


def pdf_date(moment: dt.datetime) -> str:
    """``D:YYYYMMDDHHmmSS+HH'mm'`` for an aware datetime (ISO 32000-1, 7.9.4)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("signing time must be timezone-aware")
    offset = moment.utcoffset() or dt.timedelta(0)
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    minutes = abs(minutes)
    if minutes == 0:
        return moment.strftime("D:%Y%m%d%H%M%SZ")
    return moment.strftime("D:%Y%m%d%H%M%S") + f"{sign}{minutes // 60:02d}'{minutes % 60:02d}'"


def number(value: float) -> bytes:
    if float(value).is_integer():
        return b"%d" % int(value)
    return (f"{value:.4f}".rstrip("0").rstrip(".")).encode("ascii")


def serialize(obj: object, string: StringEncoder) -> bytes:
    """PDF syntax for an object read with pikepdf; indirect children stay references.

    Strings go through ``string`` so that they can be re-encrypted for encrypted documents.
    """
    if isinstance(obj, pikepdf.Object) and obj.is_indirect:
        return b"%d %d R" % obj.objgen
    if isinstance(obj, pikepdf.Dictionary):
        parts = [b"<<"]
        for key, value in obj.items():
            parts.append(pikepdf.Name(key).unparse())
            parts.append(serialize(value, string))
        parts.append(b">>")
        return b" ".join(parts)
    if isinstance(obj, pikepdf.Array):
        return b"[" + b" ".join(serialize(item, string) for item in obj) + b"]"
    if isinstance(obj, pikepdf.String):
        return string(bytes(obj))
    if isinstance(obj, bool):
        return b"true" if obj else b"false"
    if isinstance(obj, int):
        return b"%d" % obj
    if isinstance(obj, Decimal):
        # A number read from the document is written back exactly as it was: rounding an existing
        # page's /MediaBox would be a change that validators hold against earlier signatures.
        text = format(obj, "f")
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        return (text if text not in ("", "-", "-0") else "0").encode()
    if isinstance(obj, float):
        return number(obj)
    if obj is None:
        return b"null"
    if isinstance(obj, pikepdf.Object):
        return obj.unparse()
    raise TypeError(f"cannot serialise {type(obj).__name__}")


class ObjectCipher:
    """Encrypts strings and streams of new objects with the document's file key.

    AES-128 (V4/R4, AESV2): per-object key MD5(file key + object number + generation + "sAlT").
    AES-256 (V5/R6, AESV3): the file key itself.  Both use CBC with a random IV prepended.
    """

    def __init__(self, file_key: bytes, revision: int) -> None:
        self._file_key = file_key
        self._revision = revision

    def _key(self, number: int, generation: int) -> bytes:
        if self._revision >= 5:
            return self._file_key
        material = self._file_key + number.to_bytes(3, "little") + generation.to_bytes(2, "little") + b"sAlT"
        return hashlib.md5(material, usedforsecurity=False).digest()[: min(len(self._file_key) + 5, 16)]

    def encrypt(self, number: int, generation: int, data: bytes) -> bytes:
        iv = os.urandom(16)
        padder = padding.PKCS7(128).padder()
        padded = padder.update(data) + padder.finalize()
        encryptor = Cipher(algorithms.AES(self._key(number, generation)), modes.CBC(iv)).encryptor()
        return iv + encryptor.update(padded) + encryptor.finalize()

    def string_encoder(self, number: int, generation: int) -> StringEncoder:
        return lambda data: b"<" + self.encrypt(number, generation, data).hex().encode("ascii") + b">"
