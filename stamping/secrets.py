"""Document passwords at rest: sealed with a key derived from the project secret (Fernet)."""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet
from django.conf import settings


def _fernet() -> Fernet:
    key = hashlib.sha256(f"{settings.SECRET_KEY}:document-passwords".encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def seal(password: str | None) -> bytes | None:
    return None if not password else _fernet().encrypt(password.encode())


def unseal(sealed: bytes | memoryview | None) -> str | None:
    return None if not sealed else _fernet().decrypt(bytes(sealed)).decode()
