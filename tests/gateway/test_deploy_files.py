"""What can be checked of deploy/ without Docker or promtool: the alert rules and the dashboard name only
series /metrics exposes; the compose file has its services, a separate migration step, configuration from
the environment only; the image is multi-stage, non-root and without compilers at run time; the systemd
units run commands that exist. ``docker compose config`` runs where Docker's compose plugin exists."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
TOKEN = "test-metrics-token"  # noqa: S105 - gateway/settings/test.py
SERIES = re.compile(r"\b(gateway_[a-z0-9_]+)\b")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


@pytest.fixture
def exposed(client_for) -> set[str]:
    """Every series name /metrics declares (a counter's ``_total``, a histogram's parts)."""
    response = client_for(None, key=None, HTTP_AUTHORIZATION=f"Bearer {TOKEN}").get("/metrics")
    assert response.status_code == 200
    names = set()
    for family in text_string_to_metric_families(response.content.decode()):
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


def alert_expressions() -> list[tuple[str, str]]:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    return [(rule["alert"], rule["expr"]) for group in rules["groups"] for rule in group["rules"]]


def dashboard_expressions() -> list[tuple[str, str]]:
    dashboard = json.loads((DEPLOY / "grafana" / "gateway-dashboard.json").read_text())
    return [(panel["title"], target["expr"]) for panel in dashboard["panels"] for target in panel["targets"]]


@pytest.mark.django_db
def test_alert_rules_and_dashboard_name_only_series_that_metrics_exposes(exposed):
    expressions = alert_expressions() + dashboard_expressions()
    assert len(expressions) >= 20
    unknown = {(where, name) for where, expr in expressions for name in SERIES.findall(expr) if name not in exposed}
    assert not unknown, unknown
    for where, expr in expressions:
        assert SERIES.search(expr), f"{where} names no gateway series"


def test_the_alerts_asked_for_exist():
    names = {name for name, _ in alert_expressions()}
    assert {"StampingQueueOld", "StampingEtaError", "Http5xxRate", "ReconciliationFailed", "LowStock",
            "OutboxBacklog"} <= names  # fmt: skip
    for group in yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())["groups"]:
        for rule in group["rules"]:
            assert rule["annotations"]["runbook"].startswith("docs/runbook.md#")


def test_the_alerts_point_at_sections_of_the_runbook():
    runbook = (ROOT / "docs" / "runbook.md").read_text()
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", heading.strip().lower()).replace(" ", "-")
        for heading in re.findall(r"^#+ (.+)$", runbook, flags=re.MULTILINE)
    }
    for group in yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())["groups"]:
        for rule in group["rules"]:
            anchor = rule["annotations"]["runbook"].split("#", 1)[1]
            assert anchor in anchors, (rule["alert"], anchor)


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_the_compose_file_runs_every_process_with_migrations_as_a_separate_step():
    services = compose()["services"]
    assert {"web", "worker", "beat", "migrate", "postgres", "redis", "rabbitmq"} <= set(services)
    assert services["rabbitmq"]["profiles"] == ["rabbitmq"]
    assert "migrate_schemas --shared" in " ".join(services["migrate"]["command"])
    for name in ("web", "worker", "beat"):
        command = " ".join(services[name]["command"])
        assert "migrate" not in command
        assert services[name]["env_file"] == ["gateway.env"]  # configuration from the environment only
        assert "environment" not in services[name]
    assert "gateway.gunicorn_conf" in " ".join(services["web"]["command"])


def test_no_secret_is_committed_with_the_deployment_files():
    example = (DEPLOY / "gateway.env.example").read_text()
    for line in example.splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            if any(word in name for word in ("SECRET", "PIN", "PASSWORD", "TOKEN", "KEY")) and "LABEL" not in name:
                assert value.startswith("<"), f"{name} has a value in the example"
    ignored = (ROOT / ".gitignore").read_text()
    assert "deploy/*.env" in ignored and "deploy/secrets/" in ignored


def test_the_image_is_multi_stage_non_root_and_without_compilers_at_run_time():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    stages = re.split(r"^FROM ", dockerfile, flags=re.MULTILINE)[1:]
    assert len(stages) >= 2
    final = stages[-1]
    assert not re.search(r"build-essential|\bgcc\b|\bmake\b|-dev\b", final)
    user = re.findall(r"^USER (\S+)", final, flags=re.MULTILINE)
    assert user and user[-1] not in ("root", "0")
    assert "--no-index" in final  # only the wheels built in the first stage


def test_the_systemd_units_run_what_exists():
    from django.core.management import get_commands

    commands = get_commands()
    units = list((DEPLOY / "systemd").glob("*.service"))
    assert {u.name for u in units} >= {"gateway-web.service", "gateway-worker@.service", "gateway-beat.service",
                                       "gateway-migrate.service"}  # fmt: skip
    for unit in units:
        text = unit.read_text()
        assert "User=gateway" in text and "EnvironmentFile=/etc/gateway/gateway.env" in text
        for command in re.findall(r"manage\.py (\w+)", text):
            assert command in commands, (unit.name, command)


@pytest.mark.skipif(
    shutil.which("docker") is None
    or subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0,  # noqa: S607
    reason="Docker's compose plugin is not installed here: `docker compose config` not run",
)
def test_docker_compose_config_accepts_the_file(tmp_path):
    env = DEPLOY / "gateway.env"
    created = not env.exists()
    if created:
        env.write_text((DEPLOY / "gateway.env.example").read_text())
    try:
        done = subprocess.run(  # noqa: S603
            ["docker", "compose", "-f", str(DEPLOY / "compose.yaml"), "config", "--quiet"],  # noqa: S607
            capture_output=True, text=True,
        )  # fmt: skip
    finally:
        if created:
            env.unlink()
    assert done.returncode == 0, done.stderr


def test_workers_run_below_the_web_in_the_deployments_cpu_groups():
    """Nice values and SCHED_IDLE act only inside a cgroup: the workers' group weighs less than the web's."""
    services = compose()["services"]
    assert services["worker"]["cpu_shares"] < services["web"].get("cpu_shares", 1024)
    worker_unit = (DEPLOY / "systemd" / "gateway-worker@.service").read_text()
    web_unit = (DEPLOY / "systemd" / "gateway-web.service").read_text()
    assert re.search(r"^CPUWeight=idle$", worker_unit, flags=re.MULTILINE)
    assert "CPUWeight=" not in web_unit  # the default, 100
