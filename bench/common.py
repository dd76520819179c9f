"""What every benchmark does first: Django set up on a database whose schemas are migrated."""

from __future__ import annotations


def setup_migrated() -> None:
    """``django.setup()`` and ``migrate_schemas`` (a no-op when up to date), so a benchmark runs on a fresh clone."""
    import django

    from gateway.embedded import start_if_unconfigured

    start_if_unconfigured()
    django.setup()
    from django.core.management import call_command

    call_command("migrate_schemas", "--shared", verbosity=0)
    call_command("migrate_schemas", verbosity=0)


def multipart_body(fields: dict, document: bytes, *, filename: str = "document.pdf") -> tuple[bytes, str]:
    """A ``multipart/form-data`` body with ``fields`` and one PDF under ``document``; returns (body, content type).

    Built once per document by a load generator, so a request costs it only the send."""
    import secrets

    boundary = "bench" + secrets.token_hex(8)
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="document"; filename="{filename}"\r\n'
        "Content-Type: application/pdf\r\n\r\n".encode()
    )
    parts += [document, f"\r\n--{boundary}--\r\n".encode()]
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def quantile(values: list[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) of ``values`` by linear interpolation; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
