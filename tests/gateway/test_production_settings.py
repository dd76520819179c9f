"""Production settings refuse development defaults, with one line naming the variable, and start no
embedded server. The minimal environment is the one documented in docs/operations.md."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def documented_environment() -> dict[str, str]:
    """The ``sh`` block under "Production: the minimal environment" in docs/operations.md, with each
    ``$(...)`` value (a secret read at deploy time) replaced by a fresh random one."""
    text = (ROOT / "docs" / "operations.md").read_text()
    section = text.split("## Production: the minimal environment", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL).group(1)
    env = {}
    for line in block.strip().splitlines():
        name, _, value = line.partition("=")
        env[name] = secrets.token_urlsafe(50) if value.startswith("$(") else value
    return env


@pytest.fixture
def data_dir(tmp_path) -> Path:
    return tmp_path / "data"


def run(env: dict[str, str], data_dir: Path, *args: str, program: tuple[str, ...] = ("manage.py",)):
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
    return subprocess.run(  # noqa: S603 - our own manage.py
        [sys.executable, *program, *args],
        cwd=ROOT,
        env={**base, "GATEWAY_DATA_DIR": str(data_dir), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_started_nothing(data_dir: Path) -> None:
    # The embedded servers live under the data directory: it is made by the first one to start.
    assert not data_dir.exists(), sorted(p.name for p in data_dir.iterdir())


def test_the_documented_minimal_environment_passes_check_deploy(data_dir):
    env = documented_environment()
    assert env["DJANGO_SETTINGS_MODULE"] == "gateway.settings.production"

    result = run(env, data_dir, "check", "--deploy", "--fail-level", "WARNING")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
    assert_started_nothing(data_dir)


REQUIRED = [
    "DJANGO_SECRET_KEY",
    "DATABASE_URL",
    "REDIS_URL",
    "DJANGO_ALLOWED_HOSTS",
    "ISSUER_HOST",
    "VERIFY_BASE_URL",
    "ISSUER_PKCS11_TOKEN_LABEL",
    "ISSUER_PKCS11_KEY_LABEL",
    "ISSUER_PKCS11_PIN",
]


def assert_one_line_refusal(result, variable: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith(f"manage.py check: {variable} "), lines[0]


@pytest.mark.parametrize("variable", REQUIRED)
def test_each_missing_variable_is_refused_in_one_line_naming_it(data_dir, variable):
    env = documented_environment()
    del env[variable]

    result = run(env, data_dir, "check", "--deploy")

    assert_one_line_refusal(result, variable)
    assert_started_nothing(data_dir)


def test_no_signing_key_at_all_is_refused(data_dir):
    env = {k: v for k, v in documented_environment().items() if not k.startswith("ISSUER_PKCS11_")}

    assert_one_line_refusal(run(env, data_dir, "check"), "ISSUER_PKCS11_MODULE")
    assert_started_nothing(data_dir)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("VERIFY_BASE_URL", "http://localhost:8000/v/"),  # the development default
        ("VERIFY_BASE_URL", "http://issuer.example.id/v/"),  # not https
        ("VERIFY_BASE_URL", "https://localhost/v/"),
        ("ISSUER_HOST", "localhost"),
    ],
)
def test_development_values_are_refused(data_dir, variable, value):
    env = documented_environment() | {variable: value}

    assert_one_line_refusal(run(env, data_dir, "check"), variable)


def file_key_environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in documented_environment().items() if not k.startswith("ISSUER_PKCS11_")}
    return env | extra


def test_a_file_key_needs_an_explicit_allowance(data_dir):
    pair = {"ISSUER_SIGNING_KEY": "/etc/emeterai/key.pem", "ISSUER_SIGNING_CERT": "/etc/emeterai/cert.pem"}

    assert_one_line_refusal(run(file_key_environment(**pair), data_dir, "check"), "ISSUER_SIGNING_ALLOW_FILE_KEY")
    p12 = {"ISSUER_SIGNING_PKCS12": "/etc/emeterai/issuer.p12"}
    assert_one_line_refusal(run(file_key_environment(**p12), data_dir, "check"), "ISSUER_SIGNING_ALLOW_FILE_KEY")
    half = {"ISSUER_SIGNING_KEY": "/etc/emeterai/key.pem", "ISSUER_SIGNING_ALLOW_FILE_KEY": "1"}
    assert_one_line_refusal(run(file_key_environment(**half), data_dir, "check"), "ISSUER_SIGNING_CERT")

    # The web processes verify with the certificate alone: a PKCS#12 file needs its certificate beside it.
    p12_alone = file_key_environment(**p12, ISSUER_SIGNING_ALLOW_FILE_KEY="1")
    assert_one_line_refusal(run(p12_alone, data_dir, "check"), "ISSUER_SIGNING_CERT")

    allowed = run(file_key_environment(**pair, ISSUER_SIGNING_ALLOW_FILE_KEY="1"), data_dir, "check")
    assert allowed.returncode == 0, allowed.stderr


SHOW_PROXY_HEADER = (
    "import django; django.setup(); from django.conf import settings; print(settings.SECURE_PROXY_SSL_HEADER)"
)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({}, "None"),  # no proxy declared: a client's X-Forwarded-Proto is not believed
        ({"GATEWAY_NUM_PROXIES": "1"}, "('HTTP_X_FORWARDED_PROTO', 'https')"),
        ({"DJANGO_TRUST_X_FORWARDED_PROTO": "1"}, "('HTTP_X_FORWARDED_PROTO', 'https')"),
    ],
)
def test_x_forwarded_proto_is_trusted_only_behind_a_declared_proxy(data_dir, extra, expected):
    result = run(documented_environment() | extra, data_dir, SHOW_PROXY_HEADER, program=("-c",))

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


@pytest.mark.parametrize("variable", ["ISSUER_HOST", "VERIFY_BASE_URL"])
def test_the_issuer_host_and_the_qr_host_must_be_allowed_hosts(data_dir, variable):
    value = {"ISSUER_HOST": "verify.example.org", "VERIFY_BASE_URL": "https://verify.example.org/v/"}[variable]
    env = documented_environment() | {variable: value}

    result = run(env, data_dir, "check")

    assert_one_line_refusal(result, "DJANGO_ALLOWED_HOSTS")
    assert f"({variable})" in result.stderr
