"""Production settings refuse self-enrolment of a second factor (a subprocess each: settings load once)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENV = {
    "DJANGO_SETTINGS_MODULE": "gateway.settings.production",
    "DJANGO_SECRET_KEY": "x" * 50,
    "DATABASE_URL": "postgres://nobody@127.0.0.1:1/none",
    "REDIS_URL": "redis://127.0.0.1:1/0",
    "PATH": "/usr/bin:/bin",
}


@pytest.mark.parametrize(("self_enrol", "starts"), [("0", True), ("1", False)])
def test_production_will_not_start_with_self_enrolment(self_enrol, starts):
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); print('started')"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env=ENV | {"GATEWAY_BACKOFFICE_OTP_SELF_ENROL": self_enrol},
    )  # fmt: skip
    assert (result.returncode == 0) is starts, result.stderr[-2000:]
    if not starts:
        assert "GATEWAY_BACKOFFICE_OTP_SELF_ENROL must be off in production" in result.stderr
