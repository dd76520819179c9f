"""Real PDFs from producers we did not write, and hostile files, through ``manage.py stamp``.

Every corpus file (``tests/fixtures/pdfs/corpus/manifest.json``) comes out either stamped - the
output starts with the input bytes, pikepdf opens it, pyHanko validates our signature against the
development root and every earlier signature against its own root, poppler's ``pdfsig`` says
valid and ``qpdf --check`` is clean - or refused with the manifest's code, exit 2, no output file
and nothing recorded.  The binary checks are skipped (only they) where poppler/qpdf are missing.
"""

from __future__ import annotations

import pytest
from django.apps import apps

if not apps.ready:  # an engine-only run (-p no:django, see conftest.py): these need Django and the database
    pytest.skip("Django-level issuer tests need pytest-django", allow_module_level=True)

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pikepdf
from cryptography import x509
from django.core.management import CommandError, call_command
from django.db import connection

from issuer.engine import trust_roots
from issuer.models import Serial
from issuer.signing import verify_pdf
from tests.fixtures.pdfs import factory
from tests.issuer.rendering import assert_qr_everywhere

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "pdfs" / "corpus"
MANIFEST = json.loads((CORPUS / "manifest.json").read_text())["cases"]
ROOT = Path(__file__).resolve().parents[2]


def _id(case: dict) -> str:
    return f"{case['file'].removesuffix('.pdf')}-{case['profile']}-p{case['page']}-{case['expect']}"


def _args(case: dict, source: Path, target: Path) -> list[str]:
    args = [str(source), str(target), "--page", str(case["page"]), "--box", ",".join(map(str, case["box"]))]
    args += ["--profile", case["profile"], "--reason", "Surat Pernyataan", "--location", "Jakarta"]
    if case["password"]:
        args += ["--password", case["password"]]
    return args


def stamp_command(*args: str) -> tuple[int, dict]:
    out = io.StringIO()
    try:
        call_command("stamp", *args, stdout=out)
        code = 0
    except CommandError as exc:
        code = exc.returncode
    return code, json.loads(out.getvalue())


def _other_root() -> x509.Certificate:
    return x509.load_pem_x509_certificate((CORPUS / "other-party-root.pem").read_bytes())


def _binary_checks(path: Path, password: str | None) -> None:
    if shutil.which("qpdf"):
        args = ["qpdf", *([f"--password={password}"] if password else []), "--check", str(path)]
        result = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "No syntax or stream encoding errors" in result.stdout
    if shutil.which("pdfsig"):
        args = ["pdfsig", *(["-upw", password] if password else []), str(path)]
        result = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
        count = result.stdout.count("Signature #")
        assert count >= 1 and result.stdout.count("Signature is Valid") == count, result.stdout


@pytest.mark.django_db
@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", MANIFEST, ids=[_id(case) for case in MANIFEST])
def test_corpus_file(case: dict, tmp_path: Path) -> None:
    source = CORPUS / case["file"]
    original = source.read_bytes()
    target = tmp_path / "stamped.pdf"
    used_before = Serial.objects.filter(status="used").count()

    code, body = stamp_command(*_args(case, source, target))

    if case["expect"] != "stamped":
        assert (code, body["code"]) == (2, case["expect"]), body
        assert set(body) >= {"type", "title", "status", "detail", "code"}
        assert not target.exists()
        assert Serial.objects.count() == 0  # a refusal mints nothing
        return

    assert code == 0, body
    stamped = target.read_bytes()
    # incremental: the producer's bytes are untouched, but for the header digits of a file < 1.7,
    # unless the file had to be rewritten first (a form asking viewers for its field appearances)
    if case.get("rewritten"):
        assert body["sha256_in"] == hashlib.sha256(original).hexdigest()
        with pikepdf.open(io.BytesIO(stamped)) as pdf:
            assert "/NeedAppearances" not in pdf.Root.AcroForm
    elif body["upgraded_to"]:
        assert stamped[:8] == b"%PDF-1.7" and stamped[8 : len(original)] == original[8:]
    else:
        assert stamped.startswith(original)
    assert body["sha256_out"] == Serial.objects.get(serial=body["serial"]).stamped_sha256
    assert Serial.objects.filter(status="used").count() == used_before + 1
    with pikepdf.open(io.BytesIO(stamped), password=case["password"] or "") as pdf:
        assert len(pdf.pages) == body["pages"]

    report = verify_pdf(stamped, [*trust_roots(), _other_root()], password=case["password"])
    *earlier, ours = report.signatures
    assert ours.valid and ours.covers_whole_document and ours.serial == body["serial"]
    assert body["certification"] == (case["profile"] == "cpns" and not earlier)
    assert ours.changes_allowed == (case["profile"] != "cpns")
    _binary_checks(target, case["password"])
    # the stamp is drawn by poppler and by PDFium: its QR reads back from both renderings
    assert_qr_everywhere(
        target, tmp_path, tuple(case["box"]), body["verification_url"], page=case["page"], password=case["password"]
    )
    # earlier signatures stay valid (they no longer cover the whole file, which is allowed)
    assert all(signature.valid for signature in earlier)
    earlier_ok = all(signature.changes_allowed for signature in earlier)
    if case.get("known_issue"):  # strict: once the engine is fixed, drop "known_issue" from the manifest
        assert not earlier_ok, f"known issue no longer happens, update the manifest: {case['known_issue']}"
        pytest.xfail(case["known_issue"])
    assert earlier_ok, earlier


# -- hostile files ----------------------------------------------------------------------------


def _hostile() -> dict[str, bytes]:
    writer = (CORPUS / "libreoffice-writer.pdf").read_bytes()
    page = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>"
    deep = b"[" * 100_000 + b"]" * 100_000
    return {
        "truncated": writer[: len(writer) // 2],
        "garbage": os.urandom(4096),
        "garbage-after-header": b"%PDF-1.7\n" + bytes(range(256)) * 64,
        "empty": b"",
        "page-tree-loop": factory.raw_pdf(
            {
                1: b"<< /Type /Catalog /Pages 2 0 R >>",
                2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                3: b"<< /Type /Pages /Parent 2 0 R /Kids [2 0 R] /Count 1 >>",
            }
        ),  # fmt: skip
        "reference-loop": factory.raw_pdf({1: b"2 0 R", 2: b"3 0 R", 3: b"1 0 R"}),
        "deep-nesting": factory.raw_pdf(
            {
                1: b"<< /Type /Catalog /Pages 2 0 R /Deep " + deep + b" >>",
                2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                3: page,
            }
        ),  # fmt: skip
        "huge-count": factory.raw_pdf(
            {1: b"<< /Type /Catalog /Pages 2 0 R >>", 2: b"<< /Type /Pages /Kids [3 0 R] /Count 2147483647 >>", 3: page}
        ),  # fmt: skip
    }


HOSTILE_CODES = {
    "truncated": "document_unreadable",
    "garbage": "not_a_pdf",
    "garbage-after-header": "document_unreadable",
    "empty": "not_a_pdf",
    "page-tree-loop": "document_unreadable",
    "reference-loop": "document_unreadable",
    "deep-nesting": "document_unreadable",
    "huge-count": "too_many_pages",
}


@pytest.mark.django_db
@pytest.mark.timeout(30)
@pytest.mark.parametrize("name", list(HOSTILE_CODES))
def test_hostile_file_is_refused_quickly(name: str, tmp_path: Path) -> None:
    source = tmp_path / "in.pdf"
    source.write_bytes(_hostile()[name])
    target = tmp_path / "out.pdf"
    code, body = stamp_command(str(source), str(target), "--box", "420,60,520,160")
    assert (code, body["code"]) == (2, HOSTILE_CODES[name]), body
    assert not target.exists() and Serial.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.timeout(30)
def test_decompression_bomb_is_stamped_without_inflating_it(tmp_path: Path) -> None:
    """Page content is never inflated, so a 64 MB bomb is just a small valid PDF to the stamper."""
    source = tmp_path / "bomb.pdf"
    source.write_bytes(factory.bomb_pdf())
    code, body = stamp_command(str(source), str(tmp_path / "out.pdf"), "--box", "420,60,520,160")
    assert code == 0 and Serial.objects.get(serial=body["serial"]).status == "used"


@pytest.mark.django_db
@pytest.mark.timeout(30)
def test_too_large_is_refused_before_reading(tmp_path: Path) -> None:
    source = tmp_path / "big.pdf"
    source.write_bytes(b"%PDF-1.7\n" + b" " * (800 * 1024 + 1))
    code, body = stamp_command(str(source), str(tmp_path / "out.pdf"), "--box", "420,60,520,160", "--profile", "cpns")
    assert (code, body["code"], body["max_bytes"]) == (2, "document_too_large", 800 * 1024)


# -- the real command line (a separate process against the test database) ----------------------


def _subprocess_env() -> dict[str, str]:
    settings = connection.settings_dict
    host = quote(settings["HOST"], safe="") if settings["HOST"].startswith("/") else settings["HOST"]
    url = f"postgres://{quote(settings['USER'])}@{host}:{settings['PORT']}/{settings['NAME']}"
    return {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "gateway.settings.test"}


def _manage(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=_subprocess_env(), capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_command_line_stamp_and_verify(live_db, tmp_path: Path) -> None:
    target = tmp_path / "stamped.pdf"
    stamped = _manage("stamp", str(CORPUS / "pdflatex-a4.pdf"), str(target), "--page", "2", "--box", "40,40,140,140")
    serial = None
    try:
        assert stamped.returncode == 0, stamped.stderr
        body = json.loads(stamped.stdout)  # exactly one JSON object on stdout
        serial = body["serial"]
        assert body["channel"] == "issuer" and body["page"] == 2 and body["pages"] == 3
        assert Serial.objects.get(serial=serial).channel.code == "issuer"

        verified = _manage("verify", str(target))
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert json.loads(verified.stdout)["stamps"][0]["serial"] == serial

        unstamped = _manage("verify", str(CORPUS / "pdflatex-a4.pdf"))
        assert unstamped.returncode == 3 and json.loads(unstamped.stdout)["failed_check"] == "no_stamp"

        refused = _manage("stamp", str(CORPUS / "qpdf-rc4.pdf"), str(tmp_path / "x.pdf"), "--box", "1,1,100,100",
                          "--password", "user-pw")  # fmt: skip
        assert refused.returncode == 2
        assert json.loads(refused.stdout)["code"] == "encryption_not_supported"
        assert "encryption_not_supported" in refused.stderr
    finally:
        if serial:
            Serial.objects.filter(serial=serial).delete()
