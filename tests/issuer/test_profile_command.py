"""``manage.py profile``: the issuer creates and edits document profiles without a release or a shell,
and the storefront's catalogue shows the result."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from issuer.models import StampProfile

pytestmark = pytest.mark.django_db


def profile(*args: str) -> str:
    out = io.StringIO()
    call_command("profile", *args, stdout=out)
    return out.getvalue()


def catalogue(client_for) -> dict[str, int]:
    response = client_for("alpha").get("/api/v1/document-types")
    assert response.status_code == 200, response.content
    return {p["name"]: p["max_bytes"] for p in response.json()["profiles"]}


def test_a_profile_is_created_edited_and_withdrawn(client_for):
    assert "kemenkeu" not in catalogue(client_for)

    created = profile(
        "kemenkeu", "--max-size", "900KB", "--page-size", "A4", "--min-pdf-version", "1.6",
        "--description", "Kementerian Keuangan: A4, PDF 1.6+",
    )  # fmt: skip

    assert created.startswith("Created profile:\nkemenkeu: Kementerian Keuangan: A4, PDF 1.6+")
    row = StampProfile.objects.get(name="kemenkeu")
    assert (row.max_bytes, row.page_width, row.page_height, row.min_pdf_version) == (921_600, 595.28, 841.89, "1.6")
    assert catalogue(client_for)["kemenkeu"] == 921_600

    updated = profile("kemenkeu", "--max-size", "2MB", "--page-size", "any", "--stamp-size", "30-200")

    assert updated.startswith("Updated profile:")
    row.refresh_from_db()
    assert (row.max_bytes, row.page_width, row.page_height) == (2 * 1024 * 1024, None, None)
    assert (row.min_stamp_size, row.max_stamp_size, row.min_pdf_version) == (30, 200, "1.6")  # the rest kept
    assert catalogue(client_for)["kemenkeu"] == 2 * 1024 * 1024

    profile("kemenkeu", "--inactive")
    assert "kemenkeu" not in catalogue(client_for)
    assert "kemenkeu (inactive)" in profile()
    assert "  max size        2.097.152 bytes" in profile("kemenkeu")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--max-size", "800KB", "--stamp-size", "300-20"], "--stamp-size"),
        (["--max-size", "800KB", "--min-pdf-version", "3.1"], "--min-pdf-version"),
        (["--page-size", "A4"], "a new profile needs --max-size"),
        (["--max-size", "lots"], "--max-size 'lots': write a number of bytes"),
        (["--max-size", "1MB", "--page-size", "B7"], "--page-size 'B7': use one of A3, A4"),
    ],
)
def test_a_wrong_profile_is_refused_with_what_to_fix_and_nothing_saved(args, says):
    before = list(StampProfile.objects.values_list("name", "max_bytes").order_by("name"))

    with pytest.raises(CommandError) as refused:
        profile("newone", *args)

    assert refused.value.returncode == 2
    assert says in str(refused.value)
    assert list(StampProfile.objects.values_list("name", "max_bytes").order_by("name")) == before


def test_showing_a_missing_profile_says_how_to_create_it():
    with pytest.raises(CommandError, match=r"manage.py profile nope --max-size 800KB"):
        profile("nope")


def test_a_profile_can_be_made_final_and_its_stamps_then_certify(channels):
    from issuer.services import stamp_document
    from tests.fixtures.pdfs import factory

    created = profile("notaris", "--max-size", "2MB")
    assert "certification   not_certified" in created
    updated = profile("notaris", "--certification", "no_changes")
    assert "certification   no_changes" in updated
    assert StampProfile.objects.get(name="notaris").to_rules().final
    outcome = stamp_document(
        channel=channels["alpha"], data=factory.text_pdf(), page=1, box=(420, 60, 520, 160), profile="notaris"
    )
    assert outcome.certification
    with pytest.raises(CommandError):
        profile("notaris", "--certification", "sometimes")
