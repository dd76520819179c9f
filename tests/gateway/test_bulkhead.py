"""The web tier's bulkheads: a channel holding its share of a process's threads is refused at once,
while another channel (and the issuer) are served; within its share the lower classes of work (new
customers, then new purchases) are refused before its stamp requests and reads of accepted work."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection

from gateway import bulkhead

pytestmark = pytest.mark.django_db


@pytest.fixture
def four_threads(settings):
    settings.WEB_THREADS = 4
    settings.WEB_CHANNEL_SHARE = 0.5
    bulkhead.reset()
    yield
    bulkhead.reset()


@pytest.fixture
def beta_being_served(four_threads):
    """Another channel is being served by this process: alpha is held to its share."""
    bulkhead._last_seen["beta"] = time.monotonic() + 3600


@pytest.fixture
def alpha_under_pressure(beta_being_served):
    """... and alpha's stamp requests are being refused (a surge): no extra thread over its share for it
    (``bulkhead._may_go_one_over``, tested below)."""
    bulkhead._shed[("alpha", "stamping")] = time.monotonic() + 3600


def test_the_cap_is_the_share_of_the_threads_and_never_all_of_them(settings):
    settings.WEB_CHANNEL_SHARE = 0.5
    settings.WEB_THREADS = 4
    assert bulkhead.channel_cap() == 2
    settings.WEB_CHANNEL_SHARE = 1.0
    assert bulkhead.channel_cap() == 3  # one thread is always left for the others
    settings.WEB_THREADS = 1
    assert bulkhead.channel_cap() > 1000  # a sync worker has nothing to share


def test_a_channel_at_its_share_is_refused_while_another_is_served(alpha_under_pressure, client_for):
    bulkhead._in_flight["alpha"] = 2  # two alpha requests in progress on this process
    refused = client_for("alpha").get("/api/v1/balance?customer=1")
    assert refused.status_code == 503
    body = refused.json()
    assert body["code"] == "channel_busy" and body["request_id"]
    assert refused["Content-Type"].startswith("application/problem+json")
    assert int(refused["Retry-After"]) in (1, 2)
    assert bulkhead.in_flight("alpha") == 2  # the refusal took no slot

    served = client_for("beta").get("/api/v1/document-types")
    assert served.status_code == 200
    assert client_for(None).get("/api/v1/verify/XXXXXXXXXXXXXXXXXXXXXX").status_code != 503  # the issuer's host
    assert bulkhead.in_flight("beta") == 0  # given back when the answer left


def test_a_slot_is_given_back_when_the_view_fails(four_threads, client_for, monkeypatch):
    from faces.storefront import stamps

    def boom(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(stamps.DocumentTypesApi, "get", boom)
    client = client_for("alpha")
    client.raise_request_exception = False
    assert client.get("/api/v1/document-types").status_code == 500
    assert bulkhead.in_flight("alpha") == 0


def test_concurrent_requests_never_exceed_the_cap(alpha_under_pressure, client_for, monkeypatch):
    """Requests held inside the view: of five at once on one channel, two run and three are refused."""
    from faces.storefront import stamps

    release = threading.Event()
    inside = threading.Semaphore(0)
    original = stamps.DocumentTypesApi.get

    def held(self, request, *args, **kwargs):
        inside.release()
        release.wait(10)
        return original(self, request, *args, **kwargs)

    monkeypatch.setattr(stamps.DocumentTypesApi, "get", held)
    answers: list[int] = []

    def call():
        try:
            answers.append(client_for("alpha").get("/api/v1/document-types").status_code)
        finally:
            connection.close()  # this thread's own connection

    threads = [threading.Thread(target=call) for _ in range(5)]
    for thread in threads:
        thread.start()
    assert inside.acquire(timeout=10) and inside.acquire(timeout=10)
    # Wait for the three refusals (they do not enter the view), then let the two finish.
    for _ in range(1000):
        if len(answers) == 3:
            break
        threading.Event().wait(0.01)
    release.set()
    for thread in threads:
        thread.join(10)
    assert sorted(answers) == [200, 200, 503, 503, 503]
    assert bulkhead.in_flight("alpha") == 0


def test_a_refusal_before_the_body_still_reads_it_off_the_connection(rf):
    """The client is still sending when an early refusal is answered: the body is read and dropped,
    so the answer is not lost in a reset connection; an oversized one closes the connection."""
    from django.http import HttpResponse

    from gateway.middleware import UNREAD_BODY_DISCARD_LIMIT, discard_unread_body

    request = rf.generic("POST", "/api/v1/stamps", b"x" * 300_000, content_type="application/pdf")
    response = HttpResponse(status=503)
    discard_unread_body(request, response)
    assert request._stream.read() == b""
    assert "Connection" not in response

    read = rf.generic("POST", "/api/v1/stamps", b"y" * 10, content_type="text/plain")
    assert read.body == b"y" * 10  # a view that read its body: nothing to do
    discard_unread_body(read, response)

    huge = rf.post("/api/v1/stamps", data=b"z", content_type="application/pdf")
    huge.META["CONTENT_LENGTH"] = str(UNREAD_BODY_DISCARD_LIMIT + 1)
    discard_unread_body(huge, response)
    assert response["Connection"] == "close"


def test_load_shed_on_purpose_is_not_logged_as_a_server_error(alpha_under_pressure, client_for, caplog):
    """A surge answers thousands of these a second; each a django.request ERROR line would cost the CPU
    the refusal saves."""
    bulkhead._in_flight["alpha"] = 2
    with caplog.at_level("WARNING", logger="django.request"):
        assert client_for("alpha").get("/api/v1/document-types").status_code == 503
    assert not [r for r in caplog.records if r.name == "django.request"]


def test_a_channel_alone_in_the_process_borrows_all_threads_but_one(four_threads, client_for):
    """Nobody else is being served: the bulkhead refuses nothing an idle server could do."""
    bulkhead._in_flight["alpha"] = 2  # at its share of 2
    assert client_for("alpha").get("/api/v1/document-types").status_code == 200
    bulkhead._in_flight["alpha"] = 3  # all threads but one
    assert client_for("alpha").get("/api/v1/document-types").json()["code"] == "channel_busy"


def test_pages_and_static_files_are_not_counted(beta_being_served, client_for):
    """A browser loads a page, its stylesheet and its icon at once: they never meet the bulkhead."""
    bulkhead._in_flight["alpha"] = 3
    assert client_for("alpha").get("/login/").status_code == 200


# --------------------------------------------------------------------------- classes (issue #19)


@pytest.mark.parametrize(
    ("method", "path", "kind"),
    [
        ("GET", "/api/v1/stamps/stp_0123", "accepted"),
        ("GET", "/api/v1/stamps/stp_0123/document", "accepted"),
        ("HEAD", "/api/v1/batches/bat_1", "accepted"),
        ("GET", "/api/v1/orders/ord_1", "accepted"),
        ("GET", "/api/v1/refunds/ref_1", "accepted"),
        ("GET", "/api/v1/status", "accepted"),
        ("POST", "/api/v1/stamps", "stamping"),
        ("POST", "/api/v1/batches", "stamping"),
        ("POST", "/api/v1/stamps/preview", "stamping"),
        ("GET", "/api/v1/stamps/preview", "stamping"),
        ("GET", "/api/v1/stamps", "stamping"),
        ("GET", "/api/v1/balance", "stamping"),
        ("GET", "/api/v1/orders", "stamping"),
        ("GET", "/api/v1/orders/ord_1/refunds", "stamping"),
        ("POST", "/api/v1/orders/ord_1/refunds", "stamping"),
        ("PATCH", "/api/v1/customers/7", "stamping"),
        ("POST", "/api/v1/orders", "purchases"),
        ("POST", "/api/v1/orders/", "purchases"),
        ("POST", "/api/v1/customers", "registrations"),
        ("GET", "/api/v1/customers", "stamping"),
        ("POST", "/api/v1/payments/simulator/webhook", None),
    ],
)
def test_each_request_is_classified_from_its_method_and_path(method, path, kind):
    assert bulkhead.classify(method, path) == kind


def test_the_caps_shrink_with_the_class_and_never_reach_zero():
    for threads in (2, 3, 4, 8, 16, 64):
        for limit in range(1, threads):
            for sharing in (True, False):
                caps = [bulkhead.class_cap(k, limit, threads=threads, sharing=sharing) for k in bulkhead.CLASSES]
                assert caps == sorted(caps, reverse=True) and caps[-1] >= 1, (threads, limit, caps)
                assert caps[0] <= threads - 1 and caps[1] == limit
    assert [bulkhead.class_cap(k, 8, threads=32, sharing=True) for k in bulkhead.CLASSES] == [9, 8, 6, 4]


def test_no_state_refuses_a_higher_class_while_a_lower_one_is_served(settings):
    """Every combination of requests in progress, recent refusals and other channels being served: when a
    class is refused, every class below it is refused as well."""
    import itertools

    settings.WEB_THREADS = 8
    now = time.monotonic()
    for share in (0.125, 0.25, 0.5):
        settings.WEB_CHANNEL_SHARE = share
        for counts in itertools.product(range(3), repeat=4):
            for shed in itertools.product((False, True), repeat=4):
                for sharing in (False, True):
                    bulkhead.reset()
                    if sharing:
                        bulkhead._last_seen["beta"] = now
                    for kind, count, was_shed in zip(bulkhead.CLASSES, counts, shed, strict=True):
                        if count:
                            bulkhead._class_in_flight[("alpha", kind)] = count
                        if was_shed:
                            bulkhead._shed[("alpha", kind)] = now
                    held = sum(counts)
                    refused = [bulkhead._refuses("alpha", kind, held, now) for kind in bulkhead.CLASSES]
                    assert refused == sorted(refused), (share, counts, shed, sharing, refused)
    bulkhead.reset()


@pytest.fixture
def alpha_paying(channels):
    from billing import quota
    from tests.billing.factories import unique

    quota.allocate_stock(channel_id=channels["alpha"].pk, units=50, reference=unique("dep"))
    return channels["alpha"]


def test_at_its_share_new_customers_and_purchases_are_refused_while_stamps_reads_and_payments_are_served(
    alpha_paying, client_for, settings
):
    """Four threads, a share of two, beta being served. With one alpha stamp request in progress, a new
    customer or a new order of alpha is refused with its class's code and leaves no row; a stamp request,
    a read of an accepted stamp and a payment webhook of alpha are served."""
    from django_tenants.utils import schema_context

    from billing.retail import services as retail
    from billing.retail.models import Order
    from tenants.customers.models import Customer
    from tests.stamping.test_brownout import paid_customer, pay, post_customer, post_order, post_stamp

    stamper = paid_customer(alpha_paying)
    accepted = post_stamp(client_for, stamper)
    assert accepted.status_code == 202
    job_id = accepted.json()["id"]
    with schema_context("alpha"):
        buyer = Customer.objects.create(external_ref="buyer-1", name="Budi")
        order = retail.create_order(channel=alpha_paying, customer=buyer, quantity=1)
        rows_before = (Customer.objects.count(), Order.objects.count())

    settings.WEB_THREADS = 4
    settings.WEB_CHANNEL_SHARE = 0.5
    bulkhead.reset()
    bulkhead._last_seen["beta"] = time.monotonic() + 3600  # beta is being served
    bulkhead._in_flight["alpha"] = 1  # one alpha stamp request in progress on this process
    bulkhead._class_in_flight[("alpha", "stamping")] = 1
    try:
        for response, code, kind in (
            (post_customer(client_for), "registrations_busy", "registrations"),
            (post_order(client_for, buyer.pk), "purchases_busy", "purchases"),
        ):
            assert response.status_code == 503, response.content
            assert response["Content-Type"].startswith("application/problem+json")
            assert int(response["Retry-After"]) in (1, 2)
            problem = response.json()
            assert (problem["code"], problem["class"]) == (code, kind) and problem["request_id"]
        with schema_context("alpha"):
            assert (Customer.objects.count(), Order.objects.count()) == rows_before  # nothing was done

        assert client_for("alpha").get(f"/api/v1/stamps/{job_id}").status_code == 200
        assert post_stamp(client_for, stamper).status_code == 202
        assert pay(client_for, order) == 200
        assert client_for("alpha", key=None).get("/api/v1/status").status_code == 200
        assert bulkhead.in_flight("alpha") == 1 and bulkhead.in_flight("alpha", "accepted") == 0  # given back

        # At its share (two in progress) and under pressure, a stamp request is refused too, still as
        # `channel_busy`; a read of accepted work has the thread above the share.
        bulkhead._shed[("alpha", "stamping")] = time.monotonic() + 3600
        bulkhead._in_flight["alpha"] = 2
        bulkhead._class_in_flight[("alpha", "stamping")] = 2
        busy = post_stamp(client_for, stamper)
        assert (busy.status_code, busy.json()["code"], busy.json()["class"]) == (503, "channel_busy", "stamping")
        assert client_for("alpha").get(f"/api/v1/stamps/{job_id}").status_code == 200
    finally:
        bulkhead.reset()
    with schema_context("alpha"):
        assert Order.objects.get(pk=order.pk).status == "credited"


def test_with_one_thread_a_channel_a_refused_stamp_request_holds_back_purchases(four_threads, settings, client_for):
    """A share of one thread leaves counts nothing to rank: once a stamp request of alpha was refused, its
    new purchases and customers are refused even with no alpha request in progress, so the next free
    thread goes to the stamp request - while another channel is served. Alone, alpha is never held back."""
    settings.WEB_CHANNEL_SHARE = 0.25
    bulkhead._last_seen["beta"] = time.monotonic() + 3600
    bulkhead._in_flight.update({"alpha": 1, "beta": 2})  # one thread free: no extra one for alpha
    bulkhead._class_in_flight[("alpha", "stamping")] = 1
    refused = client_for("alpha").generic("POST", "/api/v1/stamps", b"", content_type="text/plain")
    assert refused.json()["code"] == "channel_busy"
    assert ("alpha", "stamping") in bulkhead._shed  # noted: stamp requests want threads
    bulkhead._shed[("alpha", "stamping")] = time.monotonic() + 3600  # (as if just now, whatever the clock)

    bulkhead._in_flight.clear()
    bulkhead._class_in_flight.clear()  # nothing of alpha in progress
    order = client_for("alpha").post("/api/v1/orders", data="{}", content_type="application/json")
    assert (order.status_code, order.json()["code"]) == (503, "purchases_busy")
    customer = client_for("alpha").post("/api/v1/customers", data="{}", content_type="application/json")
    assert customer.json()["code"] == "registrations_busy"
    assert client_for("alpha").get("/api/v1/document-types").status_code == 200  # the higher class is served

    del bulkhead._last_seen["beta"]  # alone in the process: borrowing as before
    order = client_for("alpha").post("/api/v1/orders", data="{}", content_type="application/json")
    assert order.status_code == 400  # reached the view (and refused the empty body there)


@pytest.fixture
def one_thread_share(settings):
    settings.WEB_THREADS = 4
    settings.WEB_CHANNEL_SHARE = 0.25  # the default: one thread of four
    bulkhead.reset()
    bulkhead._last_seen["beta"] = time.monotonic() + 3600  # beta is being served here
    yield
    bulkhead.reset()


def test_a_quiet_channels_overlapping_request_goes_one_over_its_share_while_threads_are_free(
    one_thread_share, client_for
):
    bulkhead._in_flight.update({"alpha": 1, "beta": 1})  # two of four threads busy, one of them alpha's
    bulkhead._class_in_flight.update({("alpha", "stamping"): 1, ("beta", "stamping"): 1})
    served = client_for("alpha").get("/api/v1/document-types")
    assert served.status_code == 200

    bulkhead._in_flight["alpha"] = 2  # one over already: no second extra
    assert client_for("alpha").get("/api/v1/document-types").json()["code"] == "channel_busy"


def test_a_channel_refused_lately_or_a_full_process_gets_no_extra_thread(one_thread_share, client_for):
    bulkhead._in_flight.update({"alpha": 1, "beta": 2})  # one thread free: it stays for the others
    assert client_for("alpha").get("/api/v1/document-types").json()["code"] == "channel_busy"

    bulkhead._in_flight["beta"] = 1  # two free again, but alpha was just refused: under pressure
    assert client_for("alpha").get("/api/v1/document-types").json()["code"] == "channel_busy"
    assert bulkhead.in_flight("alpha") == 1


def test_the_compat_facade_counts_against_the_channels_share(alpha_under_pressure, client_for):
    """docSigningZ holds a thread while it waits for its stamp: the facade is bulkheaded like /api/."""
    bulkhead._in_flight["alpha"] = 2
    refused = client_for("alpha").post("/compat/chanel/stampv2", data="{}", content_type="application/json")
    assert (refused.status_code, refused.json()["code"]) == (503, "channel_busy")
    assert int(refused["Retry-After"]) in (1, 2)
    served = client_for("beta").post("/compat/chanel/stampv2", data="{}", content_type="application/json")
    assert served.status_code != 503
