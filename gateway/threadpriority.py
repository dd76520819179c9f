"""One web thread's CPU priority, lowered for one request and given back when it ends.

``gateway.bulkhead`` serves a channel it is refusing (one that wants more than its share of the
threads) on a thread of lower priority, so that on a busy machine the other channels' requests get
the CPU first. A priority is per thread on Linux (``setpriority`` on the thread id), so the other
threads of the process, serving other channels, keep theirs.

Lowering a thread's priority (raising its nice value) is always allowed. Giving it back is not: it
needs root, ``CAP_SYS_NICE``, or an ``RLIMIT_NICE`` of at least ``20 - nice`` (``LimitNICE=+0`` in
a systemd unit, ``ulimits: nice: 20`` in compose; ``deploy/`` sets both). Without that right a thread
lowered once would serve every later request, of any channel, at the lower priority. So
:func:`lowered` does nothing until a throwaway thread has shown, once per process, that a thread of
this process can go down and come back (:func:`allowed`).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import threading
from collections.abc import Iterator

log = logging.getLogger(__name__)

NICEST = 19  # the lowest priority a nice value gives

_allowed: bool | None = None  # None: not probed yet in this process
_probe_lock = threading.Lock()


def _round_trip() -> bool:
    """On the calling thread: down one step and back. True if it came back."""
    tid = threading.get_native_id()
    try:
        base = os.getpriority(os.PRIO_PROCESS, tid)
        if base >= NICEST:
            return False  # nothing lower to go to
        os.setpriority(os.PRIO_PROCESS, tid, base + 1)
        os.setpriority(os.PRIO_PROCESS, tid, base)
        return os.getpriority(os.PRIO_PROCESS, tid) == base
    except (OSError, AttributeError):  # not permitted to come back, or not a platform with thread ids
        return False


def _probe() -> bool:
    """The round trip on a thread of its own, which is thrown away whatever happens to its priority."""
    result: list[bool] = []
    probe = threading.Thread(target=lambda: result.append(_round_trip()), name="priority-probe", daemon=True)
    probe.start()
    probe.join()
    return bool(result and result[0])


def allowed() -> bool:
    """May this process lower a thread's priority and give it back? Probed once, then remembered."""
    global _allowed
    if _allowed is None:
        with _probe_lock:
            if _allowed is None:
                _allowed = _probe()
                if not _allowed:
                    log.info(
                        "thread priorities stay as they are: this process may not give a lowered one back "
                        "(needs RLIMIT_NICE, e.g. systemd LimitNICE=+0, or CAP_SYS_NICE)"
                    )
    return _allowed


def forget() -> None:
    """Probe again on the next use (tests)."""
    global _allowed
    with _probe_lock:
        _allowed = None


@contextlib.contextmanager
def lowered(by: int) -> Iterator[bool]:
    """Run the block on this thread with its nice value ``by`` higher (at most 19), then give it back.
    Yields whether the priority was lowered; with ``by <= 0``, or where it could not be given back, it
    is not."""
    if by <= 0 or not allowed():
        yield False
        return
    tid = threading.get_native_id()
    try:
        base = os.getpriority(os.PRIO_PROCESS, tid)
        _set_without_the_gil(tid, min(NICEST, base + by))
    except OSError:
        yield False
        return
    try:
        yield True
    finally:
        _give_back(tid, base)


def _set_without_the_gil(tid: int, nice: int) -> None:
    """``os.setpriority`` for one thread, called with the GIL released (a ``ctypes`` call of libc's).

    Lowering the running thread's priority lets the kernel take the CPU from it at once, for a task of
    normal priority that is waiting. ``os.setpriority`` holds the GIL through the call, so the thread
    was preempted holding it, and every other thread of its process (the other channels' requests
    among them) waited for a thread that now runs last. Seen in ``bench/surge.py``: a sampling of the
    web processes' GIL holder (py-spy ``--gil``) found it on the ``os.setpriority`` line in 3.4 % of
    the samples of the hold. Through ``ctypes`` the GIL is released for the call, and the lowered
    thread waits for it again at the lowered priority, as it should."""
    if _setpriority is None:
        os.setpriority(os.PRIO_PROCESS, tid, nice)
        return
    if _setpriority(os.PRIO_PROCESS, tid, nice) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _libc_setpriority():
    """libc's ``setpriority``, or None where it cannot be loaded (``os.setpriority`` is used then)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        function = libc.setpriority
    except (OSError, AttributeError, TypeError):
        return None
    function.argtypes = (ctypes.c_int, ctypes.c_uint, ctypes.c_int)
    function.restype = ctypes.c_int
    return function


_setpriority = _libc_setpriority()


def _give_back(tid: int, base: int) -> None:
    global _allowed
    try:
        os.setpriority(os.PRIO_PROCESS, tid, base)
    except OSError:  # the right went away after the probe (a changed limit): lower nothing from now on
        _allowed = False
        log.error("could not give thread %s its priority back; thread priorities are no longer lowered", tid)
