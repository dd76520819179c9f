"""Production never writes invitation and reset links to logs, files or memory: it refuses a mail
backend that does not deliver, and sends by SMTP when none is named."""

from __future__ import annotations

import pytest

from tests.gateway.test_production_settings import assert_one_line_refusal, documented_environment, run


@pytest.mark.parametrize("backend", ["console", "filebased", "locmem", "dummy"])
def test_production_refuses_a_mail_backend_that_does_not_deliver(tmp_path, backend):
    env = documented_environment() | {"GATEWAY_EMAIL_BACKEND": f"django.core.mail.backends.{backend}.EmailBackend"}
    assert_one_line_refusal(run(env, tmp_path / "data", "check"), "GATEWAY_EMAIL_BACKEND")


def test_production_sends_by_smtp_by_default(tmp_path):
    code = "from django.conf import settings; print(settings.EMAIL_BACKEND)"
    result = run(documented_environment(), tmp_path / "data", "shell", "-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "django.core.mail.backends.smtp.EmailBackend"
