"""gateway/gunicorn_conf.py's hooks, in gunicorn's order, in a fresh interpreter as a master would run them."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

MASTER = """
import json, os, types
os.environ.pop("WEB_THREADS", None)
os.environ["GATEWAY_PROBE_BIND"] = "off"
from gateway import gunicorn_conf as conf
log = types.SimpleNamespace(info=lambda *a: None, error=lambda *a: None)
cfg = types.SimpleNamespace(worker_class_str="gthread", threads=__THREADS__)
server = types.SimpleNamespace(cfg=cfg, log=log, WORKERS={})
conf.on_starting(server)
conf.when_ready(server)
conf.post_fork(server, None)  # a worker inherits the master's loaded settings
from django.conf import settings
from gateway import bulkhead
print(json.dumps({"threads": settings.WEB_THREADS, "cap": bulkhead.channel_cap()}))
"""


def _run_master(threads: int, tmp_path) -> dict:
    env = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "gateway.settings.test"}
    env["GATEWAY_METRICS_DIR"] = str(tmp_path)
    result = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", MASTER.replace("__THREADS__", str(threads))],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_workers_see_the_real_thread_count_so_the_bulkhead_limits_a_channel(tmp_path):
    seen = _run_master(8, tmp_path)
    assert seen["threads"] == 8
    assert seen["cap"] == 2  # a quarter of 8 threads (WEB_CHANNEL_SHARE), not "no limit"
