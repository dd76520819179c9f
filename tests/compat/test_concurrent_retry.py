"""Two docSigningZ calls for one serial at the same moment (a client retrying while its first call is
still in flight) make one stamping job and hold one unit: the reservation's row lock serialises them."""

from __future__ import annotations

import threading

from django.db import connections
from django_tenants.utils import schema_context

from billing import quota
from faces.compat.accounts import create_compat_user
from gateway.models import ApiKey
from stamping import services
from stamping.models import StampJob
from tests.billing.factories import funded_wallet, unique
from tests.compat.test_facade import PASSWORD, client, post_json, upload


def test_concurrent_calls_for_one_serial_make_one_job(live_db, settings):
    from tenants.customers.models import Customer
    from tenants.models import Channel

    settings.COMPAT_SIGN_WAIT_SECONDS = 0
    alpha = Channel.objects.get(code="alpha")
    customer_id = funded_wallet(channel_id=alpha.pk, units=1)
    username = unique("kasir")
    with schema_context("alpha"):
        Customer.objects.create(id=customer_id, external_ref=unique("c"), name="Distributor")
        create_compat_user(
            channel=alpha, username=username, password=PASSWORD, customer_id=customer_id,
            api_key=ApiKey.objects.filter(channel=alpha).order_by("pk").first(),
        )  # fmt: skip
    token = post_json(client(), "/compat/api/users/login", {"user": username, "password": PASSWORD}).json()["token"]
    doc_id = upload(token)
    serial = post_json(client(token=token), "/compat/chanel/stampv2", {"namadoc": False}).json()["result"]["sn"]

    start = threading.Barrier(2)
    answers: list = []

    def call():
        try:
            start.wait()
            answers.append(post_json(client(token=token), "/compat/keystamp/adapter/docSigningZ", {
                "refToken": serial, "docId": doc_id, "visLLX": 400, "visLLY": 50, "visURX": 500, "visURY": 150,
                "retryFlag": "1"}).json()["errorCode"])  # fmt: skip
        finally:
            connections.close_all()

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert answers == ["97", "97"]
    with schema_context("alpha"):
        jobs = list(StampJob.objects.filter(serial=serial))
        assert len(jobs) == 1
        assert quota.wallet_balance(channel_id=alpha.pk, customer_id=customer_id) == {
            "available": 0, "held": 1, "used": 0}  # fmt: skip
        # leave nothing queued behind for other tests: the worker's step, in process
        assert services.run_stamp_job(channel=alpha, job_id=jobs[0].pk).status == "stamped"
    assert quota.wallet_balance(channel_id=alpha.pk, customer_id=customer_id) == {"available": 0, "held": 0, "used": 1}
