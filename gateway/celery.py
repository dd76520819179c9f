"""The Celery application.

Tasks that touch a channel's data run in that channel's schema: they take ``schema_name`` as an
argument and enter it explicitly (see ``gateway.tasks.tenant_task``); none falls back silently to
the public schema.
"""

import logging
import os
import threading
import time

from celery import Celery
from celery.signals import task_postrun, task_prerun, worker_init, worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway.settings.local")

logger = logging.getLogger(__name__)

app = Celery("gateway")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def _run_below_request_handling(**_kwargs) -> None:
    """Worker processes give way to the web processes on a shared CPU: a surge of stamping must not
    slow down request handling. Stamping still gets every cycle the web tier does not use.

    - ``WORKER_SCHED_IDLE`` (on by default): the process runs under ``SCHED_IDLE``. A web thread that
      wakes (a database answer, a request) takes the CPU from it at once. A nice value alone does not
      do that under the kernel's EEVDF scheduler: the waking thread may wait out the niced process's
      slice, and a request wakes some 25 times (docs/stamping.md, "CPU: request handling first").
    - ``WORKER_NICE`` (10): the nice value, kept where ``SCHED_IDLE`` is off or not permitted.

    Both act only inside the process's CPU group. Where web and worker run in groups of their own
    (systemd services, containers, autogroups of separate sessions), the group's weight decides:
    ``deploy/`` sets it."""
    from django.conf import settings

    increment = int(getattr(settings, "WORKER_NICE", 0))
    if increment > 0:
        try:
            os.nice(increment)
        except OSError:  # pragma: no cover - not permitted here: run at the normal priority
            pass
    if getattr(settings, "WORKER_SCHED_IDLE", False):
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        except (OSError, AttributeError):  # pragma: no cover - not Linux, or not permitted: the nice value
            pass


@worker_init.connect
def _count_in_files(**_kwargs) -> None:
    """Before the pool starts: this worker instance's processes count their metrics in a directory of
    its own under ``METRICS_DIR``, emptied now; ``/metrics`` of a web instance sharing it adds them up."""
    from django.conf import settings

    from kernel.metrics import instance_directory

    directory = instance_directory(settings.METRICS_DIR, role="worker")
    if settings.WORKER_METRICS_BIND:  # a host without a web instance: this worker answers /metrics itself
        from gateway.metrics import start_worker_listener

        start_worker_listener(settings.WORKER_METRICS_BIND, str(directory))


@worker_init.connect
def _build_stamp_fonts_before_forking(**_kwargs) -> None:
    """The stamp's fonts are pure data: built once in the worker's parent, every pool child starts
    with them instead of building its own on its first stamp (issuer/stamp/fonts.py). The engine
    itself (keys, a PKCS#11 session) is never built before a fork."""
    from issuer.stamp.fonts import stamp_fonts

    stamp_fonts()


@worker_process_init.connect
def _build_the_engine_before_the_first_stamp(**_kwargs) -> None:
    """A pool child of a worker that consumes the ``stamping`` queue builds its engine (loads and
    checks the key, or opens the token's session) as it starts, in a thread of its own: built on the
    first stamp, it cost that stamp about 80 ms of CPU here (a token's session may take longer), and
    the quiet channel's first job after a worker (re)start waited for it. A stamp that comes sooner waits for
    the same build (``get_engine`` builds once, under a lock); a build that fails is tried again by
    the first stamp, which answers ``signing_unavailable`` as before. Never in the worker's parent:
    a key or a token session must not be shared across a fork."""
    if "stamping" not in (app.amqp.queues.consume_from or {}):
        return
    threading.Thread(target=_build_engine, name="engine-build", daemon=True).start()


def _build_engine() -> None:
    from issuer.engine import get_engine

    started = time.process_time()
    try:
        get_engine()
    except Exception:  # noqa: BLE001 - the first stamp tries again and answers for it
        logger.warning("the stamping engine could not be built; the first stamp will try again", exc_info=True)
        return
    logger.info("stamping engine ready (%.0f ms of CPU)", (time.process_time() - started) * 1000)


@worker_process_init.connect
def _follow_metrics_directory(**_kwargs) -> None:
    from kernel.metrics import follow_environment

    follow_environment()


@task_prerun.connect
@task_postrun.connect
def _close_old_connections(sender=None, **_kwargs) -> None:
    """A task is a request to the database: before and after it, a connection older than CONN_MAX_AGE,
    or one that had an error and no longer answers, is closed (a new one opens when needed), as Django
    does around each web request. The others are kept (``CELERY_DB_REUSE_MAX``). A task run eagerly
    runs inside its caller's work (and transaction), which it must leave alone, as Celery's fix-up does."""
    if getattr(getattr(sender, "request", None), "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()
