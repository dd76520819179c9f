"""A channel's monthly statement (page, CSV, PDF) equals the issuer's settlement report for that
channel and month, to the unit."""

from __future__ import annotations

import csv
import io

import pikepdf
import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone
from django_tenants.utils import schema_context

from billing import quota
from billing.settlement import settlement_rows
from billing.statements import month_days
from tenants.members.models import Member, Role
from tests.billing.factories import new_customer_id, unique
from tests.staff_helpers import make_staff, office_client

pytestmark = pytest.mark.django_db

KEYS = ("allocated", "sold", "refunded", "net_sold", "used", "duty_due_rupiah")


def finance(code: str = "alpha") -> Client:
    email = f"{unique('fin')}@example.id"
    with schema_context(code):
        user = get_user_model().objects.create_user(email, password="fin-pass-1234")
        Member.objects.create(user=user, email=email, role=Role.FINANCE)
    client = Client(HTTP_HOST=f"{code}.test")
    with schema_context(code):
        client.force_login(user)
    return client


def _month_movements(alpha) -> None:
    quota.allocate_stock(channel_id=alpha.pk, units=700, reference=unique("dep"))
    customer = new_customer_id()
    reserved = quota.reserve_stock(channel_id=alpha.pk, customer_id=customer, order_ref=unique("o"), quantity=40,
                                   timeout=quota.DEFAULT_HOLD_TIMEOUT)  # fmt: skip
    quota.settle_reservation(reservation_ids=reserved)
    quota.sell_from_stock(channel_id=alpha.pk, customer_id=customer, order_ref=unique("late"), quantity=5)
    for _ in range(3):
        hold = unique("hold")
        quota.hold_quota(channel_id=alpha.pk, customer_id=customer, hold_id=hold)
        quota.commit_hold(hold_id=hold)
    quota.refund_units(channel_id=alpha.pk, customer_id=customer, refund_ref=unique("r"), units=7)


def _pdf_text(data: bytes) -> str:
    """The strings the page shows, as a PDF reader's content parser reads them."""
    with pikepdf.open(io.BytesIO(data)) as pdf:
        operations = pikepdf.parse_content_stream(pdf.pages[0])
        shown = [bytes(operands[0]).decode("cp1252") for operands, operator in operations if str(operator) == "Tj"]
    return " | ".join(shown)


def test_the_statement_page_csv_and_pdf_equal_the_settlement_report(channels):
    alpha = channels["alpha"]
    today = timezone.localdate()
    month = f"{today.year:04d}-{today.month:02d}"
    first, last = month_days(today.year, today.month)
    office = office_client(make_staff(unique("ops")))  # (before a portal request leaves the channel's schema set)
    client = finance()
    before = client.get(f"/statements/?month={month}").context["statement"].figures
    _month_movements(alpha)

    report = next(r for r in settlement_rows(date_from=first, date_to=last) if r["channel_code"] == "alpha")
    expected = {key: report[key] for key in KEYS}
    assert expected["allocated"] - before["allocated"] == 700  # the movements are in this month's figures
    assert (expected["sold"] - before["sold"], expected["used"] - before["used"]) == (45, 3)
    assert expected["refunded"] - before["refunded"] == 7

    page = client.get(f"/statements/?month={month}")
    assert page.status_code == 200
    assert page.context["statement"].figures == expected
    assert sum(page.context["statement"].sold_per_day) == expected["sold"]
    html = page.content.decode()
    assert f'data-testid="sold">{expected["sold"]:,}<'.replace(",", ".") in html and "<svg" in html

    the_csv = client.get(f"/statements/{month}.csv")
    assert the_csv["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(the_csv.content.decode())))
    header, totals = rows[0], rows[1]
    assert {key: int(totals[header.index(key)]) for key in KEYS} == expected

    # The issuer's own report, as staff download it, says the same.
    issuer_csv = office.get(f"/backoffice/settlement.csv?date_from={first}&date_to={last}").content.decode()
    issuer_row = next(r for r in csv.DictReader(io.StringIO(issuer_csv)) if r["channel_code"] == "alpha")
    assert {key: int(issuer_row[key]) for key in KEYS} == expected

    pdf = finance().get(f"/statements/{month}.pdf")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    text = _pdf_text(pdf.content)
    assert "Alpha Channel (alpha)" in text and "Units sold per day" in text
    for key in ("allocated", "sold", "used"):
        assert f"{expected[key]:,}".replace(",", ".") in text
    assert f"Rp {expected['duty_due_rupiah']:,}".replace(",", ".") in text


def test_a_month_of_another_channel_is_never_shown(channels):
    quota.allocate_stock(channel_id=channels["beta"].pk, units=321, reference=unique("dep"))
    today = timezone.localdate()
    figures = finance("alpha").get(f"/statements/?month={today:%Y-%m}").context["statement"].figures
    first, last = month_days(today.year, today.month)
    alpha_row = next(r for r in settlement_rows(date_from=first, date_to=last) if r["channel_code"] == "alpha")
    assert figures["allocated"] == alpha_row["allocated"]


@pytest.mark.parametrize("path", ["/statements/?month=2026-13", "/statements/26-01.csv"])
def test_a_malformed_month_is_refused(path):
    response = finance().get(path)
    assert response.status_code == 400 and response.json()["code"] == "invalid_period"
