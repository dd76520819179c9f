"""Production refuses a /metrics open to everyone, and the deployment's example environment
(deploy/gateway.env.example, placeholders filled in) starts clean under ``check --deploy``."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import pytest

from tests.gateway.test_production_settings import (
    assert_one_line_refusal,
    assert_started_nothing,
    documented_environment,
    run,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def data_dir(tmp_path) -> Path:
    return tmp_path / "data"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("METRICS_TOKEN", "short-token"),
        ("METRICS_ALLOWED_NETWORKS", "10.0.0.0/8,0.0.0.0/0"),
        ("METRICS_ALLOWED_NETWORKS", "::/0"),
        ("METRICS_ALLOWED_NETWORKS", "not-a-network"),
    ],
)
def test_a_metrics_endpoint_open_to_anyone_is_refused(data_dir, variable, value):
    env = documented_environment() | {variable: value}
    assert_one_line_refusal(run(env, data_dir, "check"), variable)
    assert_started_nothing(data_dir)


def test_the_deployment_example_environment_passes_check_deploy(data_dir):
    env = {}
    for line in (ROOT / "deploy" / "gateway.env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            env[name] = re.sub(r"<[^>]*>", lambda _: secrets.token_urlsafe(50), value)
    assert not any(re.search(r"[<>]", value) for value in env.values())
    result = run(env, data_dir, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert_started_nothing(data_dir)
