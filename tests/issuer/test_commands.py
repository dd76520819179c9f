"""``manage.py stamp`` and ``manage.py verify``: one JSON object on stdout and the exit codes."""

from __future__ import annotations

import pytest
from django.apps import apps

if not apps.ready:  # an engine-only run (-p no:django, see conftest.py): these need Django and the database
    pytest.skip("Django-level issuer tests need pytest-django", allow_module_level=True)

import io
import json
from pathlib import Path

from django.core.management import CommandError, call_command

from issuer import errors
from issuer.engine import get_engine
from issuer.models import Serial
from tests.fixtures.pdfs import factory

pytestmark = pytest.mark.django_db


def run(name: str, *args: str) -> tuple[int, dict]:
    out = io.StringIO()
    try:
        call_command(name, *args, stdout=out)
        code = 0
    except CommandError as exc:
        code = exc.returncode
    return code, json.loads(out.getvalue())


@pytest.fixture
def document(tmp_path: Path) -> Path:
    path = tmp_path / "in.pdf"
    path.write_bytes(factory.text_pdf(pages=2))
    return path


def test_stamp_prints_the_stamp(document: Path, tmp_path: Path) -> None:
    target = tmp_path / "out.pdf"
    code, body = run(
        "stamp", str(document), str(target), "--page", "2", "--box", "40, 40, 94, 94", "--profile", "cpns",
        "--document-type", "surat-pernyataan", "--document-number", "A-1", "--document-date", "2024-06-01",
    )  # fmt: skip
    assert code == 0
    assert set(body) == {
        "serial", "sha256_in", "sha256_out", "size_out", "pages", "page", "box", "profile", "certification",
        "upgraded_to", "repaired", "signed_at", "verification_url", "channel", "job_ref", "replayed", "output",
    }  # fmt: skip
    assert (body["pages"], body["page"], body["box"], body["profile"]) == (2, 2, [40, 40, 94, 94], "cpns")
    assert body["channel"] == "issuer" and body["certification"] and body["output"] == str(target)
    assert target.stat().st_size == body["size_out"]
    row = Serial.objects.get(serial=body["serial"])
    assert row.channel.is_issuer and row.document_date.isoformat() == "2024-06-01"
    assert not list(tmp_path.glob(".*partial"))


def test_stamp_for_a_channel_with_a_job_ref_replays(document: Path, tmp_path: Path) -> None:
    args = ["--box", "420,60,520,160", "--channel", "alpha", "--job-ref", "cli-1"]
    code, first = run("stamp", str(document), str(tmp_path / "a.pdf"), *args)
    code_again, again = run("stamp", str(document), str(tmp_path / "b.pdf"), *args)
    assert (code, code_again) == (0, 0)
    assert first["channel"] == "alpha" and again["replayed"] and again["serial"] == first["serial"]
    assert (tmp_path / "a.pdf").read_bytes() == (tmp_path / "b.pdf").read_bytes()
    assert Serial.objects.filter(channel__code="alpha").count() == 1


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["--box", "1,2,3"], "invalid_stamp_box"),
        (["--box", "a,b,c,d"], "invalid_stamp_box"),
        (["--box", "nan,1,100,100"], "invalid_stamp_box"),
        (["--box", "420,60,520,160", "--channel", "nope"], "unknown_channel"),
        (["--box", "420,60,520,160", "--profile", "nope"], "unknown_profile"),
        (["--box", "420,60,520,160", "--document-date", "1 June"], "invalid_document_date"),
        (["--box", "420,60,520,160", "--page", "9"], "page_out_of_range"),
    ],
)
def test_stamp_refusals_exit_2_with_the_problem(document: Path, tmp_path: Path, args, code) -> None:
    target = tmp_path / "out.pdf"
    exit_code, body = run("stamp", str(document), str(target), *args)
    assert (exit_code, body["code"]) == (2, code)
    assert body["type"] == f"https://errors.e-meterai.example/{code}" and body["title"] and body["detail"]
    assert not target.exists() and Serial.objects.count() == 0


def test_stamp_missing_input(tmp_path: Path) -> None:
    code, body = run("stamp", str(tmp_path / "missing.pdf"), str(tmp_path / "out.pdf"), "--box", "1,1,99,99")
    assert (code, body["code"]) == (2, "input_unreadable")


def test_stamp_signing_unavailable_exits_1(document: Path, tmp_path: Path, monkeypatch) -> None:
    def broken(*args, **kwargs):
        raise errors.SigningUnavailable("The signing key cannot be loaded.")

    monkeypatch.setattr(get_engine(), "_sign", broken)
    code, body = run("stamp", str(document), str(tmp_path / "out.pdf"), "--box", "420,60,520,160")
    assert (code, body["code"], body["status"]) == (1, "signing_unavailable", 503)
    assert not Serial.objects.filter(status="used").exists()


def test_stamp_internal_error_exits_1_without_details(document: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(get_engine().template, "build", lambda *a, **k: {}["secret-detail"])
    code, body = run("stamp", str(document), str(tmp_path / "out.pdf"), "--box", "420,60,520,160")
    assert (code, body["code"], body["status"]) == (1, "internal_error", 500)
    assert "secret-detail" not in json.dumps(body)


def test_verify_command(document: Path, tmp_path: Path) -> None:
    target = tmp_path / "out.pdf"
    _, stamped = run("stamp", str(document), str(target), "--box", "420,60,520,160")
    code, body = run("verify", str(target))
    assert code == 0 and body["valid"] and body["stamps"][0]["serial"] == stamped["serial"]

    code, body = run("verify", str(document))
    assert (code, body["valid"], body["failed_check"]) == (3, False, "no_stamp")

    garbage = tmp_path / "garbage.pdf"
    garbage.write_bytes(b"nope")
    code, body = run("verify", str(garbage))
    assert (code, body["code"]) == (2, "not_a_pdf")
