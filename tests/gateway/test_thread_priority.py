"""Thread priorities in the web tier: a channel the bulkhead is refusing is served on a thread of lower
CPU priority, given back when the answer leaves; the other channels' requests keep theirs. A process
that may not give a lowered priority back lowers none."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from gateway import bulkhead, threadpriority
from kernel import metrics

ROOT = Path(__file__).resolve().parents[2]


def _nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@pytest.fixture
def may_give_back():
    threadpriority.forget()
    if not threadpriority.allowed():
        pytest.skip("this test process may not give a lowered priority back (no CAP_SYS_NICE, RLIMIT_NICE)")
    yield
    threadpriority.forget()


def test_a_block_runs_lowered_and_the_thread_gets_its_priority_back(may_give_back):
    base = _nice()
    with threadpriority.lowered(5) as done:
        assert done and _nice() == min(19, base + 5)
    assert _nice() == base
    with pytest.raises(RuntimeError), threadpriority.lowered(5):
        raise RuntimeError("the view failed")
    assert _nice() == base  # given back on the way out of an error too
    with threadpriority.lowered(0) as done:
        assert not done and _nice() == base


def _in_a_process_of_its_own(rlimit_nice: int) -> str:
    """``gateway.threadpriority`` in a fresh interpreter with ``RLIMIT_NICE`` set to ``rlimit_nice``,
    and, when this test runs as root, as the unprivileged user ``nobody`` (root may always)."""
    script = textwrap.dedent(
        f"""
        import os, resource, threading
        from gateway import threadpriority  # imported first: nobody may not read this interpreter's files
        try:
            resource.setrlimit(resource.RLIMIT_NICE, ({rlimit_nice}, {rlimit_nice}))
        except ValueError:  # a hard limit below it, and no CAP_SYS_RESOURCE to raise it
            print("cannot set"); raise SystemExit
        if os.geteuid() == 0:
            os.setgroups([]); os.setgid(65534); os.setuid(65534)
        tid = threading.get_native_id()
        before = os.getpriority(os.PRIO_PROCESS, tid)
        with threadpriority.lowered(10) as done:
            inside = os.getpriority(os.PRIO_PROCESS, tid)
        after = os.getpriority(os.PRIO_PROCESS, tid)
        print(threadpriority.allowed(), done, before, inside, after)
        """
    )
    done = subprocess.run(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_without_the_right_to_give_it_back_nothing_is_lowered():
    """RLIMIT_NICE 0, the default for a service: a lowered thread could never come back, so the process
    lowers none, and every later request of any channel keeps its priority."""
    allowed, done, before, inside, after = _in_a_process_of_its_own(0).split()
    assert (allowed, done) == ("False", "False")
    assert before == inside == after


def test_with_rlimit_nice_a_thread_is_lowered_and_given_back():
    """RLIMIT_NICE 20 (systemd ``LimitNICE=+0``, compose ``ulimits: nice: 20``), as an unprivileged user."""
    answer = _in_a_process_of_its_own(20)
    if answer == "cannot set":
        pytest.skip("this machine's hard RLIMIT_NICE is below 20 and it may not raise it")
    allowed, done, before, inside, after = answer.split()
    assert (allowed, done) == ("True", "True")
    assert int(inside) == min(19, int(before) + 10) and after == before


@pytest.fixture
def alpha_refused_lately(settings, may_give_back):
    settings.WEB_THREADS = 4
    settings.WEB_CHANNEL_SHARE = 0.5
    settings.WEB_BUSY_NICE = 7
    bulkhead.reset()
    now = time.monotonic()
    bulkhead._last_seen["beta"] = now + 3600  # beta is being served here
    bulkhead._shed[("alpha", "stamping")] = now  # and alpha was refused just now: it wants more than its share
    yield
    bulkhead.reset()


@pytest.mark.django_db
def test_a_channel_refused_lately_is_served_at_a_lower_priority_and_the_others_are_not(
    alpha_refused_lately, client_for, monkeypatch
):
    from faces.storefront import stamps

    seen: list[int] = []
    original = stamps.DocumentTypesApi.get

    def noting(self, request, *args, **kwargs):
        seen.append(_nice())
        return original(self, request, *args, **kwargs)

    monkeypatch.setattr(stamps.DocumentTypesApi, "get", noting)
    base = _nice()
    counted = metrics.WEB_LOWERED.labels("alpha")
    before = counted._value.get()
    assert client_for("alpha").get("/api/v1/document-types").status_code == 200
    assert client_for("beta").get("/api/v1/document-types").status_code == 200
    assert seen == [min(19, base + 7), base]
    assert counted._value.get() == before + 1  # the operator's figure (docs/operations.md, Metrics)
    assert _nice() == base  # the thread serves its next request at its own priority

    bulkhead._shed.clear()  # alpha no longer refused: served as anyone
    assert client_for("alpha").get("/api/v1/document-types").status_code == 200
    assert seen[-1] == base


def test_a_thread_is_lowered_through_libc_with_the_gil_let_go_and_a_failure_is_an_oserror():
    """The lowering call goes through libc by ``ctypes`` (which lets the GIL go for the call: a thread
    the kernel preempts as it lowers itself does not hold every other thread of its process), sets the
    thread's nice value, and reports a refusal as ``os.setpriority`` would."""
    import errno

    assert threadpriority._setpriority is not None  # Linux: the GIL-free path is the one taken
    parked = threading.Event()
    release = threading.Event()
    tids: list[int] = []

    def park():
        tids.append(threading.get_native_id())
        parked.set()
        release.wait(30)

    thread = threading.Thread(target=park, daemon=True)
    thread.start()
    try:
        assert parked.wait(30)
        base = os.getpriority(os.PRIO_PROCESS, tids[0])
        threadpriority._set_without_the_gil(tids[0], min(19, base + 3))  # lowering is always allowed
        assert os.getpriority(os.PRIO_PROCESS, tids[0]) == min(19, base + 3)
        assert _nice() != os.getpriority(os.PRIO_PROCESS, tids[0]) or base + 3 > 19  # only that thread
    finally:
        release.set()
        thread.join(30)
    with pytest.raises(OSError) as refused:
        threadpriority._set_without_the_gil(2**22 + 12345, 5)  # above the kernel's largest pid: no such thread
    assert refused.value.errno == errno.ESRCH
