"""Host -> channel lookups, cached in-process for a few seconds (one query less per request).

The cache also remembers, expired or not, which channel a host was served as last: an error page can
say whose site it is while the database that would tell is down.
"""

from __future__ import annotations

import time

CACHE_SECONDS = 10.0
_cache: dict[str, tuple[float, object]] = {}


def cached(hostname: str):
    """The channel of ``hostname`` if looked up less than ``CACHE_SECONDS`` ago, else None."""
    hit = _cache.get(hostname)
    return hit[1] if hit and hit[0] > time.monotonic() else None


def remember(hostname: str, tenant) -> None:
    _cache[hostname] = (time.monotonic() + CACHE_SECONDS, tenant)


def forget() -> None:
    _cache.clear()


def last_known(hostname: str):
    """The channel ``hostname`` was served as the last time it was looked up (None if never)."""
    hit = _cache.get(hostname)
    return hit[1] if hit else None
