"""The portal's team: roles checked on every page and action (the role matrix), invitations and
password resets by one-time link, removal ending a member's sessions at once."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.urls import URLPattern
from django_tenants.utils import schema_context

from billing.ledger.models import TopUpRequest
from faces.compat.models import CompatUser
from faces.portal import urls as portal_urls
from gateway.apikeys import issue_api_key
from gateway.models import ApiKey
from outbox.models import WebhookDelivery, WebhookEndpoint
from staff.models import AuditEntry
from tenants.members.models import Member, OneTimeLink, Role
from tests.billing.factories import unique

pytestmark = pytest.mark.django_db

ROLES = [Role.OWNER, Role.DEVELOPER, Role.FINANCE, Role.SUPPORT]
# Who may open each portal page or do each action (written here, independently of the code).
ALLOWED = {
    "dashboard": set(ROLES),
    "customers": {Role.OWNER, Role.SUPPORT},
    "orders": {Role.OWNER, Role.FINANCE},
    "stamps": {Role.OWNER, Role.SUPPORT},
    "api-keys": {Role.OWNER, Role.DEVELOPER},
    "api-key-revoke": {Role.OWNER, Role.DEVELOPER},
    "api-key-rotate": {Role.OWNER, Role.DEVELOPER},
    "webhooks": {Role.OWNER, Role.DEVELOPER},
    "webhook-endpoint": {Role.OWNER, Role.DEVELOPER},
    "webhook-replay": {Role.OWNER, Role.DEVELOPER},
    "compat-users": {Role.OWNER, Role.DEVELOPER},
    "topups": {Role.OWNER, Role.FINANCE},
    "statement": {Role.OWNER, Role.FINANCE},
    "statement-file": {Role.OWNER, Role.FINANCE},
    "team": {Role.OWNER},
    "member-role": {Role.OWNER},
    "member-remove": {Role.OWNER},
}
ANONYMOUS = {"login", "logout", "join", "reset", "password-reset"}


def member_client(role: str, *, code: str = "alpha", email: str | None = None) -> tuple[Client, Member]:
    email = email or f"{unique(role)}@example.id"
    with schema_context(code):
        user = get_user_model().objects.create_user(email, email=email, password="member-pass-123")
        member = Member.objects.create(user=user, email=email, role=role)
    client = Client(HTTP_HOST=f"{code}.test")
    with schema_context(code):
        client.force_login(user)
    return client, member


def _pdf_upload():
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("proof.pdf", b"%PDF-1.4\n% proof\n", content_type="application/pdf")


def _state() -> tuple:
    """Everything a portal action could change, to prove a refusal changed nothing."""
    with schema_context("alpha"):
        return (
            sorted(ApiKey.objects.filter(channel__code="alpha").values_list("pk", "revoked_at", "expires_at")),
            sorted(WebhookEndpoint.objects.values_list("pk", "url")),
            sorted(WebhookDelivery.objects.values_list("pk", "status", "attempts")),
            sorted(Member.objects.values_list("pk", "role", "removed_at")),
            sorted(get_user_model().objects.values_list("pk", "is_active", "password")),
            CompatUser.objects.count(),
            TopUpRequest.objects.count(),
            AuditEntry.objects.count(),
        )


@pytest.fixture
def targets(channels):
    """One row for each action's URL to act on."""
    key = issue_api_key(channel=channels["alpha"], name=unique("k"), scopes=("read",)).api_key
    with schema_context("alpha"):
        endpoint = WebhookEndpoint.objects.create(url="https://hooks.example.id/x", events=["*"], secret="s" * 32)
        delivery = WebhookDelivery.objects.create(
            endpoint=endpoint, event_id=unique("evt"), event_type="order.paid", payload={}, status="failed"
        )
    _, victim = member_client(Role.SUPPORT)
    return {"key_id": key.pk, "endpoint_id": endpoint.pk, "delivery_id": delivery.pk, "member_id": victim.pk,
            "month": "2026-11", "kind": "pdf"}  # fmt: skip


def _portal_routes():
    return [p for p in portal_urls.urlpatterns if isinstance(p, URLPattern)]


def test_every_portal_route_is_in_the_matrix_and_checks_its_roles():
    names = {p.name for p in _portal_routes()}
    assert names == set(ALLOWED) | ANONYMOUS, "a new portal page needs a row in ALLOWED (and a role check)"
    for pattern in _portal_routes():
        if pattern.name in ALLOWED:
            assert set(pattern.callback.portal_roles) | {Role.OWNER} == ALLOWED[pattern.name], pattern.name


def _requests(name: str, targets: dict) -> list[tuple[str, str, dict]]:
    pattern = next(p for p in _portal_routes() if p.name == name)
    kwargs = {arg: targets[arg] for arg in pattern.pattern.regex.groupindex}
    from django.urls import reverse

    url = reverse(f"portal:{name}", kwargs=kwargs)
    bodies = {
        "api-keys": {"name": "matrix key", "scopes": ["read"]},
        "webhooks": {"url": "https://hooks.example.id/y", "events": ["*"]},
        "compat-users": {"username": unique("u"), "password": "compat-pass-123", "customer": 1},
        "team": {"email": f"{unique('new')}@example.id", "role": "support"},
        "member-role": {"role": "finance"},
        "topups": {"units": 5, "transfer_reference": unique("trf"), "proof": _pdf_upload()},
    }
    gets = [] if name.endswith(("-revoke", "-rotate", "-replay", "-role", "-remove")) else [("get", url, {})]
    read_only = {"dashboard", "customers", "orders", "stamps", "webhook-endpoint", "statement", "statement-file"}
    posts = [] if name in read_only else [("post", url, bodies.get(name, {}))]
    return gets + posts


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", sorted(ALLOWED))
def test_role_matrix(name, role, targets):
    client, _ = member_client(role)
    for method, url, body in _requests(name, targets):
        before = _state()
        response = getattr(client, method)(url, body)
        if role in ALLOWED[name]:
            assert response.status_code != 403, (method, url, role)
        else:
            assert response.status_code == 403, (method, url, role)
            assert response["Content-Type"].startswith("application/problem+json")
            assert response.json()["code"] == "role_refused"
            assert _state() == before, f"a refused {method} {url} changed something"


def test_a_signed_in_user_without_a_membership_is_refused_everywhere(targets):
    with schema_context("alpha"):
        user = get_user_model().objects.create_user(unique("loner"), password="loner-pass-123")
    client = Client(HTTP_HOST="alpha.test")
    with schema_context("alpha"):
        client.force_login(user)
    assert client.get("/").status_code == 403
    assert client.get("/keys/").json()["code"] == "role_refused"


def _link(message, kind: str) -> str:
    found = re.search(rf"http://alpha\.test(/{kind}/[A-Za-z0-9_-]+/)", message.body)
    assert found, message.body
    return found.group(1)


def test_the_owner_invites_a_developer_who_joins_once_by_the_link_and_signs_in(django_capture_on_commit_callbacks):
    owner, _ = member_client(Role.OWNER)
    email = f"{unique('dev')}@example.id"
    with django_capture_on_commit_callbacks(execute=True):
        response = owner.post("/team/", {"email": email, "role": "developer"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1 and mail.outbox[0].to == [email]
    path = _link(mail.outbox[0], "join")
    token = path.split("/")[2]
    with schema_context("alpha"):
        link = OneTimeLink.objects.get(user__username=email)
        assert link.digest != token and token not in link.digest  # stored hashed only
        assert Member.objects.get(email=email).role == Role.DEVELOPER

    visitor = Client(HTTP_HOST="alpha.test")
    assert visitor.get(path).status_code == 200
    assert visitor.post(path, {"password": "dev-pass-1234", "password2": "dev-pass-1234"}).status_code == 302
    again = visitor.post(path, {"password": "other-pass-123", "password2": "other-pass-123"})
    assert again.status_code == 400  # single use
    assert visitor.get(path).status_code == 400

    assert visitor.post("/login/", {"username": email, "password": "dev-pass-1234"}).status_code == 302
    assert visitor.get("/keys/").status_code == 200
    assert visitor.get("/orders/").status_code == 403
    with schema_context("alpha"):
        assert Member.objects.get(email=email).joined_at is not None
    assert AuditEntry.objects.filter(action="member.invited", details__email=email).exists()
    assert AuditEntry.objects.filter(action="member.joined").exists()


def test_an_expired_invitation_is_refused(django_capture_on_commit_callbacks):
    from datetime import timedelta

    from django.utils import timezone

    owner, _ = member_client(Role.OWNER)
    email = f"{unique('late')}@example.id"
    with django_capture_on_commit_callbacks(execute=True):
        owner.post("/team/", {"email": email, "role": "support"})
    path = _link(mail.outbox[-1], "join")
    with schema_context("alpha"):
        OneTimeLink.objects.filter(user__username=email).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = Client(HTTP_HOST="alpha.test").post(path, {"password": "late-pass-123", "password2": "late-pass-123"})
    assert response.status_code == 400
    with schema_context("alpha"):
        assert not get_user_model().objects.get(username=email).has_usable_password()


def test_a_removed_member_is_signed_out_at_once_and_cannot_sign_in():
    owner, _ = member_client(Role.OWNER)
    member, row = member_client(Role.FINANCE)
    assert member.get("/orders/").status_code == 200
    assert owner.post(f"/team/{row.pk}/remove").status_code == 302
    response = member.get("/orders/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    signed = Client(HTTP_HOST="alpha.test").post("/login/", {"username": row.email, "password": "member-pass-123"})
    assert signed.status_code == 200  # the form again: refused
    assert AuditEntry.objects.filter(action="member.removed", details__email=row.email).exists()


def test_the_last_owner_cannot_be_removed_or_demoted():
    with schema_context("alpha"):
        Member.objects.filter(role=Role.OWNER).update(role=Role.SUPPORT)  # (rolled back after the test)
    owner, row = member_client(Role.OWNER)
    owner.post(f"/team/{row.pk}/remove")
    owner.post(f"/team/{row.pk}/role", {"role": "developer"})
    with schema_context("alpha"):
        row.refresh_from_db()
    assert row.removed_at is None and row.role == Role.OWNER


def test_password_reset_by_one_time_link(django_capture_on_commit_callbacks):
    _, row = member_client(Role.SUPPORT)
    with schema_context("alpha"):
        Member.objects.filter(pk=row.pk).update(joined_at="2026-01-01T00:00:00Z")
    visitor = Client(HTTP_HOST="alpha.test")
    with django_capture_on_commit_callbacks(execute=True):
        assert visitor.post("/password-reset/", {"email": "nobody@example.id"}).status_code == 302
    assert mail.outbox == []  # says the same, sends nothing
    with django_capture_on_commit_callbacks(execute=True):
        visitor.post("/password-reset/", {"email": row.email})
    path = _link(mail.outbox[0], "reset")
    assert visitor.post(path, {"password": "fresh-pass-123", "password2": "fresh-pass-123"}).status_code == 302
    assert visitor.post("/login/", {"username": row.email, "password": "member-pass-123"}).status_code == 200
    assert visitor.post("/login/", {"username": row.email, "password": "fresh-pass-123"}).status_code == 302
    assert visitor.post(path, {"password": "third-pass-123", "password2": "third-pass-123"}).status_code == 400


def _nav(client) -> str:
    html = client.get("/").content.decode()
    return html[html.index('class="mainnav"') :].split("</nav>", 1)[0]


def test_the_nav_shows_only_the_pages_the_role_opens():
    developer, _ = member_client(Role.DEVELOPER)
    html = _nav(developer)
    assert 'href="/keys/"' in html and 'href="/webhooks/"' in html
    assert 'href="/orders/"' not in html and 'href="/statements/"' not in html and 'href="/team/"' not in html
    owner, _ = member_client(Role.OWNER)
    html = _nav(owner)
    assert all(f'href="{path}"' in html for path in ("/keys/", "/orders/", "/statements/", "/team/", "/topups/"))
