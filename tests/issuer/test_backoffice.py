"""The issuer's back office (issuer host, /backoffice/) and the public status page."""

from __future__ import annotations

import pytest
from django.apps import apps

if not apps.ready:  # an engine-only run (-p no:django): these need Django and the database
    pytest.skip("back-office tests need pytest-django", allow_module_level=True)

import csv
import datetime as dt
import io
import time

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test import Client
from django.utils import timezone
from django_tenants.utils import schema_context

from billing import quota
from billing.ledger.models import Deposit, ReconciliationRun
from billing.ledger.services import channel_balance
from conftest import ISSUER_HOST
from faces.backoffice import selectors
from faces.charts import Series, bar_chart, line_chart, nice_scale
from issuer.incidents import create_incident_note, resolve_incident_note
from issuer.models import IncidentNote, Serial
from issuer.serials import new_serial
from tests.billing.factories import new_customer_id, unique
from tests.staff_helpers import make_staff, office_client, totp_code

pytestmark = pytest.mark.django_db

PAGES = [
    "/backoffice/",
    "/backoffice/deposits/",
    "/backoffice/reconciliation/",
    "/backoffice/settlement/",
    "/backoffice/settlement.csv",
    "/backoffice/serials/",
    "/backoffice/incidents/",
    "/backoffice/brownout/",
]


@pytest.fixture(autouse=True)
def _fresh_status_page():
    selectors.forget_cached_status()
    yield
    selectors.forget_cached_status()


@pytest.fixture
def staff():
    return make_staff("ops")


@pytest.fixture
def office(staff) -> Client:
    return office_client(staff)


def _used_serial(channel, *, used_at=None) -> Serial:
    used_at = used_at or timezone.now()
    return Serial.objects.create(
        serial=new_serial(), channel=channel, status="used", profile="default", document_sha256="a" * 64,
        stamped_sha256="b" * 64, stamped_size=1234, page=1, page_count=1, box_llx=0, box_lly=0, box_urx=50,
        box_ury=50, used_at=used_at, job_ref=unique("job"), document_number="INV-7",
    )  # fmt: skip


# -- access --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", PAGES)
def test_anonymous_visitors_are_sent_to_the_login_page(path):
    response = Client(HTTP_HOST=ISSUER_HOST).get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/backoffice/login/?next=")


@pytest.mark.parametrize("path", PAGES)
def test_signed_in_users_who_are_not_staff_are_refused(path):
    user = get_user_model().objects.create_user("clerk", password="clerk-pass-123", is_staff=False)
    client = Client(HTTP_HOST=ISSUER_HOST)
    client.force_login(user)
    response = client.get(path, HTTP_ACCEPT="text/html")
    assert response.status_code == 403
    assert b"Issuer staff only" in response.content


def test_staff_signs_in_with_a_password_and_a_code_and_out_again(staff):
    client = Client(HTTP_HOST=ISSUER_HOST, enforce_csrf_checks=True)
    page = client.get("/backoffice/login/")
    assert page.status_code == 200
    token = page.cookies["csrftoken"].value
    signed_in = client.post(
        "/backoffice/login/", {"username": "ops", "password": "staff-pass-123", "csrfmiddlewaretoken": token}
    )
    assert signed_in.status_code == 302 and signed_in["Location"] == "/backoffice/login/code/"
    # The password alone opens nothing: every page sends the person to the code page.
    waiting = client.get("/backoffice/deposits/")
    assert waiting.status_code == 302 and waiting["Location"] == "/backoffice/login/code/?next=/backoffice/deposits/"
    token = client.cookies["csrftoken"].value
    wrong = client.post("/backoffice/login/code/", {"token": "000000", "csrfmiddlewaretoken": token})
    assert wrong.status_code == 400 and b"not valid" in wrong.content
    assert client.get("/backoffice/").status_code == 302
    device = staff.totpdevice_set.get()
    device.throttling_failure_count = 0  # the wrong code above made the device wait: the person waits, the test not
    device.throttling_failure_timestamp = None
    device.save()
    verified = client.post(
        "/backoffice/login/code/",
        {"token": totp_code(device), "next": "/backoffice/deposits/", "csrfmiddlewaretoken": token},
    )
    assert verified.status_code == 302 and verified["Location"] == "/backoffice/deposits/"
    assert client.get("/backoffice/").status_code == 200
    out = client.post("/backoffice/logout/", {"csrfmiddlewaretoken": client.cookies["csrftoken"].value})
    assert out.status_code == 302
    assert client.get("/backoffice/").status_code == 302


def test_a_user_who_is_not_staff_cannot_sign_in():
    get_user_model().objects.create_user("clerk", password="clerk-pass-123", is_staff=False)
    response = Client(HTTP_HOST=ISSUER_HOST).post(
        "/backoffice/login/", {"username": "clerk", "password": "clerk-pass-123"}
    )
    assert response.status_code == 200
    assert b"not issuer staff" in response.content
    assert "_auth_user_id" not in response.wsgi_request.session


def test_a_channel_portal_admin_is_not_issuer_staff():
    """alpha's portal admin lives in alpha's schema; the issuer host knows no such user."""
    response = Client(HTTP_HOST=ISSUER_HOST).post(
        "/backoffice/login/", {"username": "admin", "password": "portal-pass-123"}
    )
    assert response.status_code == 200
    assert b"did not match" in response.content or b"correct username" in response.content


def test_a_post_without_a_csrf_token_is_refused_and_changes_nothing(staff, channels):
    deposit = Deposit.objects.create(channel=channels["alpha"], units=5, reference=unique("d"), amount_rupiah=50_000)
    client = Client(HTTP_HOST=ISSUER_HOST, enforce_csrf_checks=True)
    client.force_login(staff)
    before = channel_balance(channel_id=channels["alpha"].pk)
    response = client.post(f"/backoffice/deposits/{deposit.pk}/confirm", HTTP_ACCEPT="text/html")
    assert response.status_code == 403
    assert b"Form expired" in response.content
    deposit.refresh_from_db()
    assert deposit.status == "pending"
    assert channel_balance(channel_id=channels["alpha"].pk) == before


def test_the_back_office_is_not_served_on_a_channel_host(staff):
    response = Client(HTTP_HOST="alpha.test").get("/backoffice/", HTTP_ACCEPT="application/json")
    assert response.status_code == 404


# -- overview ------------------------------------------------------------------------------


def test_overview_lists_every_channel_with_stock_queue_and_charts(office, channels):
    alpha = channels["alpha"]
    quota.allocate_stock(channel_id=alpha.pk, units=250, reference=unique("dep"))
    _used_serial(alpha)
    balance = channel_balance(channel_id=alpha.pk)

    response = office.get("/backoffice/")

    assert response.status_code == 200
    rows = {row["channel"].code: row for row in response.context["rows"]}
    assert {"alpha", "beta"} <= set(rows)
    assert rows["alpha"]["balance"] == balance
    assert rows["alpha"]["low_stock"] is (balance.available < alpha.low_stock_threshold)
    assert rows["beta"]["low_stock"] is True  # beta has no stock at all
    html = response.content.decode()
    assert f'data-testid="available-alpha"><strong>{balance.available:,}</strong>'.replace(",", ".") in html
    assert html.count("<svg") == 2 and "Stamps per minute" in html and "Available stock" in html
    assert response.context["stamps_total"] >= 1


def test_overview_partial_is_the_live_fragment_only(office):
    response = office.get("/backoffice/?partial=charts&window=6h")
    assert response.status_code == 200
    assert b"<html" not in response.content and b"<svg" in response.content
    assert response.context["window"].key == "6h"


def test_stock_chart_walks_back_to_the_stock_before_the_window(channels):
    """The series ends at today's available stock and starts at what it was before the window."""
    alpha = channels["alpha"]
    window = selectors.WINDOWS["1h"]
    starts = selectors.bucket_starts(window)
    before = channel_balance(channel_id=alpha.pk).available
    quota.allocate_stock(channel_id=alpha.pk, units=40, reference=unique("dep"))
    customer = new_customer_id()
    paid = quota.reserve_stock(
        channel_id=alpha.pk, customer_id=customer, order_ref=unique("o"), quantity=5, timeout=dt.timedelta(minutes=5)
    )
    quota.settle_reservation(reservation_ids=paid)
    lapsed = quota.reserve_stock(
        channel_id=alpha.pk, customer_id=customer, order_ref=unique("o"), quantity=3, timeout=dt.timedelta(minutes=5)
    )
    quota.release_reservation(reservation_ids=lapsed)
    quota.reserve_stock(
        channel_id=alpha.pk, customer_id=customer, order_ref=unique("o"), quantity=2, timeout=dt.timedelta(minutes=5)
    )
    quota.refund_units(channel_id=alpha.pk, customer_id=customer, refund_ref=unique("r"), units=1)
    now = channel_balance(channel_id=alpha.pk).available
    assert now == before + 40 - 5 - 2 + 1

    series = selectors.stock_per_bucket(starts=starts, bucket=window.bucket, available_now={alpha.pk: now})

    assert series[alpha.pk][-1] == now
    # everything happened in this test's transaction, i.e. in the last bucket
    assert series[alpha.pk][-2] == before


def test_stamps_are_counted_per_minute_bucket(channels):
    alpha = channels["alpha"]
    window = selectors.WINDOWS["1h"]
    starts = selectors.bucket_starts(window)
    _used_serial(alpha, used_at=starts[10] + dt.timedelta(seconds=5))
    _used_serial(alpha, used_at=starts[10] + dt.timedelta(seconds=50))
    _used_serial(alpha, used_at=starts[0] - dt.timedelta(seconds=1))  # before the window
    counts = selectors.stamps_per_bucket(starts=starts, bucket=window.bucket)
    assert counts[alpha.pk][10] == 2
    assert sum(counts[alpha.pk]) == 2


# -- deposits ------------------------------------------------------------------------------


def test_one_person_records_a_deposit_and_another_confirms_it(office, staff, channels):
    alpha = channels["alpha"]
    before = channel_balance(channel_id=alpha.pk)
    reference = unique("INV")

    created = office.post("/backoffice/deposits/", {"channel": alpha.pk, "units": 120, "reference": reference})
    assert created.status_code == 302
    deposit = Deposit.objects.get(reference=reference)
    assert (deposit.status, deposit.units, deposit.amount_rupiah) == ("pending", 120, 1_200_000)
    assert (deposit.recorded_by, deposit.recorded_by_user_id) == ("ops", staff.pk)
    assert channel_balance(channel_id=alpha.pk) == before  # nothing allocated before confirmation

    # The person who recorded it sees no Confirm button, and the service refuses them anyway.
    page = office.get("/backoffice/deposits/?status=pending").content.decode()
    assert reference in page and f"/backoffice/deposits/{deposit.pk}/confirm" not in page
    refused = office.post(f"/backoffice/deposits/{deposit.pk}/confirm", follow=True)
    assert "another person must confirm it" in refused.content.decode()
    deposit.refresh_from_db()
    assert deposit.status == "pending" and channel_balance(channel_id=alpha.pk) == before

    checker = make_staff("checker", groups=("Stock approvers",))
    second = office_client(checker)
    page = second.get("/backoffice/deposits/?status=pending").content.decode()
    assert f"/backoffice/deposits/{deposit.pk}/confirm" in page
    confirmed = second.post(f"/backoffice/deposits/{deposit.pk}/confirm", follow=True)
    assert confirmed.status_code == 200
    assert "120 units allocated to Alpha Channel" in confirmed.content.decode()
    deposit.refresh_from_db()
    assert (deposit.status, deposit.confirmed_by, deposit.confirmed_by_user_id) == ("confirmed", "checker", checker.pk)
    after = channel_balance(channel_id=alpha.pk)
    assert (after.allocated, after.available) == (before.allocated + 120, before.available + 120)

    second.post(f"/backoffice/deposits/{deposit.pk}/confirm")  # again: idempotent
    assert channel_balance(channel_id=alpha.pk) == after


@pytest.mark.parametrize(
    ("fields", "status", "message"),
    [
        ({"units": 0}, 400, "greater than or equal to 1"),
        ({"units": "ten"}, 400, "whole number"),
        ({"reference": ""}, 400, "required"),
        ({"channel": 999999}, 400, "valid choice"),
    ],
)
def test_an_invalid_deposit_is_refused_and_nothing_is_recorded(office, channels, fields, status, message):
    data = {"channel": channels["alpha"].pk, "units": 10, "reference": unique("INV")} | fields
    count = Deposit.objects.count()
    response = office.post("/backoffice/deposits/", data)
    assert response.status_code == status
    assert message in response.content.decode()
    assert Deposit.objects.count() == count


def test_a_reused_billing_reference_is_refused(office, channels):
    reference = unique("INV")
    office.post("/backoffice/deposits/", {"channel": channels["alpha"].pk, "units": 10, "reference": reference})
    response = office.post(
        "/backoffice/deposits/", {"channel": channels["beta"].pk, "units": 10, "reference": reference}
    )
    assert response.status_code == 409
    assert "already used for another deposit" in response.content.decode()
    assert Deposit.objects.filter(reference=reference).count() == 1


def test_confirming_an_unknown_deposit_is_404(office):
    assert office.post("/backoffice/deposits/999999/confirm", HTTP_ACCEPT="text/html").status_code == 404


def test_confirm_needs_post(office, channels):
    deposit = Deposit.objects.create(channel=channels["alpha"], units=5, reference=unique("d"), amount_rupiah=50_000)
    assert office.get(f"/backoffice/deposits/{deposit.pk}/confirm").status_code == 405
    deposit.refresh_from_db()
    assert deposit.status == "pending"


# -- reconciliation ------------------------------------------------------------------------


def test_run_now_stores_a_run_and_the_page_shows_each_check(office):
    runs = ReconciliationRun.objects.count()
    response = office.post("/backoffice/reconciliation/run", follow=True)
    assert response.status_code == 200
    assert ReconciliationRun.objects.count() == runs + 1
    html = response.content.decode()
    run = ReconciliationRun.objects.first()
    for check in run.report["checks"]:
        assert f'data-check="{check["name"]}"' in html
    assert ("Every invariant holds" in html) is run.ok


def test_reconciliation_page_without_any_run(office):
    ReconciliationRun.objects.all().delete()
    response = office.get("/backoffice/reconciliation/")
    assert response.status_code == 200 and b"No run yet" in response.content


# -- settlement ----------------------------------------------------------------------------


def test_settlement_page_and_csv_for_a_period(office, channels):
    quota.allocate_stock(channel_id=channels["beta"].pk, units=30, reference=unique("dep"))
    today = timezone.localdate().isoformat()

    page = office.get(f"/backoffice/settlement/?date_from={today}&date_to={today}")
    assert page.status_code == 200
    beta_row = next(r for r in page.context["rows"] if r["channel_code"] == "beta")
    assert beta_row["allocated"] >= 30
    assert "units used by completed stamps" in page.content.decode()

    export = office.get(f"/backoffice/settlement.csv?date_from={today}&date_to={today}")
    assert export.status_code == 200
    assert export["Content-Type"].startswith("text/csv")
    assert f"settlement_{today}_{today}.csv" in export["Content-Disposition"]
    lines = list(csv.DictReader(io.StringIO(export.content.decode())))
    assert next(line for line in lines if line["channel_code"] == "beta")["allocated"] == str(beta_row["allocated"])


def test_settlement_defaults_to_this_month(office):
    response = office.get("/backoffice/settlement/")
    assert response.status_code == 200
    assert response.context["period"]["date_from"] == timezone.localdate().replace(day=1)


@pytest.mark.parametrize("query", ["date_from=2024-02-02&date_to=2024-02-01", "date_from=nope&date_to=2024-02-01"])
def test_settlement_refuses_a_bad_period(office, query):
    assert office.get(f"/backoffice/settlement/?{query}").status_code == 400
    assert office.get(f"/backoffice/settlement.csv?{query}").status_code == 400


# -- serials -------------------------------------------------------------------------------


def test_serial_lookup_shows_the_registry_row_and_links_to_the_public_page(office, channels):
    row = _used_serial(channels["alpha"])
    response = office.get(f"/backoffice/serials/?serial={row.serial.lower()}")
    assert response.status_code == 200
    html = response.content.decode()
    assert f'href="/v/{row.serial}"' in html
    assert "INV-7" in html and "Alpha Channel" in html


@pytest.mark.parametrize(("value", "status"), [("NOTASERIAL", 400), ("2C5NV74I6D0HJ1EZ000DU9", 404)])
def test_serial_lookup_explains_what_is_wrong(office, value, status):
    response = office.get(f"/backoffice/serials/?serial={value}")
    assert response.status_code in {status, 400, 404}
    assert b"verdict bad" in response.content


# -- incidents and the status page ---------------------------------------------------------


def test_an_incident_written_in_the_back_office_appears_on_the_status_page(office, django_capture_on_commit_callbacks):
    Client(HTTP_HOST=ISSUER_HOST).get("/status")  # the page is cached for a few seconds...
    with django_capture_on_commit_callbacks(execute=True):  # ...and forgotten when a note is written
        response = office.post(
            "/backoffice/incidents/",
            {
                "title": "Slow stamping",
                "body": "Stamps take longer.",
                "severity": "minor",
                "started_at": "2024-05-01T10:00",
            },
        )
    assert response.status_code == 302
    note = IncidentNote.objects.get(title="Slow stamping")
    status = Client(HTTP_HOST=ISSUER_HOST).get("/status")
    assert b"Slow stamping" in status.content and b"Stamps take longer." in status.content
    assert status.context["overall"] in {"degraded", "down"}

    with django_capture_on_commit_callbacks(execute=True):
        office.post(f"/backoffice/incidents/{note.pk}/resolve")
    note.refresh_from_db()
    assert note.resolved_at is not None
    status = Client(HTTP_HOST=ISSUER_HOST).get("/status")
    assert "Slow stamping" not in "".join(i.title for i in status.context["incidents"])
    assert b"Resolved in the last 7 days" in status.content


def test_an_incident_is_edited(office):
    note = create_incident_note(title="Typo", severity="info")
    response = office.post(
        f"/backoffice/incidents/{note.pk}/",
        {"title": "Fixed title", "body": "", "severity": "major", "started_at": "2024-05-01T10:00", "resolved_at": ""},
    )
    assert response.status_code == 302
    note.refresh_from_db()
    assert (note.title, note.severity, note.resolved_at) == ("Fixed title", "major", None)


def test_an_incident_resolved_before_it_started_is_refused(office):
    count = IncidentNote.objects.count()
    response = office.post(
        "/backoffice/incidents/",
        {"title": "X", "severity": "minor", "started_at": "2024-05-01T10:00", "resolved_at": "2024-05-01T09:00"},
    )
    assert response.status_code == 400
    assert IncidentNote.objects.count() == count


def test_resolving_twice_keeps_the_first_time():
    note = create_incident_note(title="Outage", severity="major")
    first = resolve_incident_note(note_id=note.pk).resolved_at
    assert resolve_incident_note(note_id=note.pk).resolved_at == first


def test_status_page_shows_components_queues_and_a_chart(channels, monkeypatch):
    from stamping import admission
    from stamping.models import StampJob
    from tenants.customers.models import Customer

    # The backlog may be a Redis counter kept by the stamping services; count this test's rows instead.
    monkeypatch.setattr(
        admission, "backlog", lambda: StampJob.objects.filter(status__in=["queued", "processing"]).count()
    )
    with schema_context("alpha"):
        customer = Customer.objects.create(external_ref=unique("c"), name="Queued")
        for _ in range(3):
            StampJob.objects.create(
                customer=customer, hold_id=unique("h"), sha256_in="a" * 64, pages=1, page=1,
                llx=0, lly=0, urx=50, ury=50,
            )  # fmt: skip
    cache.set(selectors.HEARTBEAT_KEY, time.time(), timeout=60)

    response = Client(HTTP_HOST=ISSUER_HOST).get("/status")

    assert response.status_code == 200
    queues = {q["channel"].code: q for q in response.context["queues"]}
    assert queues["alpha"]["queue_depth"] == 3
    assert queues["alpha"]["eta_seconds"] >= 1
    assert queues["beta"]["queue_depth"] == 0 and queues["beta"]["eta_text"] == "no wait"
    components = {c["name"]: c["state"] for c in response.context["components"]}
    assert components == {
        "Database (PostgreSQL)": "operational",
        "Queues and rate limits (Redis)": "operational",
        "Stamping workers": "operational",
    }
    html = response.content.decode()
    assert "<svg" in html and 'http-equiv="refresh"' in html and "live.js" in html
    partial = Client(HTTP_HOST=ISSUER_HOST).get("/status?partial=1")
    assert b"<html" not in partial.content and b"Stamping queues" in partial.content


@pytest.mark.parametrize(("age", "state"), [(10, "operational"), (200, "degraded"), (4000, "down"), (None, "down")])
def test_worker_health_follows_the_heartbeat(age, state):
    now = time.time()
    if age is None:
        cache.delete(selectors.HEARTBEAT_KEY)
    else:
        cache.set(selectors.HEARTBEAT_KEY, now - age, timeout=60)
    workers = next(c for c in selectors.component_health(now=now) if c["name"] == "Stamping workers")
    assert workers["state"] == state


@pytest.mark.parametrize(
    ("seconds", "text"), [(None, "no wait"), (20, "under a minute"), (61, "about 2 min"), (3600, "about 1 h")]
)
def test_wait_times_read_like_a_person_would_say_them(seconds, text):
    assert selectors.format_wait(seconds) == text


# -- charts --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("top", "ceiling", "step"), [(0, 4, 1), (7, 8, 2), (95, 100, 25), (0.3, 0.4, 0.1), (1234, 2000, 500)]
)
def test_chart_scales_are_round(top, ceiling, step):
    got_ceiling, got_step = nice_scale(top)
    assert got_ceiling == pytest.approx(ceiling) and got_step == pytest.approx(step)


def test_line_and_bar_charts_place_points_inside_the_frame():
    chart = line_chart(labels=["a", "b", "c"], series=[Series("x", [0, 5, 10])])
    coords = [tuple(map(float, p.split(","))) for p in chart["series"][0]["points"].split()]
    assert coords[0][0] == chart["left"] and coords[-1][0] == chart["right"]
    assert coords[0][1] == chart["bottom"] and min(y for _, y in coords) >= 0
    bars = bar_chart(labels=["a", "b"], stacks=[Series("ok", [1, 2], css="ok"), Series("bad", [1, 0], css="bad")])
    assert [len(b["parts"]) for b in bars["bars"]] == [2, 1]
    assert bars["table"]["rows"] == [("a", ["1", "1"]), ("b", ["2", "0"])]
