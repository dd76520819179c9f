"""The few DER helpers the CMS template needs."""

from __future__ import annotations


def der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes((length,))
    encoded = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(encoded),)) + encoded


def tlv(tag: int, *body: bytes) -> bytes:
    """Encode a DER tag-length-value with ``body`` parts concatenated as the value."""
    value = b"".join(body)
    return bytes((tag,)) + der_length(len(value)) + value


SEQUENCE = 0x30
SET = 0x31
OCTET_STRING = 0x04
CONTEXT_0 = 0xA0  # [0] constructed
CONTEXT_1 = 0xA1  # [1] constructed
