"""Reads of the brownout state: the open pauses (for pages and the API) and the fast check of the
request path (:func:`pause_for`), which reads a per-process copy of the open pauses, refreshed every
``BROWNOUT_CACHE_SECONDS`` (one query per process per period, none per request)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import QuerySet

from stamping.brownout.models import Brownout

# Lowest priority last: pausing a class pauses every class after it with it.
ORDER = (Brownout.Kind.STAMPING, Brownout.Kind.PURCHASES, Brownout.Kind.REGISTRATIONS)
RANK = {kind.value: i for i, kind in enumerate(ORDER)}


@dataclass(frozen=True)
class Pause:
    kind: str  # the class paused (may be a higher one than the class asked about)
    channel_id: int | None  # None: every channel
    scope: str  # "all" or the channel's code
    scope_name: str  # "every channel" or the channel's name
    reason: str
    automatic: bool
    started_at: datetime
    started_by: str

    @property
    def label(self) -> str:
        return Brownout.Kind(self.kind).label

    def as_json(self) -> dict:
        from kernel.timestamps import utc_timestamp

        return {
            "class": self.kind,
            "scope": self.scope,
            "reason": self.reason,
            "automatic": self.automatic,
            "since": utc_timestamp(self.started_at),
        }


def open_brownouts() -> QuerySet[Brownout]:
    """Every pause in force, newest first, with its channel."""
    return Brownout.objects.filter(ended_at__isnull=True).select_related("channel")


def recent_brownouts(limit: int = 20) -> list[Brownout]:
    return list(Brownout.objects.filter(ended_at__isnull=False).select_related("channel")[:limit])


def open_brownout(*, kind: str, channel_id: int | None) -> Brownout | None:
    return open_brownouts().filter(kind=kind, channel_id=channel_id).first()


_lock = threading.Lock()
_cached: tuple[float, tuple[Pause, ...]] | None = None


def forget() -> None:
    """Drop this process's copy (after a change made here; tests between cases)."""
    global _cached
    with _lock:
        _cached = None


def _load() -> tuple[Pause, ...]:
    return tuple(
        Pause(
            kind=b.kind,
            channel_id=b.channel_id,
            scope=b.scope,
            scope_name="every channel" if b.channel_id is None else b.channel.name,
            reason=b.reason,
            automatic=b.automatic,
            started_at=b.started_at,
            started_by=b.started_by,
        )
        for b in open_brownouts()
    )


def _pauses(fresh: bool = False) -> tuple[Pause, ...]:
    global _cached
    if fresh:  # inside a change's transaction: read it, but do not cache what may still roll back
        return _load()
    now = time.monotonic()
    cached = _cached
    if cached is not None and cached[0] > now:
        return cached[1]
    pauses = _load()
    with _lock:
        _cached = (now + settings.BROWNOUT_CACHE_SECONDS, pauses)
    return pauses


def all_pauses() -> list[Pause]:
    """Every pause in force (the per-process copy), highest class first, every-channel ones first."""
    return sorted(_pauses(), key=lambda p: (RANK[p.kind], p.channel_id is not None, p.scope))


def pauses_for(channel_id: int, *, fresh: bool = False) -> list[Pause]:
    """The pauses in force for a channel (its own and every channel's), highest class first."""
    return sorted(
        (p for p in _pauses(fresh) if p.channel_id in (None, channel_id)),
        key=lambda p: (RANK[p.kind], p.channel_id is not None),
    )


def pause_for(*, kind: str, channel_id: int, fresh: bool = False) -> Pause | None:
    """The pause that refuses ``kind`` on this channel, if any: one of ``kind`` itself or of a higher
    class (for this channel or for all)."""
    rank = RANK[kind]
    for pause in pauses_for(channel_id, fresh=fresh):
        if RANK[pause.kind] <= rank:
            return pause
    return None


def accepting(channel_id: int, *, fresh: bool = False) -> dict[str, bool]:
    """Per class, whether the channel takes new work of it now."""
    return {kind.value: pause_for(kind=kind.value, channel_id=channel_id, fresh=fresh) is None for kind in ORDER}
