"""Every API module can be the first one a process imports (a worker or a command may start there)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "module", ["faces.storefront.stamps", "faces.storefront.views", "gateway.http.schema", "faces.storefront.urls"]
)
def test_module_imports_first(module):
    code = f"import django; django.setup(); import {module}"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={"DJANGO_SETTINGS_MODULE": "gateway.settings.test", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_importing_the_settings_starts_no_server(tmp_path):
    """Settings only read configuration: with no DATABASE_URL/REDIS_URL they name the embedded
    servers' sockets, and nothing is started until a command asks (manage.py, the test setup)."""
    data = tmp_path / "data"
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.DATABASES['default']['HOST']); print(settings.REDIS_URL)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={"DJANGO_SETTINGS_MODULE": "gateway.settings.test", "PATH": "/usr/bin:/bin", "GATEWAY_DATA_DIR": str(data)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    host, redis_url = result.stdout.split()
    assert host == str(data / "pg") and redis_url.startswith(f"unix://{data}/redis/redis.sock")
    assert not (data / "pg").exists() and not (data / "redis").exists()  # nothing was started
