"""Stock top-ups: a channel's finance member asks for N units with the transfer's reference and proof;
issuer staff record it and a second person confirms it (maker-checker); the stock rises by exactly
N, once, and the channel gets ``stock.credited``."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_context

from billing.ledger.models import Deposit, TopUpRequest
from billing.ledger.selectors import channel_balance
from outbox.models import WebhookDelivery, WebhookEndpoint
from staff.models import AuditEntry
from tenants.members.models import Member, Role
from tests.billing.factories import unique
from tests.staff_helpers import make_staff, office_client

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\n%%EOF\n"


def finance_client() -> Client:
    email = f"{unique('fin')}@example.id"
    with schema_context("alpha"):
        user = get_user_model().objects.create_user(email, password="fin-pass-1234")
        Member.objects.create(user=user, email=email, role=Role.FINANCE)
    client = Client(HTTP_HOST="alpha.test")
    with schema_context("alpha"):
        client.force_login(user)
    return client


def _ask(client, units: int, reference: str, proof: bytes = PDF, name: str = "transfer.pdf"):
    upload = SimpleUploadedFile(name, proof, content_type="application/pdf")
    response = client.post("/topups/", {"units": units, "transfer_reference": reference, "proof": upload})
    connection.set_schema_to_public()  # the portal request left the connection in the channel's schema
    return response


def test_a_top_up_request_is_recorded_confirmed_by_another_person_and_credited_once(channels):
    alpha = channels["alpha"]
    with schema_context("alpha"):
        endpoint = WebhookEndpoint.objects.create(
            url="https://hooks.example.id/stock", events=["stock.credited"], secret="s" * 32
        )
    finance = finance_client()
    reference = unique("BCA")
    assert _ask(finance, 1_250, reference).status_code == 302
    assert _ask(finance, 1_250, reference).status_code == 302  # a double submit asks once
    request = TopUpRequest.objects.get(channel=alpha, transfer_reference=reference)
    assert TopUpRequest.objects.filter(channel=alpha, transfer_reference=reference).count() == 1
    assert request.state == TopUpRequest.State.REQUESTED and bytes(request.proof) == PDF
    assert AuditEntry.objects.filter(action="topup.requested", details__reference=reference).exists()

    maker, checker = make_staff(unique("maker")), make_staff(unique("checker"))
    maker_office, checker_office = office_client(maker), office_client(checker)
    deposits_page = maker_office.get("/backoffice/deposits/")
    assert f'data-topup="{request.pk}"'.encode() in deposits_page.content
    proof = maker_office.get(f"/backoffice/topups/{request.pk}/proof")
    assert proof.content == PDF and proof["Content-Type"] == "application/pdf"

    before = channel_balance(channel_id=alpha.pk)
    assert maker_office.post(f"/backoffice/topups/{request.pk}/record").status_code == 302
    request.refresh_from_db()
    deposit = request.deposit
    assert request.state == TopUpRequest.State.RECORDED and deposit.status == Deposit.Status.PENDING
    assert deposit.units == 1_250 and deposit.recorded_by_user == maker

    maker_office.post(f"/backoffice/deposits/{deposit.pk}/confirm")  # the maker cannot be the checker
    deposit.refresh_from_db()
    assert deposit.status == Deposit.Status.PENDING
    assert channel_balance(channel_id=alpha.pk).allocated == before.allocated

    checker_office.post(f"/backoffice/deposits/{deposit.pk}/confirm")
    checker_office.post(f"/backoffice/deposits/{deposit.pk}/confirm")  # again: nothing more
    maker_office.post(f"/backoffice/topups/{request.pk}/record")  # and recording again: nothing more
    after = channel_balance(channel_id=alpha.pk)
    assert after.allocated - before.allocated == 1_250
    assert after.available - before.available == 1_250
    request.refresh_from_db()
    assert request.state == TopUpRequest.State.CONFIRMED
    assert Deposit.objects.filter(channel=alpha, units=1_250, reference__contains=reference).count() == 1

    with schema_context("alpha"):
        deliveries = list(WebhookDelivery.objects.filter(endpoint=endpoint, event_type="stock.credited"))
    assert len(deliveries) == 1
    stock = deliveries[0].payload["stock"]
    assert stock["units"] == 1_250 and stock["top_up_request"] == request.pk
    assert stock["transfer_reference"] == reference and stock["available"] == after.available

    page = finance.get("/topups/")
    assert f'data-topup="{request.pk}"'.encode() in page.content and b'data-state="confirmed"' in page.content


@pytest.mark.parametrize(
    ("units", "proof", "name"),
    [(0, PDF, "zero.pdf"), (10, b"not a pdf at all", "notes.txt"), (10, b"%PDF-" + b"x" * 930_000, "big.pdf")],
)
def test_a_malformed_request_is_refused_and_nothing_is_recorded(units, proof, name):
    before = TopUpRequest.objects.count()
    response = _ask(finance_client(), units, unique("ref"), proof=proof, name=name)
    assert response.status_code == 400
    assert TopUpRequest.objects.count() == before


def test_staff_without_the_recorder_group_cannot_record_a_request(channels):
    finance = finance_client()
    reference = unique("ref")
    _ask(finance, 3, reference)
    request = TopUpRequest.objects.get(transfer_reference=reference)
    office = office_client(make_staff(unique("viewer"), groups=()))
    office.post(f"/backoffice/topups/{request.pk}/record")
    request.refresh_from_db()
    assert request.state == TopUpRequest.State.REQUESTED and request.deposit is None
