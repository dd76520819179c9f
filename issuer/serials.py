"""e-Meterai serial numbers.

A serial is 22 upper-case alphanumeric characters: 21 characters drawn uniformly from the 36
symbols ``0-9A-Z`` with :mod:`secrets` followed by one check character computed with the
ISO/IEC 7064 pure system MOD 37-2.  That system works modulo the prime 37 with position weights
``2**k``, which are pairwise distinct modulo 37, so it detects *every* single mistyped character
and *every* transposition of two adjacent characters.  Its 37th check symbol (``*``) is not
alphanumeric: payloads whose check value would be ``*`` are simply drawn again, which costs
1/37 of the key space (about 108.5 bits of randomness remain).  Both detection properties are
tested exhaustively on samples in ``tests/issuer/test_serials.py``.
"""

from __future__ import annotations

import secrets

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
SERIAL_LENGTH = 22
_RANDOM_LENGTH = SERIAL_LENGTH - 1
_MODULUS = 37
_RADIX = 2
_VALUES = {char: value for value, char in enumerate(ALPHABET)}


def _fold(payload: str) -> int:
    product = 0
    for char in payload:
        product = ((product + _VALUES[char]) * _RADIX) % _MODULUS
    return product


def _check_value(payload: str) -> int:
    """ISO 7064 MOD 37-2 check value (0-36) of ``payload``; 36 is the symbol ``*``."""
    return (_MODULUS + 1 - _fold(payload)) % _MODULUS


_PAYLOADS = len(ALPHABET) ** _RANDOM_LENGTH


def _random_payload() -> str:
    """21 symbols drawn uniformly: one uniform number below 36**21, written in base 36 (one read of
    the OS's random source, where a ``secrets.choice`` per symbol made about forty)."""
    number = secrets.randbelow(_PAYLOADS)
    symbols = []
    for _ in range(_RANDOM_LENGTH):
        number, digit = divmod(number, len(ALPHABET))
        symbols.append(ALPHABET[digit])
    return "".join(symbols)


def new_serial() -> str:
    """A fresh random serial with its check character."""
    while True:
        payload = _random_payload()
        check = _check_value(payload)
        if check < len(ALPHABET):
            return payload + ALPHABET[check]


def normalize_serial(value: str) -> str:
    """Strip surrounding white space and upper-case, as people type serials from paper."""
    return value.strip().upper()


def is_valid_serial(value: str) -> bool:
    """True when ``value`` (already normalised) has the right shape and check character."""
    if len(value) != SERIAL_LENGTH or any(char not in _VALUES for char in value):
        return False
    return (_fold(value[:-1]) + _VALUES[value[-1]]) % _MODULUS == 1
