"""``issuer.services.stamp_document``: recording, atomicity, idempotency, registry constraints."""

from __future__ import annotations

import pytest
from django.apps import apps

if not apps.ready:  # an engine-only run (-p no:django, see conftest.py): these need Django and the database
    pytest.skip("Django-level issuer tests need pytest-django", allow_module_level=True)

import hashlib

from django.db import IntegrityError, transaction
from django.utils import timezone

from issuer import errors
from issuer.engine import get_engine, trust_roots
from issuer.models import DocumentType, Serial, StampedDocument, StampProfile
from issuer.pdf import CPNS_PROFILE, DEFAULT_PROFILE
from issuer.selectors import verify_document
from issuer.serials import new_serial
from issuer.services import JobRefConflict, UnknownDocumentType, UnknownProfile, stamp_document
from issuer.signing import verify_pdf
from tests.fixtures.pdfs import factory

BOX = (420.0, 60.0, 520.0, 160.0)

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def text_a4() -> bytes:
    return factory.text_pdf(pages=2)


def _counts() -> tuple[int, int, int]:
    return (
        Serial.objects.filter(status=Serial.Status.USED).count(),
        Serial.objects.filter(status=Serial.Status.VOID).count(),
        StampedDocument.objects.count(),
    )


# -- profiles and document types --------------------------------------------------------------


def test_seeded_profiles_give_the_engine_rules() -> None:
    assert StampProfile.objects.get(name="default").to_rules() == DEFAULT_PROFILE
    assert StampProfile.objects.get(name="cpns").to_rules() == CPNS_PROFILE


def test_seeded_document_types() -> None:
    names = set(DocumentType.objects.values_list("name", flat=True))
    assert {"Surat Pernyataan", "Surat Perjanjian", "Kuitansi", "Dokumen Lain-lain"} <= names


def test_a_new_profile_is_data(channels, text_a4) -> None:
    StampProfile.objects.create(name="letter-only", max_bytes=100_000, page_width=612, page_height=792)
    with pytest.raises(errors.PageSizeNotAllowed):
        stamp_document(channel=channels["alpha"], data=text_a4, page=1, box=BOX, profile="letter-only")
    assert _counts() == (0, 0, 0)


# -- the happy path ---------------------------------------------------------------------------


def test_stamp_records_the_serial_and_the_stamped_file(channels, text_a4) -> None:
    before = timezone.now()
    outcome = stamp_document(
        channel=channels["alpha"], data=text_a4, page=2, box=BOX, reason="Surat Pernyataan", location="Jakarta",
        document_type="surat-pernyataan", document_number="SP-001", job_ref="job-1",
    )  # fmt: skip

    assert outcome.sha256_in == hashlib.sha256(text_a4).hexdigest()
    assert outcome.sha256_out == hashlib.sha256(outcome.pdf).hexdigest()
    assert outcome.pdf.startswith(text_a4)
    assert (outcome.pages, outcome.page, outcome.box, outcome.profile) == (2, 2, BOX, "default")
    assert not outcome.certification and not outcome.replayed  # default: an approval signature
    assert outcome.verification_url.endswith(f"/{outcome.serial}")
    row = Serial.objects.get(serial=outcome.serial)
    assert row.status == Serial.Status.USED and row.channel == channels["alpha"]
    assert (row.document_sha256, row.stamped_sha256, row.stamped_size) == (
        outcome.sha256_in, outcome.sha256_out, len(outcome.pdf),
    )  # fmt: skip
    assert row.box == BOX and row.page == 2 and row.page_count == 2
    assert row.document_type.code == "surat-pernyataan" and row.document_number == "SP-001"
    assert row.job_ref == "job-1" and row.used_at >= before and row.voided_at is None
    assert bytes(row.stamped.pdf) == outcome.pdf

    report = verify_pdf(outcome.pdf, trust_roots())
    assert report.valid and report.serials == (outcome.serial,)
    assert report.signatures[0].reason == f"[{outcome.serial}] e-Meterai Surat Pernyataan"


def test_a_caller_that_keeps_the_upload_has_only_the_stamps_own_bytes_stored(channels, text_a4) -> None:
    outcome = stamp_document(
        channel=channels["alpha"], data=text_a4, page=1, box=BOX, job_ref="job-kept", base_kept=True
    )
    stored = Serial.objects.get(serial=outcome.serial).stamped
    assert stored.base_size == len(text_a4) and stored.size == len(outcome.pdf)
    assert bytes(stored.pdf) == outcome.pdf[len(text_a4) :]  # the incremental update only
    assert stored.sha256 == outcome.sha256_out
    assert stored.whole(text_a4) == outcome.pdf
    # no base, or other bytes of the same length: never a document that is not the one stamped
    assert stored.whole(None) is None and stored.whole(text_a4[:-1] + b"X") is None

    again = stamp_document(
        channel=channels["alpha"], data=text_a4, page=1, box=BOX, job_ref="job-kept", base_kept=True
    )
    assert again.replayed and (again.serial, again.pdf) == (outcome.serial, outcome.pdf)


def test_a_rewritten_upload_is_stored_whole_even_when_the_caller_keeps_it(channels) -> None:
    from tests.issuer.test_repair import damaged

    upload = damaged("libreoffice-writer.pdf")  # the cross-reference table is rebuilt: not the upload's bytes
    outcome = stamp_document(channel=channels["alpha"], data=upload, page=1, box=BOX, base_kept=True)
    assert outcome.repaired and not outcome.pdf.startswith(upload)
    stored = Serial.objects.get(serial=outcome.serial).stamped
    assert stored.base_size == 0 and bytes(stored.pdf) == outcome.pdf and stored.whole(None) == outcome.pdf


def test_a_stamped_default_document_takes_a_second_e_meterai(channels, text_a4) -> None:
    first = stamp_document(channel=channels["alpha"], data=text_a4, page=1, box=BOX)
    second = stamp_document(channel=channels["beta"], data=first.pdf, page=1, box=(300.0, 60.0, 400.0, 160.0))
    assert second.pdf.startswith(first.pdf) and not second.certification
    verdict = verify_document(second.pdf)
    assert verdict["valid"], verdict
    assert [stamp["serial"] for stamp in verdict["stamps"]] == [first.serial, second.serial]
    earlier, later = verdict["stamps"]
    assert earlier["later_revisions"] and earlier["changes_allowed"] and all(earlier["checks"].values())
    assert not later["later_revisions"] and all(later["checks"].values())
    assert [sig["changes_allowed"] for sig in verdict["signatures"]] == [True, True]
    appended = verify_document(second.pdf + b"\n% appended\n")  # bytes, not a signature: a change
    assert not appended["valid"] and appended["failed_check"] == "unchanged_since_stamping"
    assert Serial.objects.filter(status="used").count() == 2


def test_cpns_upgrades_an_old_unsigned_document_and_stays_final(channels) -> None:
    old = factory.text_pdf(version="1.4")
    outcome = stamp_document(channel=channels["alpha"], data=old, page=1, box=BOX, profile="cpns")
    assert outcome.upgraded_to == "1.7" and outcome.certification
    assert outcome.pdf.startswith(b"%PDF-1.7") and outcome.pdf[8 : len(old)] == old[8:]
    verdict = verify_document(outcome.pdf)
    assert verdict["valid"] and not verdict["stamps"][0]["changes_allowed"]
    assert verdict["signatures"][0]["changes_allowed"] is False
    with pytest.raises(errors.DocumentAlreadyFinal):
        stamp_document(channel=channels["alpha"], data=outcome.pdf, page=1, box=(300.0, 60.0, 400.0, 160.0))


def test_on_recorded_runs_inside_the_transaction_with_the_row(channels, text_a4) -> None:
    seen = []

    def on_recorded(serial_row: Serial) -> None:
        assert transaction.get_connection().in_atomic_block
        seen.append((serial_row.serial, Serial.objects.filter(pk=serial_row.pk, status="used").exists()))

    outcome = stamp_document(channel=channels["alpha"], data=text_a4, page=1, box=BOX, on_recorded=on_recorded)
    assert seen == [(outcome.serial, True)]


# -- refusals record nothing ------------------------------------------------------------------


def _signed_pdf_14() -> bytes:
    """A PDF 1.4 carrying a (filled) signature field: an old file someone signed, which the stamp
    cannot upgrade without breaking that signature."""
    a4 = b"/MediaBox [0 0 595.276 841.89]"
    return factory.raw_pdf(
        {
            1: b"<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [4 0 R] /SigFlags 3 >> >>",
            2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            3: b"<< /Type /Page /Parent 2 0 R " + a4 + b" /Annots [4 0 R] >>",
            4: b"<< /FT /Sig /T (Signer) /Type /Annot /Subtype /Widget /Rect [0 0 0 0] /P 3 0 R /V 5 0 R >>",
            5: b"<< /Type /Sig /Filter /Adobe.PPKLite /SubFilter /adbe.pkcs7.detached /ByteRange [0 0 0 0]"
            b" /Contents <00> >>",
        },
        version="1.4",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"page": 3}, errors.PageOutOfRange),
        ({"box": (580, 60, 680, 160)}, errors.StampOutOfBounds),
        ({"box": (0, 0, 10, 10)}, errors.InvalidStampBox),
        ({"profile": "nope"}, UnknownProfile),
        ({"document_type": "nope"}, UnknownDocumentType),
        ({"data": b"hello"}, errors.NotAPdf),
        ({"data": _signed_pdf_14(), "profile": "cpns"}, errors.PdfVersionTooOld),
    ],
    ids=["page", "bounds", "tiny-box", "profile", "document-type", "not-pdf", "cpns-version"],
)
def test_refusals_mint_and_record_nothing(channels, text_a4, kwargs, error) -> None:
    arguments = {"channel": channels["alpha"], "data": text_a4, "page": 1, "box": BOX, **kwargs}
    with pytest.raises(error):
        stamp_document(**arguments)
    assert _counts() == (0, 0, 0)


# -- atomicity --------------------------------------------------------------------------------


def test_signing_failure_records_only_a_void_serial(channels, text_a4, monkeypatch) -> None:
    engine = get_engine()

    def broken_sign(*args, **kwargs):
        raise errors.SigningUnavailable("HSM unplugged")

    monkeypatch.setattr(engine, "_sign", broken_sign)
    hold_committed = []
    with pytest.raises(errors.SigningUnavailable):
        stamp_document(
            channel=channels["alpha"], data=text_a4, page=1, box=BOX, job_ref="job-sign-fail",
            on_recorded=hold_committed.append,
        )  # fmt: skip

    assert hold_committed == []
    assert _counts() == (0, 1, 0)
    void = Serial.objects.get()
    assert void.status == Serial.Status.VOID and void.voided_at is not None and void.used_at is None
    assert void.void_reason == "signing failed: signing_unavailable: HSM unplugged"
    assert void.stamped_sha256 == "" and void.job_ref == "job-sign-fail"

    monkeypatch.undo()  # the retry of the same job succeeds with a new serial
    outcome = stamp_document(channel=channels["alpha"], data=text_a4, page=1, box=BOX, job_ref="job-sign-fail")
    assert outcome.serial != void.serial and not outcome.replayed
    assert _counts() == (1, 1, 1)


def test_unexpected_engine_crash_is_void_too(channels, text_a4, monkeypatch) -> None:
    monkeypatch.setattr(get_engine().template, "build", lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        stamp_document(channel=channels["alpha"], data=text_a4, page=1, box=BOX)
    assert Serial.objects.get().void_reason == "signing failed: internal: ZeroDivisionError"
    assert _counts() == (0, 1, 0)


def test_on_recorded_failure_rolls_the_serial_back(channels, text_a4) -> None:
    class HoldGone(Exception):
        pass

    def commit_hold(serial_row: Serial) -> None:
        raise HoldGone

    with pytest.raises(HoldGone):
        stamp_document(channel=channels["alpha"], data=text_a4, page=1, box=BOX, on_recorded=commit_hold)
    assert _counts() == (0, 1, 0)
    assert Serial.objects.get().void_reason == "recording failed: internal: HoldGone"


def test_on_recorded_database_error_leaves_the_outer_transaction_usable(channels, text_a4) -> None:
    def bad_sql(serial_row: Serial) -> None:
        Serial.objects.create(
            **{f.attname: getattr(serial_row, f.attname) for f in Serial._meta.concrete_fields if f.name != "id"}
        )

    with transaction.atomic():
        with pytest.raises(IntegrityError):
            stamp_document(channel=channels["alpha"], data=text_a4, page=1, box=BOX, on_recorded=bad_sql)
        assert _counts() == (0, 1, 0)


# -- idempotency ------------------------------------------------------------------------------


def test_same_job_ref_replays_the_recorded_stamp(channels, text_a4) -> None:
    first = stamp_document(channel=channels["alpha"], data=text_a4, page=1, box=BOX, job_ref="job-7")
    calls = []
    again = stamp_document(
        channel=channels["alpha"], data=text_a4, page=1, box=[420, 60, 520, 160], job_ref="job-7",
        on_recorded=calls.append,
    )  # fmt: skip
    assert again.replayed and calls == []
    assert (again.serial, again.pdf, again.sha256_out, again.signed_at) == (
        first.serial, first.pdf, first.sha256_out, first.signed_at,
    )  # fmt: skip
    assert again.as_dict() == {**first.as_dict(), "replayed": True}
    assert _counts() == (1, 0, 1)


@pytest.mark.parametrize(
    "change", [{"page": 2}, {"box": (10, 10, 110, 110)}, {"data": factory.text_pdf(pages=3)}, {"profile": "cpns"}]
)
def test_same_job_ref_with_another_request_is_a_conflict(channels, text_a4, change) -> None:
    first = stamp_document(channel=channels["alpha"], data=text_a4, page=1, box=BOX, job_ref="job-8")
    with pytest.raises(JobRefConflict) as caught:
        stamp_document(
            **{"channel": channels["alpha"], "data": text_a4, "page": 1, "box": BOX, "job_ref": "job-8", **change}
        )
    assert caught.value.extra["serial"] == first.serial
    assert _counts() == (1, 0, 1)


def test_job_refs_are_per_channel(channels, text_a4) -> None:
    alpha = stamp_document(channel=channels["alpha"], data=text_a4, page=1, box=BOX, job_ref="job-9")
    beta = stamp_document(channel=channels["beta"], data=text_a4, page=1, box=BOX, job_ref="job-9")
    assert alpha.serial != beta.serial and not beta.replayed


def test_a_serial_collision_signs_again_with_a_new_serial(channels, text_a4, monkeypatch) -> None:
    taken = stamp_document(channel=channels["alpha"], data=text_a4, page=1, box=BOX).serial
    fresh = new_serial()
    minted = iter([taken, fresh])
    monkeypatch.setattr("issuer.services.new_serial", lambda: next(minted))
    outcome = stamp_document(channel=channels["beta"], data=text_a4, page=1, box=BOX)
    assert outcome.serial == fresh
    assert verify_pdf(outcome.pdf, trust_roots()).serials == (fresh,)
    assert Serial.objects.get(serial=taken).channel == channels["alpha"]
    assert _counts() == (2, 0, 2)


# -- registry constraints ---------------------------------------------------------------------


def _row(channel, **overrides) -> Serial:
    fields = {
        "serial": new_serial(), "channel": channel, "status": "used", "profile": "default",
        "document_sha256": "a" * 64, "stamped_sha256": "b" * 64, "stamped_size": 10, "page": 1, "page_count": 1,
        "box_llx": 0, "box_lly": 0, "box_urx": 50, "box_ury": 50, "used_at": timezone.now(),
    }  # fmt: skip
    fields.update(overrides)
    return Serial(**fields)


def test_database_refuses_a_second_row_for_a_serial(channels) -> None:
    row = _row(channels["alpha"])
    row.save()
    with pytest.raises(IntegrityError), transaction.atomic():
        _row(channels["beta"], serial=row.serial).save()


@pytest.mark.parametrize(
    "overrides",
    [
        {"serial": "2c5nv74i6d0hj1ez000du9"},
        {"serial": "SHORT"},
        {"status": "used", "used_at": None},
        {"status": "used", "stamped_sha256": ""},
        {"status": "void"},
        {"box_urx": -1},
        {"document_sha256": "xyz"},
    ],
    ids=["lower-case", "short", "used-no-time", "used-no-hash", "void-no-time", "box", "sha"],
)
def test_database_checks_the_row(channels, overrides) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        _row(channels["alpha"], **overrides).save()


def test_database_allows_one_used_serial_per_job(channels) -> None:
    _row(channels["alpha"], job_ref="j").save()
    _row(
        channels["alpha"], job_ref="j", status="void", used_at=None, stamped_sha256="", voided_at=timezone.now()
    ).save()
    with pytest.raises(IntegrityError), transaction.atomic():
        _row(channels["alpha"], job_ref="j").save()
