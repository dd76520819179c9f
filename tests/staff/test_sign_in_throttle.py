"""Sign-ins are throttled per account and per client address, on the channel portal and on the back
office (the Redis limiter): after the limit even the right password is refused until the wait is over."""

from __future__ import annotations

import uuid

import pytest
from django.test import Client

from conftest import ISSUER_HOST
from gateway import ratelimit
from tests.staff_helpers import make_staff

pytestmark = pytest.mark.django_db

WRONG = "not-the-password"


@pytest.fixture(autouse=True)
def _strict_throttles(settings):
    settings.RATE_LIMIT_NAMESPACE = f"login-{uuid.uuid4().hex}"  # fresh buckets for each test
    settings.LOGIN_THROTTLES = ((5, 60), (8, 60))  # 5 tries an account, 8 an address, then one a minute
    ratelimit.reset_fallback_state()


def sign_in(host: str, path: str, username: str, password: str, address: str = "198.51.100.7"):
    return Client(HTTP_HOST=host, REMOTE_ADDR=address).post(path, {"username": username, "password": password})


@pytest.mark.parametrize(
    ("host", "path", "username", "password"),
    [
        ("alpha.test", "/login/", "admin", "portal-pass-123"),
        (ISSUER_HOST, "/backoffice/login/", "ops", "staff-pass-123"),
    ],
    ids=["portal", "backoffice"],
)
def test_after_five_wrong_passwords_the_right_one_is_refused_too(host, path, username, password):
    if host == ISSUER_HOST:
        make_staff("ops")
    for _ in range(5):
        wrong = sign_in(host, path, username, WRONG)
        assert wrong.status_code == 200 and "_auth_user_id" not in wrong.wsgi_request.session
    for _ in range(15):  # the issue's 20 wrong passwords: the rest are refused without being checked
        assert sign_in(host, path, username, WRONG).status_code == 429
    refused = sign_in(host, path, username, password)
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert "Too many sign-in attempts" in refused.content.decode()
    assert "_auth_user_id" not in refused.wsgi_request.session
    # Another address does not help: the account itself waits.
    assert sign_in(host, path, username, password, address="203.0.113.9").status_code == 429


def test_one_address_cannot_guess_across_many_accounts():
    make_staff("ops")
    for index in range(8):
        assert sign_in(ISSUER_HOST, "/backoffice/login/", f"someone-{index}", WRONG).status_code == 200
    refused = sign_in(ISSUER_HOST, "/backoffice/login/", "ops", "staff-pass-123")
    assert refused.status_code == 429 and "_auth_user_id" not in refused.wsgi_request.session
    # The same account from another address still signs in.
    elsewhere = sign_in(ISSUER_HOST, "/backoffice/login/", "ops", "staff-pass-123", address="203.0.113.9")
    assert elsewhere.status_code == 302


def test_an_ipv6_client_is_one_address_across_its_64():
    """One subscriber gets a /64: fresh addresses in it are the same address to the throttle."""
    for index in range(8):
        address = f"2001:db8:1:2::{index + 1:x}"
        assert sign_in(ISSUER_HOST, "/backoffice/login/", f"someone-{index}", WRONG, address=address).status_code == 200
    refused = sign_in(ISSUER_HOST, "/backoffice/login/", "someone-else", WRONG, address="2001:db8:1:2::ff")
    assert refused.status_code == 429
    assert (
        sign_in(ISSUER_HOST, "/backoffice/login/", "someone-else", WRONG, address="2001:db8:1:3::1").status_code == 200
    )


def test_a_successful_sign_in_gives_the_account_its_attempts_back():
    for _ in range(4):
        assert sign_in("alpha.test", "/login/", "admin", WRONG).status_code == 200
    assert sign_in("alpha.test", "/login/", "admin", "portal-pass-123").status_code == 302
    for _ in range(4):  # would be refused at the second one without the reset
        assert sign_in("alpha.test", "/login/", "admin", WRONG, address="203.0.113.10").status_code == 200


def test_the_portal_of_one_channel_does_not_throttle_another():
    for _ in range(6):
        sign_in("alpha.test", "/login/", "admin", WRONG)
    assert sign_in("beta.test", "/login/", "admin", "portal-pass-123", address="203.0.113.11").status_code == 302
