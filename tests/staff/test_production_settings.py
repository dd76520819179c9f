"""Production settings refuse self-enrolment of a second factor (a subprocess each: settings load once)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.gateway.test_production_settings import documented_environment

ROOT = Path(__file__).resolve().parents[2]
# The documented minimal production environment (docs/operations.md): only self-enrolment varies here.
ENV = documented_environment() | {"PATH": "/usr/bin:/bin"}


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
