"""Xendit (Invoices) against a local fake that speaks its API: one invoice per order, callbacks
verified by x-callback-token and confirmed with the invoice API, exact amounts, duplicates and
out-of-order callbacks, refunds idempotent by Idempotency-key (and pending refunds asked again)."""

from __future__ import annotations

import pytest
from django_tenants.utils import schema_context

from billing import quota
from billing.ledger import services as ledger
from billing.providers import get_provider
from billing.retail import services as retail
from billing.retail.models import Order, Payment, Refund
from tenants.customers.models import Customer
from tests.billing.factories import unique
from tests.billing.fake_providers import FakeXendit

pytestmark = pytest.mark.django_db
WEBHOOK = "/api/v1/payments/xendit/webhook"


@pytest.fixture
def xendit(settings):
    with FakeXendit() as fake:
        settings.PAYMENT_PROVIDERS = ["simulator", "xendit"]
        settings.XENDIT_SECRET_KEY = fake.secret
        settings.XENDIT_CALLBACK_TOKEN = fake.callback_token
        settings.XENDIT_API_BASE_URL = fake.base_url
        yield fake


@pytest.fixture
def alpha(channels):
    quota.allocate_stock(channel_id=channels["alpha"].pk, units=20, reference=unique("dep"))
    return channels["alpha"]


@pytest.fixture
def customer(alpha):
    with schema_context("alpha"):
        return Customer.objects.create(external_ref=unique("c"), name="Putu")


@pytest.fixture
def order(client_for, customer, xendit):
    response = client_for("alpha").post(
        "/api/v1/orders", {"customer": customer.pk, "quantity": 2, "provider": "xendit"},
        content_type="application/json",
    )  # fmt: skip
    assert response.status_code == 201, response.content
    order = response.json()
    assert xendit.requests == []  # the order API never calls the provider
    assert order["payment"]["pay_url"] == f"http://alpha.test/pay/xendit/{order['id']}"
    opened = client_for("alpha", key=None).get(f"/pay/xendit/{order['id']}", HTTP_ACCEPT="text/html")
    assert opened.status_code == 302  # the customer followed the pay_url: the invoice is open
    return order


def wallet(alpha, customer):
    return quota.wallet_balance(channel_id=alpha.pk, customer_id=customer.pk)["available"]


def callback(client_for, body: bytes, token: str | None):
    headers = {} if token is None else {"HTTP_X_CALLBACK_TOKEN": token}
    return client_for("alpha", key=None).post(WEBHOOK, data=body, content_type="application/json", **headers)


def payments(order_id: str) -> list[str]:
    with schema_context("alpha"):
        return sorted(Payment.objects.filter(order_id=order_id).values_list("status", flat=True))


def status(order_id: str) -> str:
    with schema_context("alpha"):
        return Order.objects.get(pk=order_id).status


def test_the_pay_url_opens_one_invoice_for_the_exact_amount(client_for, order, xendit):
    again = client_for("alpha", key=None).get(f"/pay/xendit/{order['id']}")

    invoice = xendit.invoice_for(order["id"])
    assert order["payment"]["method"] == "xendit"
    assert again.status_code == 302 and again["Location"] == invoice["invoice_url"]
    assert len(xendit.calls("POST", "/v2/invoices")) == 1
    sent = xendit.calls("POST", "/v2/invoices")[0]["body"]
    assert (sent["external_id"], sent["amount"], sent["currency"]) == (order["id"], order["total_rupiah"], "IDR")
    assert 0 < sent["invoice_duration"] <= 60 * 60 * 24


def test_an_invoice_opened_by_a_crashed_attempt_is_reused_not_opened_twice(client_for, customer, xendit):
    response = client_for("alpha").post(
        "/api/v1/orders", {"customer": customer.pk, "quantity": 1, "provider": "xendit"},
        content_type="application/json",
    )  # fmt: skip
    order = response.json()
    with schema_context("alpha"):
        # Xendit opened the invoice, but the process died before the order kept it
        first = get_provider("xendit")._open_invoice(Order.objects.get(pk=order["id"]))

    opened = client_for("alpha", key=None).get(f"/pay/xendit/{order['id']}")

    assert opened.status_code == 302 and opened["Location"] == first["invoice_url"]
    assert len(xendit.calls("POST", "/v2/invoices")) == 1 and len(xendit.invoices) == 1


def test_a_paid_callback_credits_once_however_often_it_arrives(client_for, alpha, customer, order, xendit):
    xendit.set_status(order["id"], "PAID")
    answers = [callback(client_for, xendit.callback(order["id"]), xendit.callback_token) for _ in range(3)]

    assert [a.status_code for a in answers] == [200, 200, 200]
    assert answers[0].json()["order_status"] == "credited"
    assert [a.json()["replayed"] for a in answers] == [False, True, True]
    assert wallet(alpha, customer) == 2 and payments(order["id"]) == ["succeeded"]
    # and SETTLED later (Xendit's next callback for the same invoice) changes nothing
    xendit.set_status(order["id"], "SETTLED")
    assert callback(client_for, xendit.callback(order["id"]), xendit.callback_token).json()["replayed"] is True
    assert wallet(alpha, customer) == 2


@pytest.mark.parametrize("token", [None, "", "cbtoken-fak", "cbtoken-fakE"])
def test_a_callback_without_the_right_token_is_refused_and_changes_nothing(
    client_for, alpha, customer, order, xendit, token
):
    xendit.set_status(order["id"], "PAID")
    response = callback(client_for, xendit.callback(order["id"]), token)
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "invalid_signature"
    assert wallet(alpha, customer) == 0 and payments(order["id"]) == []
    assert xendit.calls("GET", "/v2/invoices/") == []  # refused before anything else


def test_a_paid_claim_xendit_does_not_confirm_credits_nothing(client_for, alpha, customer, order, xendit):
    """The right token (say, leaked) on a callback claiming PAID for an invoice Xendit shows PENDING."""
    response = callback(client_for, xendit.callback(order["id"], status="PAID"), xendit.callback_token)
    assert response.status_code == 200 and response.json()["order_status"] == "awaiting_payment"
    assert wallet(alpha, customer) == 0 and payments(order["id"]) == []


def test_a_callback_for_an_invoice_xendit_does_not_know_is_refused(client_for, order, xendit):
    body = xendit.callback(order["id"], id="000000000000000000000000")
    response = callback(client_for, body, xendit.callback_token)
    assert response.status_code == 401 and response.json()["code"] == "invalid_signature"
    assert payments(order["id"]) == []


def test_an_expired_callback_after_payment_never_uncredits(client_for, alpha, customer, order, xendit):
    late_expiry = xendit.callback(order["id"], status="EXPIRED")  # sent earlier, delivered late
    xendit.set_status(order["id"], "PAID")
    callback(client_for, xendit.callback(order["id"]), xendit.callback_token)

    response = callback(client_for, late_expiry, xendit.callback_token)

    assert response.status_code == 200 and response.json()["order_status"] == "credited"
    assert wallet(alpha, customer) == 2 and payments(order["id"]) == ["succeeded"]


def test_an_expired_invoice_closes_the_order_and_gives_the_stock_back(client_for, alpha, order, xendit):
    available = ledger.stock_available(channel_id=alpha.pk)
    xendit.set_status(order["id"], "EXPIRED")
    response = callback(client_for, xendit.callback(order["id"]), xendit.callback_token)
    assert response.status_code == 200 and response.json()["order_status"] == "expired"
    assert ledger.stock_available(channel_id=alpha.pk) == available + 2
    assert payments(order["id"]) == ["failed"]


@pytest.mark.parametrize(("paid_amount", "currency", "reason"), [(-1, None, "amount"), (0, "PHP", "currency")])
def test_a_wrong_paid_amount_or_currency_is_refunded_not_credited(
    client_for, alpha, customer, order, xendit, paid_amount, currency, reason
):
    xendit.set_status(order["id"], "PAID", paid_amount=order["total_rupiah"] + paid_amount, currency=currency)
    response = callback(client_for, xendit.callback(order["id"]), xendit.callback_token)
    assert response.status_code == 200 and reason in response.json()["note"]
    assert wallet(alpha, customer) == 0 and payments(order["id"]) == ["refund_pending"]
    assert status(order["id"]) == "awaiting_payment"


def paid(client_for, order, xendit):
    xendit.set_status(order["id"], "PAID")
    answer = callback(client_for, xendit.callback(order["id"]), xendit.callback_token)
    assert answer.json()["order_status"] == "credited"


def test_a_refund_goes_through_the_refunds_api_once_by_idempotency_key(client_for, alpha, customer, order, xendit):
    paid(client_for, order, xendit)
    with schema_context("alpha"):
        refund = retail.refund_order(channel=alpha, order_id=order["id"], customer=customer, units=1, request_key="x1")
        assert retail.send_pending_refunds(channel=alpha) == 1
        refund.refresh_from_db()
        # the sender crashed after Xendit's answer and sends the same reference again: the same refund
        again = get_provider("xendit").refund(
            provider_ref=xendit.invoice_for(order["id"])["id"],
            amount_rupiah=refund.amount_rupiah,
            reference=f"refund:{refund.pk}",
        )

    assert refund.status == Refund.Status.SUCCEEDED
    sent = xendit.calls("POST", "/refunds")
    assert len(sent) == 2 and {s["headers"]["Idempotency-Key"] for s in sent} == {f"refund:{refund.pk}"}
    assert sent[0]["body"]["invoice_id"] == xendit.invoice_for(order["id"])["id"]
    assert sent[0]["body"]["amount"] == refund.amount_rupiah
    assert len(xendit.refunds) == 1 and again.reference == refund.provider_refund_ref


def test_a_pending_refund_is_asked_again_until_xendit_finishes_it(client_for, alpha, customer, order, xendit):
    paid(client_for, order, xendit)
    xendit.refund_outcome = "PENDING"
    with schema_context("alpha"):
        refund = retail.refund_order(channel=alpha, order_id=order["id"], customer=customer, units=2, request_key="x2")
        assert retail.send_pending_refunds(channel=alpha) == 0
        refund.refresh_from_db()
        assert refund.status == Refund.Status.PENDING

        (only,) = xendit.refunds.values()
        only["status"] = "SUCCEEDED"  # Xendit finishes it
        assert retail.send_pending_refunds(channel=alpha) == 1
        refund.refresh_from_db()
    assert refund.status == Refund.Status.SUCCEEDED and len(xendit.refunds) == 1


def test_a_refused_refund_fails_and_the_units_come_back(client_for, alpha, customer, order, xendit):
    paid(client_for, order, xendit)
    xendit.refund_outcome = "FAILED"
    with schema_context("alpha"):
        refund = retail.refund_order(channel=alpha, order_id=order["id"], customer=customer, units=2, request_key="x3")
        assert wallet(alpha, customer) == 0
        retail.send_pending_refunds(channel=alpha)
        refund.refresh_from_db()
    assert refund.status == Refund.Status.FAILED
    assert wallet(alpha, customer) == 2
