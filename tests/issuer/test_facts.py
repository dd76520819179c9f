"""``issuer.facts``: a document's inspection sealed at intake opens as the same ``DocumentInfo``, is
refused when altered or of another version, and spares the stamp its second inspection without
sparing it a check."""

from __future__ import annotations

import pytest
from django.apps import apps

if not apps.ready:  # an engine-only run (-p no:django, see conftest.py): these need Django and the database
    pytest.skip("Django-level issuer tests need pytest-django", allow_module_level=True)

import io
import json

import pikepdf
from django.conf import settings
from django.core import signing
from django.test import override_settings

from issuer import errors, facts
from issuer.checks import check_stamp
from issuer.models import Serial, StampedDocument, StampProfile
from issuer.pdf import inspect_document, prepare
from issuer.services import stamp_document
from tests.fixtures.pdfs import factory
from tests.issuer.test_corpus import CORPUS
from tests.issuer.test_repair import damaged

pytestmark = pytest.mark.django_db

MAX = 20 * 1024 * 1024
BOX = (420.0, 60.0, 520.0, 160.0)


def _described() -> list[tuple[str, bytes]]:
    encrypted = io.BytesIO()
    with pikepdf.open(io.BytesIO(factory.text_pdf(pages=3))) as pdf:
        pdf.save(encrypted, encryption=pikepdf.Encryption(owner="o", user="", R=6))
    documents = [("text", factory.text_pdf(pages=2)), ("encrypted", encrypted.getvalue())]
    documents += [(path.name, path.read_bytes()) for path in sorted(CORPUS.glob("*.pdf"))]
    return documents


@pytest.fixture
def inspections_counted(monkeypatch) -> list[bytes]:
    seen: list[bytes] = []
    real = prepare.inspect_document

    def counted(data, **kwargs):
        seen.append(data)
        return real(data, **kwargs)

    monkeypatch.setattr(prepare, "inspect_document", counted)
    return seen


def test_every_inspection_opens_as_it_was_sealed() -> None:
    opened = 0
    kinds = set()
    for name, data in _described():
        try:
            info = inspect_document(data, max_bytes=MAX)
        except errors.DocumentError:
            continue  # a corpus file refused at the door never has facts
        assert facts.unseal(facts.seal(info)) == info, name
        opened += 1
        kinds |= {"encrypted"} if info.encrypted else set()
        kinds |= {"signed"} if info.is_signed else set()
        kinds |= {"several pages"} if info.page_count > 1 else set()
    assert opened >= 5 and kinds == {"encrypted", "signed", "several pages"}


def test_altered_foreign_or_older_facts_do_not_open() -> None:
    info = inspect_document(factory.text_pdf(), max_bytes=MAX)
    sealed = facts.seal(info)
    body, _, signature = sealed.rpartition(":")
    assert facts.unseal(body.replace('"count":1', '"count":9') + ":" + signature) is None
    older = json.loads(body) | {"v": facts.VERSION - 1}
    assert facts.unseal(signing.Signer(salt=facts.SALT).sign(json.dumps(older))) is None
    assert facts.unseal(signing.Signer(salt="another.purpose").sign(body)) is None
    assert facts.unseal(signing.Signer(salt=facts.SALT).sign("[1, 2]")) is None  # sealed, not facts
    assert facts.unseal("") is None and facts.unseal(None) is None and facts.unseal("not sealed") is None
    with override_settings(SECRET_KEY="another-secret-" + "x" * 40):
        assert facts.unseal(sealed) is None  # another project's key
    with override_settings(SECRET_KEY="rotated-secret-" + "x" * 40, SECRET_KEY_FALLBACKS=[settings.SECRET_KEY]):
        assert facts.unseal(sealed) == info  # sealed before a key rotation: still opens


def test_the_intake_seals_facts_only_for_a_document_stamped_as_uploaded() -> None:
    plain = check_stamp(data=factory.text_pdf(), page=1, box=BOX)
    assert facts.unseal(plain.facts) == plain.info
    rewritten = check_stamp(data=damaged("libreoffice-writer.pdf"), page=1, box=BOX)
    assert rewritten.repaired and rewritten.facts is None


def test_a_stamp_with_facts_does_not_inspect_the_document_again(channels, inspections_counted) -> None:
    data = factory.text_pdf(pages=2)
    sealed = check_stamp(data=data, page=2, box=BOX).facts
    inspections_counted.clear()
    outcome = stamp_document(channel=channels["alpha"], data=data, page=2, box=BOX, facts=sealed)
    assert inspections_counted == [] and Serial.objects.get(serial=outcome.serial).status == Serial.Status.USED
    altered = sealed.replace('"count":2', '"count":3')  # its signature no longer matches: inspected again
    stamp_document(channel=channels["alpha"], data=data, page=2, box=BOX, facts=altered)
    assert inspections_counted == [data]


def test_facts_of_other_bytes_are_refused_and_nothing_is_stamped(channels) -> None:
    data = factory.text_pdf()
    sealed = check_stamp(data=data, page=1, box=BOX).facts
    at = data.index(b"stream\n") + len(b"stream\n")
    other = data[:at] + (b"X" if data[at : at + 1] != b"X" else b"Y") + data[at + 1 :]  # same length
    used = Serial.objects.filter(status=Serial.Status.USED)
    before = (used.count(), StampedDocument.objects.count())
    with pytest.raises(errors.DocumentChanged):
        stamp_document(channel=channels["alpha"], data=other, page=1, box=BOX, facts=sealed)
    assert (used.count(), StampedDocument.objects.count()) == before  # (the serial minted for it is void)


def test_the_profile_is_checked_again_on_the_facts_as_it_is_when_the_stamp_signs(channels) -> None:
    data = factory.text_pdf(pages=2)
    sealed = check_stamp(data=data, page=1, box=BOX).facts
    StampProfile.objects.create(name="letter-only", max_bytes=100_000, page_width=612, page_height=792)
    with pytest.raises(errors.PageSizeNotAllowed):
        stamp_document(channel=channels["alpha"], data=data, page=1, box=BOX, profile="letter-only", facts=sealed)
    StampProfile.objects.create(name="one-page", max_bytes=100_000, max_pages=1)
    with pytest.raises(errors.TooManyPages):
        stamp_document(channel=channels["alpha"], data=data, page=1, box=BOX, profile="one-page", facts=sealed)
