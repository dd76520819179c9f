"""Midtrans (Snap) against a local fake that speaks its API: checkout once per order, notifications
verified by signature_key and confirmed with the status API, exact amounts, duplicates and
out-of-order notifications, refunds idempotent by refund_key."""

from __future__ import annotations

import json

import pytest
from django_tenants.utils import schema_context

from billing import quota
from billing.ledger import services as ledger
from billing.providers import get_provider
from billing.retail import services as retail
from billing.retail.models import Order, Payment, Refund
from tenants.customers.models import Customer
from tests.billing.factories import unique
from tests.billing.fake_providers import FakeMidtrans

pytestmark = pytest.mark.django_db
WEBHOOK = "/api/v1/payments/midtrans/webhook"


@pytest.fixture
def midtrans(settings):
    with FakeMidtrans() as fake:
        settings.PAYMENT_PROVIDERS = ["midtrans"]
        settings.MIDTRANS_SERVER_KEY = fake.secret
        settings.MIDTRANS_SNAP_BASE_URL = settings.MIDTRANS_API_BASE_URL = fake.base_url
        yield fake


@pytest.fixture
def alpha(channels):
    quota.allocate_stock(channel_id=channels["alpha"].pk, units=20, reference=unique("dep"))
    return channels["alpha"]


@pytest.fixture
def customer(alpha):
    with schema_context("alpha"):
        return Customer.objects.create(external_ref=unique("c"), name="Dewi")


def place_order(client_for, customer) -> dict:
    response = client_for("alpha").post(
        "/api/v1/orders", {"customer": customer.pk, "quantity": 3}, content_type="application/json"
    )
    assert response.status_code == 201, response.content
    return response.json()


def open_pay_url(client_for, order: dict):
    """The customer follows the order's pay_url (on the channel host)."""
    assert order["payment"]["pay_url"] == f"http://alpha.test/pay/midtrans/{order['id']}"
    return client_for("alpha", key=None).get(f"/pay/midtrans/{order['id']}", HTTP_ACCEPT="text/html")


@pytest.fixture
def order(client_for, customer, midtrans):
    """An order whose customer opened its pay_url (so Midtrans has its Snap transaction)."""
    order = place_order(client_for, customer)
    assert open_pay_url(client_for, order).status_code == 302
    return order


def wallet(alpha, customer):
    return quota.wallet_balance(channel_id=alpha.pk, customer_id=customer.pk)["available"]


def notify(client_for, body: bytes):
    return client_for("alpha", key=None).post(WEBHOOK, data=body, content_type="application/json")


def stored(order_id: str) -> Order:
    with schema_context("alpha"):
        return Order.objects.get(pk=order_id)


def payments(order_id: str) -> list[str]:
    with schema_context("alpha"):
        return sorted(Payment.objects.filter(order_id=order_id).values_list("status", flat=True))


def test_the_order_api_never_calls_midtrans(client_for, customer, midtrans):
    order = place_order(client_for, customer)
    again = client_for("alpha").get(f"/api/v1/orders/{order['id']}")

    assert order["provider"] == "midtrans"  # the first enabled provider, as the order named none
    assert order["payment"]["method"] == "midtrans"
    assert again.json()["payment"] == order["payment"]
    assert midtrans.requests == []  # (no provider call while the order's locks are held)


def test_the_pay_url_opens_one_snap_checkout_with_the_exact_amount(client_for, order, midtrans):
    again = open_pay_url(client_for, order)

    snap = midtrans.snaps[order["id"]]
    assert again.status_code == 302
    assert again["Location"] == f"{midtrans.base_url}/snap/v4/redirection/{snap['token']}"
    assert len(midtrans.calls("POST", "/snap/v1/transactions")) == 1  # opened once, followed twice
    details = snap["request"]["transaction_details"]
    assert details == {"order_id": order["id"], "gross_amount": order["total_rupiah"]}
    assert sum(i["price"] * i["quantity"] for i in snap["request"]["item_details"]) == order["total_rupiah"]
    assert snap["notification_url"] == "http://alpha.test" + WEBHOOK  # this channel's host


def test_a_settlement_credits_once_however_often_it_is_notified(client_for, alpha, customer, order, midtrans):
    midtrans.set_status(order["id"], "settlement", payment_type="gopay")

    first = notify(client_for, midtrans.notification(order["id"]))
    repeats = [notify(client_for, midtrans.notification(order["id"])) for _ in range(2)]

    assert first.status_code == 200, first.content
    assert first.json()["order_status"] == "credited" and first.json()["replayed"] is False
    assert all(r.status_code == 200 and r.json()["replayed"] is True for r in repeats)
    assert wallet(alpha, customer) == 3
    assert payments(order["id"]) == ["succeeded"]
    assert len(midtrans.calls("GET", "/v2/")) == 3  # every notification confirmed with the status API


def test_pending_records_nothing_and_the_settlement_after_it_credits(client_for, alpha, customer, order, midtrans):
    midtrans.set_status(order["id"], "pending", payment_type="bank_transfer")
    pending = notify(client_for, midtrans.notification(order["id"]))
    assert pending.status_code == 200 and pending.json()["order_status"] == "awaiting_payment"
    assert payments(order["id"]) == [] and wallet(alpha, customer) == 0

    midtrans.set_status(order["id"], "settlement", payment_type="bank_transfer")
    assert notify(client_for, midtrans.notification(order["id"])).json()["order_status"] == "credited"
    assert wallet(alpha, customer) == 3


def test_late_pending_and_expire_notifications_never_uncredit(client_for, alpha, customer, order, midtrans):
    pending = midtrans.set_status(order["id"], "pending")
    late_pending = midtrans.notification(order["id"])  # sent before the payment, delivered after it
    midtrans.set_status(order["id"], "settlement")
    notify(client_for, midtrans.notification(order["id"]))

    answers = [
        notify(client_for, late_pending),
        # an expiry notification (validly signed) arriving after the payment: the status API says settlement
        notify(client_for, midtrans.notification(
            order["id"], transaction_status="expire", status_code="407",
            signature_key=midtrans.sign({**pending, "status_code": "407"}),
        )),
    ]  # fmt: skip

    assert [a.status_code for a in answers] == [200, 200]
    assert stored(order["id"]).status == "credited"
    assert wallet(alpha, customer) == 3
    assert payments(order["id"]) == ["succeeded"]


def test_a_forged_notification_is_refused_and_changes_nothing(client_for, alpha, customer, order, midtrans):
    midtrans.set_status(order["id"], "pending")
    forged = [
        midtrans.notification(order["id"], transaction_status="settlement", status_code="200"),  # old signature
        midtrans.notification(order["id"], signature_key=midtrans.sign(
            {"order_id": order["id"], "status_code": "200", "gross_amount": f"{order['total_rupiah']}.00"}, key="",
        ), status_code="200", transaction_status="settlement"),  # signed with an empty key
    ]  # fmt: skip

    for body in forged:
        response = notify(client_for, body)
        assert response.status_code == 401
        assert response["Content-Type"] == "application/problem+json"
        assert response.json()["code"] == "invalid_signature"
    assert wallet(alpha, customer) == 0 and payments(order["id"]) == []
    assert stored(order["id"]).status == "awaiting_payment"


def test_a_signed_claim_the_status_api_does_not_confirm_credits_nothing(client_for, alpha, customer, order, midtrans):
    """A notification signed with the right key (say, a leaked one) that claims a settlement Midtrans
    does not show: the status API is what counts."""
    transaction = midtrans.set_status(order["id"], "pending")
    claim = {**transaction, "transaction_status": "settlement", "status_code": "200"}
    response = notify(client_for, midtrans.notification(
        order["id"], transaction_status="settlement", status_code="200", signature_key=midtrans.sign(claim),
    ))  # fmt: skip
    assert response.status_code == 200 and response.json()["order_status"] == "awaiting_payment"
    assert wallet(alpha, customer) == 0 and payments(order["id"]) == []


def test_a_notification_for_a_transaction_midtrans_does_not_know_is_refused(client_for, order, midtrans):
    transaction = midtrans.set_status(order["id"], "settlement")
    midtrans.transactions.clear()  # (Midtrans answers 404 for it)
    response = notify(client_for, _body(transaction))
    assert response.status_code == 401 and response.json()["code"] == "invalid_signature"
    assert payments(order["id"]) == []


def _body(transaction: dict) -> bytes:
    return json.dumps(transaction).encode()


@pytest.mark.parametrize(
    ("gross_amount", "currency", "reason"),
    [("{total_minus_one}.00", "IDR", "amount"), ("{total}.00", "USD", "currency")],
)
def test_a_wrong_amount_or_currency_is_refunded_not_credited(
    client_for, alpha, customer, order, midtrans, gross_amount, currency, reason
):
    total = order["total_rupiah"]
    midtrans.set_status(
        order["id"], "settlement", currency=currency,
        gross_amount=gross_amount.format(total=total, total_minus_one=total - 1),
    )  # fmt: skip
    response = notify(client_for, midtrans.notification(order["id"]))
    assert response.status_code == 200
    assert reason in response.json()["note"] and "refunded" in response.json()["note"]
    assert wallet(alpha, customer) == 0
    assert payments(order["id"]) == ["refund_pending"]


def test_a_fractional_amount_is_refused_as_malformed(client_for, alpha, customer, order, midtrans):
    midtrans.set_status(order["id"], "settlement", gross_amount=f"{order['total_rupiah']}.50")
    response = notify(client_for, midtrans.notification(order["id"]))
    assert response.status_code == 400 and response.json()["code"] == "malformed_webhook"
    assert wallet(alpha, customer) == 0 and payments(order["id"]) == []


@pytest.mark.parametrize(("state", "order_status"), [("expire", "expired"), ("deny", "payment_failed")])
def test_an_expired_or_denied_payment_closes_the_order_and_gives_the_stock_back(
    client_for, alpha, order, midtrans, state, order_status
):
    available = ledger.stock_available(channel_id=alpha.pk)
    midtrans.set_status(order["id"], state, payment_type="credit_card")
    response = notify(client_for, midtrans.notification(order["id"]))
    assert response.status_code == 200 and response.json()["order_status"] == order_status
    assert payments(order["id"]) == ["failed"]
    assert ledger.stock_available(channel_id=alpha.pk) == available + 3


def test_the_pay_url_of_a_paid_order_or_a_disabled_provider_opens_nothing(client_for, order, midtrans, settings):
    midtrans.set_status(order["id"], "settlement")
    notify(client_for, midtrans.notification(order["id"]))
    paid = open_pay_url(client_for, order)
    settings.PAYMENT_PROVIDERS = ["simulator"]
    disabled = client_for("alpha", key=None).get(f"/pay/midtrans/{order['id']}")

    assert paid.status_code == 409 and "order_not_payable" in paid.content.decode()
    assert disabled.status_code == 404 and disabled.json()["code"] == "unknown_provider"
    assert len(midtrans.calls("POST", "/snap/v1/transactions")) == 1


def test_an_unreachable_snap_api_answers_503_and_the_next_visit_opens_the_checkout(
    client_for, customer, midtrans, settings
):
    order = place_order(client_for, customer)
    settings.MIDTRANS_SNAP_BASE_URL = "http://127.0.0.1:9"
    down = client_for("alpha", key=None).get(f"/pay/midtrans/{order['id']}")
    assert down.status_code == 503 and down.json()["code"] == "payment_provider_unavailable"
    assert stored(order["id"]).checkout == {}

    settings.MIDTRANS_SNAP_BASE_URL = midtrans.base_url
    assert open_pay_url(client_for, order).status_code == 302
    assert stored(order["id"]).checkout["token"] == midtrans.snaps[order["id"]]["token"]


def test_unreachable_status_api_answers_503_and_records_nothing(client_for, alpha, customer, order, midtrans, settings):
    midtrans.set_status(order["id"], "settlement")
    body = midtrans.notification(order["id"])
    settings.MIDTRANS_API_BASE_URL = "http://127.0.0.1:9"  # nothing listens: Midtrans will retry later
    response = notify(client_for, body)
    assert response.status_code == 503 and response.json()["code"] == "payment_provider_unavailable"
    assert payments(order["id"]) == [] and wallet(alpha, customer) == 0


def credited_order(client_for, order, midtrans, payment_type="gopay"):
    midtrans.set_status(order["id"], "settlement", payment_type=payment_type)
    assert notify(client_for, midtrans.notification(order["id"])).json()["order_status"] == "credited"


def test_a_refund_goes_through_the_refund_api_once_by_refund_key(client_for, alpha, customer, order, midtrans):
    credited_order(client_for, order, midtrans)
    with schema_context("alpha"):
        refund = retail.refund_order(channel=alpha, order_id=order["id"], customer=customer, units=2, request_key="r1")
        assert retail.send_pending_refunds(channel=alpha) == 1
        refund.refresh_from_db()
        transaction_id = Payment.objects.get(order_id=order["id"]).provider_ref
        # a sender that crashed after Midtrans's answer sends the same reference again: the same refund
        again = get_provider("midtrans").refund(
            provider_ref=transaction_id, amount_rupiah=refund.amount_rupiah, reference=f"refund:{refund.pk}"
        )

    assert refund.status == Refund.Status.SUCCEEDED
    sent = midtrans.calls("POST", f"/v2/{transaction_id}/refund")
    assert len(sent) == 2 and sent[0]["body"] == sent[1]["body"]
    assert sent[0]["body"]["amount"] == refund.amount_rupiah and sent[0]["body"]["refund_key"] == f"refund-{refund.pk}"
    assert len(midtrans.refunds) == 1  # one refund at Midtrans
    assert again.succeeded and again.reference == refund.provider_refund_ref


def test_a_refund_midtrans_cannot_make_fails_and_the_units_come_back(client_for, alpha, customer, order, midtrans):
    credited_order(client_for, order, midtrans, payment_type="bank_transfer")  # (not refundable at Midtrans)
    with schema_context("alpha"):
        refund = retail.refund_order(channel=alpha, order_id=order["id"], customer=customer, units=1, request_key="r2")
        assert wallet(alpha, customer) == 2
        retail.send_pending_refunds(channel=alpha)
        refund.refresh_from_db()
    assert refund.status == Refund.Status.FAILED
    assert wallet(alpha, customer) == 3
    assert midtrans.refunds == {}


def test_an_unreachable_refund_api_leaves_the_refund_pending(client_for, alpha, customer, order, midtrans, settings):
    credited_order(client_for, order, midtrans)
    with schema_context("alpha"):
        refund = retail.refund_order(channel=alpha, order_id=order["id"], customer=customer, units=1, request_key="r3")
        settings.MIDTRANS_API_BASE_URL = "http://127.0.0.1:9"
        assert retail.send_pending_refunds(channel=alpha) == 0
        refund.refresh_from_db()
        assert refund.status == Refund.Status.PENDING
        settings.MIDTRANS_API_BASE_URL = midtrans.base_url
        assert retail.send_pending_refunds(channel=alpha) == 1
        refund.refresh_from_db()
    assert refund.status == Refund.Status.SUCCEEDED and len(midtrans.refunds) == 1
