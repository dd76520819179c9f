"""The channel portal on each channel's own host: login, dashboard, lists, API keys, webhooks."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone
from django_tenants.utils import schema_context

from billing import quota
from billing.ledger.services import channel_balance
from billing.retail import services as retail
from gateway.apikeys import authenticate_api_key, issue_api_key
from gateway.models import ApiKey
from outbox.models import WebhookDelivery, WebhookEndpoint
from stamping.models import StampJob
from tenants.customers.models import Customer
from tests.billing.factories import unique

pytestmark = pytest.mark.django_db

PAGES = ["/", "/customers/", "/orders/", "/stamps/", "/keys/", "/webhooks/"]


def portal(code: str = "alpha", *, csrf: bool = False, username: str = "admin") -> Client:
    """A client signed in as ``username`` of channel ``code`` (a user of that channel's schema)."""
    client = Client(HTTP_HOST=f"{code}.test", enforce_csrf_checks=csrf)
    with schema_context(code):
        client.force_login(get_user_model().objects.get(username=username))
    return client


@pytest.fixture
def alpha(channels):
    return channels["alpha"]


@pytest.fixture
def customer(alpha):
    with schema_context("alpha"):
        yield Customer.objects.create(external_ref=unique("c"), name="Siti Rahmawati", email="siti@example.id")


def _job(customer, **fields) -> StampJob:
    defaults = {
        "customer": customer, "hold_id": unique("h"), "sha256_in": "a" * 64, "pages": 2, "page": 1,
        "llx": 0, "lly": 0, "urx": 50, "ury": 50, "file_name": "surat.pdf",
    }  # fmt: skip
    with schema_context("alpha"):
        return StampJob.objects.create(**(defaults | fields))


# -- access --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", PAGES)
def test_every_page_needs_a_portal_login(path):
    response = Client(HTTP_HOST="alpha.test").get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")


def test_the_portal_admin_signs_in_with_a_password_and_lands_on_the_dashboard():
    client = Client(HTTP_HOST="alpha.test")
    response = client.post("/login/", {"username": "admin", "password": "portal-pass-123"})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/").status_code == 200


def test_a_user_of_one_channel_cannot_sign_in_on_another():
    with schema_context("alpha"):
        get_user_model().objects.create_user("alice", password="alice-pass-123")
    on_beta = Client(HTTP_HOST="beta.test").post("/login/", {"username": "alice", "password": "alice-pass-123"})
    assert on_beta.status_code == 200 and b"did not match" in on_beta.content
    on_alpha = Client(HTTP_HOST="alpha.test").post("/login/", {"username": "alice", "password": "alice-pass-123"})
    assert on_alpha.status_code == 302


def test_a_session_of_one_channel_is_worthless_on_another():
    alpha_client = portal("alpha")
    session_cookie = alpha_client.cookies["sessionid"].value
    beta_client = Client(HTTP_HOST="beta.test")
    beta_client.cookies["sessionid"] = session_cookie
    assert beta_client.get("/").status_code == 302


def test_the_portal_is_not_served_on_the_issuer_host():
    assert Client(HTTP_HOST="issuer.test").get("/keys/", HTTP_ACCEPT="text/html").status_code == 404


# -- dashboard and lists -------------------------------------------------------------------


def test_dashboard_shows_the_channel_stock_and_a_drawn_chart(alpha, customer):
    quota.allocate_stock(channel_id=alpha.pk, units=300, reference=unique("dep"))
    _job(customer, status="stamped", unit="committed", serial="A" * 22, finished_at=timezone.now())
    _job(customer, status="failed", unit="released", error_code="signing_failed", finished_at=timezone.now())
    balance = channel_balance(channel_id=alpha.pk)

    response = portal().get("/")

    assert response.status_code == 200
    assert response.context["balance"] == balance
    html = response.content.decode()
    assert f'data-testid="balance-available">{balance.available:,}<'.replace(",", ".") in html
    assert "<svg" in html and 'class="bar ok"' in html and 'class="bar bad"' in html
    assert (response.context["stamped_total"], response.context["failed_total"]) == (1, 1)
    daily = portal().get("/?range=30d&partial=1")
    assert daily.status_code == 200 and b"<html" not in daily.content
    assert daily.context["window"].key == "30d" and daily.context["stamped_total"] == 1


def test_low_stock_is_flagged(alpha):
    response = portal("beta").get("/")  # beta has no stock at all
    assert response.context["low_stock"] is True
    assert b"Stock is low" in response.content


def test_customers_are_listed_with_their_quota(alpha, customer, django_assert_max_num_queries):
    quota.allocate_stock(channel_id=alpha.pk, units=5, reference=unique("dep"))
    reservation = quota.reserve_stock(
        channel_id=alpha.pk, customer_id=customer.pk, order_ref=unique("o"), quantity=4,
        timeout=quota.DEFAULT_HOLD_TIMEOUT,
    )  # fmt: skip
    quota.settle_reservation(reservation_ids=reservation)
    hold = unique("hold")
    quota.hold_quota(channel_id=alpha.pk, customer_id=customer.pk, hold_id=hold)
    quota.commit_hold(hold_id=hold)
    quota.hold_quota(channel_id=alpha.pk, customer_id=customer.pk, hold_id=unique("hold"))
    with schema_context("alpha"):
        for i in range(5):
            Customer.objects.create(external_ref=unique(f"x{i}"), name=f"Extra {i}")
    client = portal()

    with django_assert_max_num_queries(12):
        response = client.get("/customers/")

    rows = {c.pk: q for c, q in response.context["rows"]}
    assert rows[customer.pk] == {"available": 2, "held": 1, "used": 1}
    assert "Siti Rahmawati" in response.content.decode()
    found = client.get("/customers/?q=siti@example")
    assert [c.pk for c, _ in found.context["rows"]] == [customer.pk]


def test_orders_are_listed_with_status_badges(alpha, customer):
    quota.allocate_stock(channel_id=alpha.pk, units=5, reference=unique("dep"))
    with schema_context("alpha"):
        order = retail.create_order(channel=alpha, customer=customer, quantity=2)
    response = portal().get("/orders/?status=awaiting_payment")
    html = response.content.decode()
    assert f'data-order="{order.pk}"' in html
    assert 'class="badge awaiting_payment"' in html
    assert f"/pay/simulator/{order.pk}" in html
    assert order.pk not in portal().get("/orders/?status=credited").content.decode()


def test_stamp_history_shows_status_badges_and_links_serials_to_verification(customer, settings):
    settings.VERIFY_BASE_URL = "https://verify.example/v/"
    stamped = _job(customer, status="stamped", unit="committed", serial="2C5NV74I6D0HJ1EZ000DU9")
    failed = _job(customer, status="failed", unit="released", error_code="document_encrypted")
    queued = _job(customer)

    response = portal().get("/stamps/")

    html = response.content.decode()
    assert 'href="https://verify.example/v/2C5NV74I6D0HJ1EZ000DU9"' in html
    for job in (stamped, failed, queued):
        assert f'data-job="{job.id}"' in html
    assert 'class="badge failed"' in html and "document_encrypted" in html and 'class="badge queued"' in html
    assert 'data-live-src="?partial=1"' in html  # a job in flight: the page refreshes itself
    assert f'data-job="{failed.id}"' not in portal().get("/stamps/?status=stamped").content.decode()


# -- API keys ------------------------------------------------------------------------------


def test_a_new_key_is_shown_once_and_works(alpha):
    client = portal()
    created = client.post("/keys/", {"name": "Mobile app", "scopes": ["read", "stamp"]})
    assert created.status_code == 302 and created["Location"] == "/keys/"  # a reload never issues another key

    response = client.get("/keys/")
    assert response["Cache-Control"] == "no-store"
    plaintext = response.context["issued"]["plaintext"]
    assert plaintext in response.content.decode()
    key = ApiKey.objects.get(channel=alpha, name="Mobile app")
    assert key.scopes == ["read", "stamp"]
    assert authenticate_api_key(presented=plaintext, channel=alpha) == key
    again = client.get("/keys/")
    assert plaintext not in again.content.decode() and f"emk_{key.prefix}_" in again.content.decode()


@pytest.mark.parametrize(
    ("data", "message"),
    [({"name": "", "scopes": ["read"]}, "required"), ({"name": "x", "scopes": ["root"]}, "valid choice")],
)
def test_an_invalid_key_request_creates_nothing(alpha, data, message):
    before = ApiKey.objects.filter(channel=alpha).count()
    response = portal().post("/keys/", data)
    assert response.status_code == 400 and message in response.content.decode()
    assert ApiKey.objects.filter(channel=alpha).count() == before


def test_revoking_a_key_stops_it(alpha):
    issued = issue_api_key(channel=alpha, name="Old")
    response = portal().post(f"/keys/{issued.api_key.pk}/revoke", follow=True)
    assert response.status_code == 200 and b"is revoked" in response.content
    issued.api_key.refresh_from_db()
    assert issued.api_key.revoked_at is not None
    with pytest.raises(Exception, match="wrong, revoked or expired"):  # (#15: said "missing", which it is not)
        authenticate_api_key(presented=issued.plaintext, channel=alpha)


def test_rotating_a_key_shows_its_successor_once_and_keeps_the_old_one_for_the_overlap(alpha):
    issued = issue_api_key(channel=alpha, name="Rotating", scopes=("read",))
    client = portal()
    rotated = client.post(f"/keys/{issued.api_key.pk}/rotate")
    assert rotated.status_code == 302
    page = client.get("/keys/")
    successor = page.context["issued"]["plaintext"]
    assert successor in page.content.decode() and "keeps working for 24 hours" in page.content.decode()
    new_key = authenticate_api_key(presented=successor, channel=alpha)
    assert (new_key.name, new_key.scopes) == ("Rotating", ["read"])
    assert authenticate_api_key(presented=issued.plaintext, channel=alpha) == issued.api_key  # overlap
    issued.api_key.refresh_from_db()
    assert issued.api_key.expires_at is not None


def test_another_channels_key_cannot_be_rotated(channels):
    beta_key = issue_api_key(channel=channels["beta"], name="Beta's").api_key
    before = ApiKey.objects.count()
    assert portal("alpha").post(f"/keys/{beta_key.pk}/rotate").status_code == 404
    assert ApiKey.objects.count() == before


def test_another_channels_key_cannot_be_revoked(channels):
    beta_key = issue_api_key(channel=channels["beta"], name="Beta's").api_key
    response = portal("alpha").post(f"/keys/{beta_key.pk}/revoke")
    assert response.status_code == 404
    beta_key.refresh_from_db()
    assert beta_key.revoked_at is None


def test_a_post_without_csrf_is_refused_and_creates_nothing(alpha):
    before = ApiKey.objects.filter(channel=alpha).count()
    response = portal(csrf=True).post("/keys/", {"name": "Sneaky", "scopes": ["admin"]}, HTTP_ACCEPT="text/html")
    assert response.status_code == 403 and b"Form expired" in response.content
    assert ApiKey.objects.filter(channel=alpha).count() == before


def test_the_key_form_works_with_its_csrf_token(alpha):
    client = portal(csrf=True)
    token = client.get("/keys/").context["csrf_token"]
    response = client.post("/keys/", {"name": "With token", "scopes": ["read"], "csrfmiddlewaretoken": str(token)})
    assert response.status_code == 302


# -- webhooks ------------------------------------------------------------------------------


def test_an_endpoint_is_created_and_its_page_shows_the_signing_secret():
    client = portal()
    response = client.post(
        "/webhooks/", {"url": "https://hooks.example/emeterai", "events": ["order.paid", "stamp.completed"]}
    )
    assert response.status_code == 302
    with schema_context("alpha"):
        endpoint = WebhookEndpoint.objects.get(url="https://hooks.example/emeterai")
    assert endpoint.events == ["order.paid", "stamp.completed"]
    page = client.get(response["Location"])
    assert endpoint.secret in page.content.decode()


def test_an_invalid_endpoint_is_refused():
    with schema_context("alpha"):
        before = WebhookEndpoint.objects.count()
    response = portal().post("/webhooks/", {"url": "ftp://hooks.example", "events": ["*"]})
    assert response.status_code == 400
    with schema_context("alpha"):
        assert WebhookEndpoint.objects.count() == before


def test_deliveries_are_listed_and_a_failed_one_is_replayed():
    with schema_context("alpha"):
        endpoint = WebhookEndpoint.objects.create(url="https://hooks.example/x", secret="whsec_t", events=["*"])
        delivery = WebhookDelivery.objects.create(
            endpoint=endpoint, event_id=unique("evt"), event_type="order.paid", payload={}, status="failed",
            attempt_count=10, last_response_code=500, last_error="HTTP 500",
        )  # fmt: skip
    client = portal()
    listing = client.get("/webhooks/?status=failed").content.decode()
    assert f'data-delivery="{delivery.pk}"' in listing and "HTTP 500" in listing

    response = client.post(f"/webhooks/deliveries/{delivery.pk}/replay", {"back": f"/webhooks/{endpoint.pk}/"})

    assert response.status_code == 302 and response["Location"] == f"/webhooks/{endpoint.pk}/"
    with schema_context("alpha"):
        delivery.refresh_from_db()
    assert (delivery.status, delivery.attempt_count) == ("pending", 0)
    assert "replayed_at" in delivery.attempts[-1]


def test_replaying_an_unknown_delivery_is_404():
    assert portal().post("/webhooks/deliveries/999999/replay").status_code == 404


def test_a_replay_never_redirects_off_site():
    with schema_context("alpha"):
        endpoint = WebhookEndpoint.objects.create(url="https://hooks.example/y", secret="whsec_t", events=["*"])
        delivery = WebhookDelivery.objects.create(
            endpoint=endpoint, event_id=unique("evt"), event_type="order.paid", payload={}
        )
    response = portal().post(f"/webhooks/deliveries/{delivery.pk}/replay", {"back": "//evil.example/"})
    assert response["Location"] == "/webhooks/"
