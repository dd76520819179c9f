"""A real worker keeps its database connection from task to task (``CELERY_DB_REUSE_MAX``, and
``gateway.celery`` closing only old or broken connections, as Django does around a request).

Celery's Django fix-up otherwise closes every connection before and after each task: each task then
started a PostgreSQL backend of its own, and in a surge the lanes run hundreds of short tasks a second.
"""

from __future__ import annotations

import time

from django.core.cache import cache
from django.db import connection

from gateway.celery import app
from gateway.tasks import HEARTBEAT_KEY
from tests.live import private_broker, start_worker

TASKS = 30


def _sessions() -> int:
    """Sessions ever opened on this database (PostgreSQL's own count)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        return cursor.fetchone()[0]


def test_a_worker_runs_many_database_tasks_on_one_connection(live_db, tmp_path):
    env = private_broker(database=10)
    broker_connection = app.connection_for_write(env["CELERY_BROKER_URL"])
    broker = broker_connection.default_channel.client
    broker.flushdb()
    cache.delete(HEARTBEAT_KEY)
    # Each sweep reads the channels and, in each channel, its jobs: every task uses the database. The
    # heartbeat after them (same queue, one worker process) says when they have all run.
    for _ in range(TASKS):
        app.send_task("gateway.stamping.resume_stale", connection=broker_connection, queue="stamping")
    app.send_task("gateway.tasks.heartbeat", connection=broker_connection, queue="stamping")

    before = _sessions()
    worker = start_worker(tmp_path, name="connections", queues="stamping", concurrency=1, env=env)
    try:
        deadline = time.monotonic() + 120
        while cache.get(HEARTBEAT_KEY) is None:
            assert time.monotonic() < deadline, "the tasks never ran:\n" + worker.output()
            time.sleep(0.1)
    finally:
        worker.stop()  # its connections end: their sessions are all counted now
        broker.flushdb()
        broker_connection.release()
    opened = _sessions() - before
    # One connection for the pool process (and one for the worker's own start-up at most), not one per
    # task: with the fix-up closing them, this was more than TASKS.
    assert 1 <= opened <= 4, (opened, worker.output())
