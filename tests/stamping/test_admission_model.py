"""Admission and ETAs from the lane model: workers, lanes sharing them, measured costs (real Redis)."""

from __future__ import annotations

import math
import time

import pytest
from django_tenants.utils import schema_context

from billing import quota
from stamping import admission, lanes
from stamping.models import StampJob
from tests.billing.factories import funded_wallet, unique
from tests.fixtures.pdfs.factory import text_pdf
from tests.stamping.test_stamp_upload import PLACEMENT, raw_body, send

pytestmark = pytest.mark.django_db


def model(**overrides) -> admission.LaneModel:
    fields = {
        "schema": "quiet",
        "workers": 2,
        "drainers": {},
        "budget": 4,
        "cost": 0.1,
        "dispatch": 0.02,
    }
    fields.update(overrides)
    return admission.LaneModel(**fields)


# --------------------------------------------------------------------------- the model


def test_a_lone_idle_lane_waits_for_dispatch_and_one_stamp():
    assert model().seconds_until_done(0) == pytest.approx(0.02 + 0.1)


def test_a_lone_lane_uses_every_worker_up_to_its_budget():
    # 10 jobs ahead on 2 workers (budget 4 > 2 workers): 11 jobs at 2 per 0.1 s.
    busy = model(drainers={"quiet": 2})
    assert busy.share(11) == 2
    assert busy.seconds_until_done(10) == pytest.approx(0.1 + 0.1 * 10 / 2)


def test_a_quiet_lane_next_to_a_surge_gets_its_fair_share_not_the_machine():
    # The surge lane has 4 drainers on 2 workers and uses nearly both; the quiet lane's one drainer is
    # guaranteed 2 * 1/5 of them: its first job waits for a worker, then runs; each next one waits its turn.
    quiet = model(drainers={"surge": 4}, usage={"surge": 1.95})
    assert quiet.share(1) == pytest.approx(2 * 1 / 5)
    assert quiet.seconds_until_done(0) == pytest.approx(0.02 + 0.1)
    # With four jobs it has four drainers (its budget): half of the eight, one worker.
    assert quiet.seconds_until_done(3) == pytest.approx(0.02 + 0.1 + 3 * 0.1 / 1.0)


def test_a_surge_lane_gets_what_a_quiet_neighbour_leaves_not_only_its_fair_share():
    # Fair share 2 * 4/5 = 1.6, but the quiet lane uses a tenth of a worker: the surge gets 1.9.
    surge = model(schema="surge", drainers={"surge": 4, "quiet": 1}, cost=0.05, usage={"quiet": 0.1, "surge": 1.8})
    assert surge.share(100) == pytest.approx(1.9)
    assert surge.seconds_until_done(99) == pytest.approx(0.05 + 99 * 0.05 / 1.9)
    # A neighbour that uses its whole fair share leaves the surge exactly its own.
    greedy = model(schema="surge", drainers={"surge": 4, "quiet": 1}, usage={"quiet": 0.7})
    assert greedy.share(100) == pytest.approx(1.6)


def test_a_deep_position_is_priced_at_the_long_run_cost_a_shallow_one_at_the_recent():
    lane = model(drainers={"quiet": 1}, budget=1, cost=0.1, cost_long=0.05)
    assert lane.seconds_until_done(1) == pytest.approx(0.1 + 1 * (0.995 * 0.1 + 0.005 * 0.05))
    assert lane.seconds_until_done(400) == pytest.approx(0.1 + 400 * 0.05)
    assert model(cost=0.2).cost_long == 0.2  # none measured yet: the recent figure


def test_a_lanes_next_job_is_priced_at_its_measured_first_job_and_the_rest_at_the_slice_average():
    # A slice's average per job (0.1) carries its end - an empty claim, the token given back - which a
    # lone job does not wait for: its first job was measured done 0.04 s after the drainer started.
    lane = model(cost=0.1, first=0.04)
    assert lane.seconds_until_done(0) == pytest.approx(0.02 + 0.04)
    busy = model(drainers={"quiet": 2}, cost=0.1, first=0.04)
    assert busy.seconds_until_done(10) == pytest.approx(0.04 + 10 * 0.1 / 2)
    assert model(cost=0.2).first == 0.2  # none measured yet: the slice average
    built = admission._model("quiet", 2, [], [], [b"0.25", b"0.01", None, None, b"0.05"], now=1_000_000.0)
    assert (built.cost, built.dispatch, built.first) == (0.25, 0.01, 0.05)


def test_the_model_reads_what_redis_holds_and_drops_stale_entries():
    now = 1_000_000.0
    lanes_raw = [b"surge", b"3:1000100", b"gone", b"2:999000", b"quiet", b"0:1000100"]
    workers_raw = {b"w:1": b"1000050", b"w:2": b"1000050", b"w:old": b"999999"}
    built = admission._model("quiet", 2, lanes_raw, workers_raw, [b"0.25", None, b"0.5"], now=now)
    assert built.drainers == {"surge": 3}
    assert built.workers == 2
    assert built.cost == 0.25
    # No measurement of the lane's own yet: the figure of all lanes, then the assumed one.
    assert admission._model("x", 2, [], [], [None, None, b"0.5"], now=now).cost == 0.5
    assumed = admission._model("x", 2, [], [], None, now=now)
    assert assumed.cost == pytest.approx(1 / 20) and assumed.workers == 2
    assert built.measured and not assumed.measured
    # Another lane's figure stands in for the cost, but it is not this lane's measurement.
    assert not admission._model("x", 2, [], [], [None, None, b"0.5"], now=now).measured


# --------------------------------------------------------------------------- measurements


@pytest.fixture
def clean_redis():
    keys = [admission._key(name) for name in ("lanes", "workers", "costs", "drainers-waiting")]
    bucket = int(time.time()) // admission.USAGE_BUCKET_SECONDS
    keys += [admission._usage_key(b) for b in range(bucket - 2, bucket + 3)]
    keys += [admission._key(kind, schema) for kind in ("backlog", "retry-slot", "pace") for schema in ("alpha", "beta")]
    keys += [lanes._token_key(schema) for schema in ("alpha", "beta")]
    admission.client().delete(*keys)
    yield
    admission.client().delete(*keys)


def test_each_slice_moves_the_lane_cost_toward_what_it_measured(clean_redis):
    admission.record_slice(channel_schema="alpha", jobs=4, seconds=2.0, dispatch=0.3)
    costs = admission.client().hgetall(admission._key("costs"))
    assert float(costs[b"alpha:cost"]) == pytest.approx(0.5)
    assert float(costs[b"alpha:dispatch"]) == pytest.approx(0.3)
    assert float(costs[b"alpha:cost-long"]) == pytest.approx(0.5)
    admission.record_slice(channel_schema="alpha", jobs=1, seconds=1.5)
    costs = admission.client().hgetall(admission._key("costs"))
    assert float(costs[b"alpha:cost"]) == pytest.approx(0.5 + admission.COST_WEIGHT * (1.5 - 0.5))
    # The long-run cost is worker time over jobs, both summed (a moment apart, nothing has faded yet).
    assert float(costs[b"alpha:cost-long"]) == pytest.approx((2.0 + 1.5) / (4 + 1), rel=1e-3)
    assert float(costs[b"alpha:dispatch"]) == pytest.approx(0.3)  # a continuation does not count
    assert b"alpha:first" not in costs  # not reported: not measured
    assert admission.worker_id().encode() in admission.client().hgetall(admission._key("workers"))
    # The lane's worker time is summed per bucket: what the other lanes' promises leave for it.
    bucket = int(time.time()) // admission.USAGE_BUCKET_SECONDS
    used = sum(float(admission.client().hget(admission._usage_key(b), "alpha") or 0) for b in (bucket - 1, bucket))
    assert used == pytest.approx(3.5)

    admission.record_slice(channel_schema="alpha", jobs=2, seconds=0.3, first=0.05)
    admission.record_slice(channel_schema="alpha", jobs=1, seconds=0.2, first=0.15)
    first = float(admission.client().hget(admission._key("costs"), "alpha:first"))
    assert first == pytest.approx(0.05 + admission.DISPATCH_WEIGHT * (0.15 - 0.05))


def test_the_long_run_cost_forgets_old_slices_by_their_age(clean_redis):
    """The long-run cost is what a lane's jobs cost of late, weighted by jobs (a slice cut short after
    one job, which carries the slice's end, does not weigh as much as a slice of fifty) and fading with
    time (a lane that stamps three documents a second forgets as fast as one that stamps three hundred)."""
    costs = admission._key("costs")
    admission.record_slice(channel_schema="alpha", jobs=50, seconds=0.5)  # 10 ms a job
    admission.record_slice(channel_schema="alpha", jobs=1, seconds=0.06)  # a slice cut short
    assert float(admission.client().hget(costs, "alpha:cost-long")) == pytest.approx(0.56 / 51, rel=1e-3)
    # Three memories ago: what was measured then weighs e**-3 (5 %) against a slice measured now.
    at = float(admission.client().hget(costs, "alpha:cost-long:at"))
    admission.client().hset(costs, "alpha:cost-long:at", str(at - 3 * admission.COST_MEMORY_SECONDS))
    admission.record_slice(channel_schema="alpha", jobs=51, seconds=1.53)  # 30 ms a job now
    faded = math.exp(-3)
    expected = (0.56 * faded + 1.53) / (51 * faded + 51)
    assert float(admission.client().hget(costs, "alpha:cost-long")) == pytest.approx(expected, rel=1e-2)
    # A slice that found nothing to claim still used the lane's worker time.
    before = float(admission.client().hget(costs, "alpha:cost-long"))
    admission.record_slice(channel_schema="alpha", jobs=0, seconds=0.2)
    assert float(admission.client().hget(costs, "alpha:cost-long")) > before


def test_a_worker_that_stopped_running_slices_drops_out_of_the_model_within_seconds(clean_redis, monkeypatch):
    """A killed worker process cannot say it is gone. It stops counting a few slices after its last
    one, so the lanes are not promised (and admitted for) a worker that no longer stamps; the sweeper
    removes its entry."""
    now = time.time()
    monkeypatch.setattr(admission, "worker_id", lambda: "host:101")
    monkeypatch.setattr(admission.time, "time", lambda: now - 10)  # its last slice, ten seconds ago
    admission.record_slice(channel_schema="alpha", jobs=20, seconds=2.0)
    monkeypatch.setattr(admission, "worker_id", lambda: "host:102")
    monkeypatch.setattr(admission.time, "time", lambda: now)
    admission.record_slice(channel_schema="alpha", jobs=20, seconds=2.0)
    workers = admission.client().hgetall(admission._key("workers"))
    assert set(workers) == {b"host:101", b"host:102"}
    lane = admission._model("alpha", 4, [], workers, None, now=now)
    assert lane.workers == 1
    # Ten seconds earlier, both counted.
    assert admission._model("alpha", 4, [], workers, None, now=now - 10).workers == 2
    assert admission.prune_workers() == 1
    assert set(admission.client().hgetall(admission._key("workers"))) == {b"host:102"}


def test_a_worker_counts_from_the_start_of_its_slice(clean_redis):
    """After a Redis restart the count of workers is empty. A worker that takes a drainer counts at
    once, not when its slice ends: counting only the workers whose slices had ended since, the model
    saw one worker of two and told the surge's clients to wait twice as long (bench/surge.py
    --faults redis: Retry-After 13-16 s for 46 clients)."""
    lanes.started("alpha|t9")
    workers = admission.client().hgetall(admission._key("workers"))
    assert admission.worker_id().encode() in workers
    assert admission._model("alpha", 4, [], workers, None).workers == 1


def test_the_lanes_hash_follows_the_drainers(clean_redis, monkeypatch):
    monkeypatch.setattr(lanes, "_publish", lambda schema, **_: True)
    lanes.wake(schema_name="alpha", budget=3, queued=2)
    state = admission._model("beta", 1, admission.client().hgetall(admission._key("lanes")), [], None)
    assert state.drainers == {"alpha": 2}
    lanes.release_token(schema_name="alpha")
    lanes.release_token(schema_name="alpha")
    assert admission.client().hgetall(admission._key("lanes")) == {}


def _announce(ticket: str) -> None:
    """What ``lanes._publish`` does in Redis for a drainer task it sends."""
    client = admission.client()
    client.zadd(lanes._waiting_key(), {ticket: time.time()})
    client.publish(lanes._waiting_key(), ticket.partition("|")[0])


def _waiting_reads() -> int:
    stats = admission.client().info("commandstats")
    return int(stats.get("cmdstat_zrangebyscore", {}).get("calls", 0))


def _settled(schema: str) -> None:
    """Wait until this process has heard every announcement so far (the watch reads as it hears)."""
    for _ in range(50):
        before = _waiting_reads()
        lanes.others_waiting(schema)
        if _waiting_reads() == before:
            return
        time.sleep(0.01)
    raise AssertionError("the waiting set was read on every call")


def test_a_drainer_yields_only_to_another_lanes_waiting_task(clean_redis):
    _announce("alpha|t1")
    assert not lanes.others_waiting("alpha")
    assert lanes.others_waiting("beta")
    lanes.started("alpha|t1")
    assert not lanes.others_waiting("beta")


def _eventually(check) -> bool:
    """``check()`` turns true within two seconds (a published message takes a moment to arrive)."""
    for _ in range(200):
        if check():
            return True
        time.sleep(0.01)
    return False


def test_the_waiting_set_is_read_only_when_another_lane_announced_a_drainer(clean_redis, monkeypatch):
    monkeypatch.setattr(lanes, "REREAD_SECONDS", 3600.0)  # (the periodic read is the next test's)
    lanes.others_waiting("alpha")
    _settled("alpha")
    before = _waiting_reads()
    for _ in range(5):
        assert not lanes.others_waiting("alpha")
    assert _waiting_reads() == before  # nothing announced: no round trip per job
    _announce("alpha|own")  # the lane's own next drainer: no reason to yield, nor to look
    time.sleep(0.05)
    assert not lanes.others_waiting("alpha")
    assert _waiting_reads() == before
    _announce("beta|t2")
    assert _eventually(lambda: lanes.others_waiting("alpha"))  # heard, read, and it waits
    assert lanes.others_waiting("alpha")  # still waiting: asked again until a worker starts it
    lanes.started("beta|t2")
    assert not lanes.others_waiting("alpha")
    # A drainer of another lane in this process asks its own question: alpha's drainers count for it.
    assert lanes.others_waiting("beta")


# --------------------------------------------------------------------------- admission over HTTP


@pytest.fixture
def customers(channels):
    from tenants.customers.models import Customer

    ids = {}
    for code in ("alpha", "beta"):
        cid = funded_wallet(channel_id=channels[code].pk, units=1)
        with schema_context(code):
            Customer.objects.create(id=cid, external_ref=unique("c"), name="Applicant")
        ids[code] = cid
    return ids


def _surge_on_alpha(*, backlog: int, cost: float) -> None:
    client = admission.client()
    client.set(admission._key("backlog", "alpha"), backlog)
    client.hset(admission._key("lanes"), "alpha", f"2:{int(time.time()) + 600}")
    client.hset(admission._key("costs"), mapping={"alpha:cost": cost, "beta:cost": 0.05, "beta:dispatch": 0.01})


def test_a_channel_over_its_share_is_refused_while_another_is_served(
    client_for, channels, customers, clean_redis, django_capture_on_commit_callbacks, settings
):
    settings.STAMPING_MAX_WAIT_SECONDS = 60
    # 200 jobs at 1 s each on its share of 2 workers is ~100 s of work: past the 60 s promise.
    _surge_on_alpha(backlog=200, cost=1.0)
    body, ctype = raw_body({"customer": customers["alpha"], **PLACEMENT}, {"document": ("a.pdf", text_pdf())})
    refused = send(client_for("alpha"), body, ctype)
    assert refused.status_code == 503
    problem = refused.json()
    assert problem["code"] == "overloaded" and problem["request_id"]
    assert int(refused["Retry-After"]) >= 1
    with schema_context("alpha"):
        assert not StampJob.objects.filter(customer_id=customers["alpha"]).exists()
    assert quota.wallet_balance(channel_id=channels["alpha"].pk, customer_id=customers["alpha"])["held"] == 0

    body, ctype = raw_body({"customer": customers["beta"], **PLACEMENT}, {"document": ("b.pdf", text_pdf())})
    with django_capture_on_commit_callbacks(execute=True):
        served = send(client_for("beta"), body, ctype)
    assert served.status_code == 202, served.content
    queue = served.json()["queue"]
    # beta's first job waits for a worker (its measured dispatch), then takes its measured cost.
    assert queue["position"] == 1
    assert queue["eta_ms"] == pytest.approx(1000 * (0.01 + 0.05), abs=2)
    assert lanes.flush_wakes()


def test_a_refusal_reads_no_body(client_for, customers, clean_redis):
    """Admission comes before the body is parsed: a request that would be a 422 is still a 503."""
    _surge_on_alpha(backlog=500, cost=1.0)
    response = client_for("alpha").generic("POST", "/api/v1/stamps", b"not multipart", content_type="text/plain")
    assert response.status_code == 503 and response.json()["code"] == "overloaded"


def test_refused_clients_are_given_spread_retry_times(client_for, customers, clean_redis):
    _surge_on_alpha(backlog=200, cost=1.0)
    waits = []
    for _ in range(6):
        response = client_for("alpha").generic("POST", "/api/v1/stamps", b"", content_type="text/plain")
        assert response.status_code == 503
        waits.append(int(response["Retry-After"]))
    # One lane job (1 s / its 2 workers = 0.5 s) apart: not all told the same moment.
    assert waits == sorted(waits) and waits[-1] > waits[0]
    assert waits[0] >= 40  # ~100 s of work ahead, 60 s of it within the promise


def test_a_lane_refused_before_its_cost_is_measured_again_is_told_to_come_back_soon(
    client_for, customers, clean_redis, settings
):
    """After a Redis restart the costs are gone and the model assumes a slow rate: the wait it computes
    from it is a guess, and the first drainer slice measures the real cost again within seconds."""
    settings.STAMPING_MAX_WAIT_SECONDS = 30
    client = admission.client()
    client.set(admission._key("backlog", "alpha"), 5000)  # 5000 x 1/20 s on 2 workers: 125 s by the guess
    client.hset(admission._key("lanes"), "alpha", f"2:{int(time.time()) + 600}")
    waits = []
    for _ in range(3):
        response = client_for("alpha").generic("POST", "/api/v1/stamps", b"", content_type="text/plain")
        assert response.status_code == 503 and response.json()["code"] == "overloaded"
        waits.append(int(response["Retry-After"]))
    assert "measured again" in response.json()["detail"]
    assert waits == sorted(waits) and waits[-1] <= admission.UNMEASURED_RETRY_SECONDS + 1

    # Another lane's slice came first: its cost (a quiet lane's, a job a slice) stands in for this
    # lane's, which is still not measured, and the wait computed from it is as much a guess.
    client.delete(admission._key("retry-slot", "alpha"))
    client.hset(admission._key("costs"), mapping={"beta:cost": 0.08, "all:cost": 0.08})
    response = client_for("alpha").generic("POST", "/api/v1/stamps", b"", content_type="text/plain")
    assert response.status_code == 503 and "measured again" in response.json()["detail"]
    assert int(response["Retry-After"]) <= admission.UNMEASURED_RETRY_SECONDS + 1

    # Measured (as slow as assumed), the same backlog is the wait it says: ~95 s past the promise.
    client.delete(admission._key("retry-slot", "alpha"))
    client.hset(admission._key("costs"), "alpha:cost", 1 / 20)
    response = client_for("alpha").generic("POST", "/api/v1/stamps", b"", content_type="text/plain")
    assert response.status_code == 503 and int(response["Retry-After"]) >= 90


def test_retry_slots_spread_clients_but_do_not_queue_them_behind_a_dropped_estimate(clean_redis):
    """Refused clients get slots a lane-job apart. A slot handed out from an estimate the model has
    since dropped (15 s, from the rate measured just after a Redis restart) does not send every later
    client behind it: bench/surge.py --faults redis told clients refused for the pace, whose earliest
    time was now, to come back in 12-15 s."""
    slots = [admission.retry_slot(schema="alpha", spacing=0.1, earliest=1.0) for _ in range(5)]
    assert slots == sorted(slots) and slots[-1] - slots[0] == pytest.approx(0.4, abs=0.05)
    admission.retry_slot(schema="alpha", spacing=0.015, earliest=15.0)  # the estimate, since dropped
    later = admission.retry_slot(schema="alpha", spacing=0.015, earliest=0.0)
    assert later <= admission.RETRY_HORIZON_SECONDS
    # On a slow lane (a second a job) sixty-four clients still queue one after another.
    slow = [admission.retry_slot(schema="beta", spacing=1.0, earliest=0.0) for _ in range(20)]
    assert slow == sorted(slow) and slow[-1] == pytest.approx(20.0, abs=0.1)


def test_a_waiting_lane_is_seen_by_the_periodic_read_even_if_its_announcement_was_missed(clean_redis, monkeypatch):
    monkeypatch.setattr(lanes, "REREAD_SECONDS", 3600.0)
    lanes.others_waiting("alpha")
    _settled("alpha")
    admission.client().zadd(lanes._waiting_key(), {"beta|unheard": time.time()})  # no announcement
    assert not lanes.others_waiting("alpha")  # nothing heard, and the last read is recent
    monkeypatch.setattr(lanes, "REREAD_SECONDS", 0.0)
    assert lanes.others_waiting("alpha")


def test_an_overloaded_refusal_is_not_logged_as_a_server_error(client_for, customers, clean_redis, caplog):
    _surge_on_alpha(backlog=500, cost=1.0)
    with caplog.at_level("WARNING", logger="django.request"):
        response = client_for("alpha").generic("POST", "/api/v1/stamps", b"", content_type="text/plain")
    assert response.status_code == 503 and response.json()["code"] == "overloaded"
    assert not [r for r in caplog.records if r.name == "django.request"]


# --------------------------------------------------------------------------- intake pace


def _admitted(channel, times: int) -> int:
    """How many of ``times`` admission checks in a row the channel passes (each takes from its pace)."""
    from stamping.errors import Overloaded

    passed = 0
    with schema_context(channel.schema_name):
        for _ in range(times):
            try:
                admission.admit(channel=channel)
            except Overloaded:
                continue
            passed += 1
    return passed


def test_a_lane_with_a_backlog_takes_new_jobs_at_its_pace_and_the_next_is_refused(
    client_for, channels, customers, clean_redis, django_capture_on_commit_callbacks, settings
):
    settings.STAMPING_MAX_WAIT_SECONDS = 3600  # the promise is not what refuses here
    settings.STAMPING_MIN_BACKLOG = 20
    settings.STAMPING_INTAKE_PACE = 1.5
    # 30 jobs waiting at 10 s a stamp on 2 drainers: one done every 5 s, so one taken every 3.3 s,
    # after a burst of STAMPING_MIN_BACKLOG (2 s of the pace is less than one job).
    _surge_on_alpha(backlog=30, cost=10.0)
    assert _admitted(channels["alpha"], 25) == 20

    body, ctype = raw_body({"customer": customers["alpha"], **PLACEMENT}, {"document": ("a.pdf", text_pdf())})
    refused = send(client_for("alpha"), body, ctype)
    assert refused.status_code == 503, refused.content
    problem = refused.json()
    assert problem["code"] == "overloaded" and problem["request_id"]
    assert "faster than it can stamp" in problem["detail"]
    assert int(refused["Retry-After"]) >= 3  # the next job's place in the pace, not a blind second
    with schema_context("alpha"):
        assert not StampJob.objects.filter(customer_id=customers["alpha"]).exists()
    assert quota.wallet_balance(channel_id=channels["alpha"].pk, customer_id=customers["alpha"])["held"] == 0

    # The lower classes wait while stamp requests do.
    from stamping.errors import PurchasesOverloaded

    with schema_context("alpha"), pytest.raises(PurchasesOverloaded):
        admission.admit_lower(channel=channels["alpha"], kind="purchases")

    # The other channel is not paced by alpha's surge.
    body, ctype = raw_body({"customer": customers["beta"], **PLACEMENT}, {"document": ("b.pdf", text_pdf())})
    with django_capture_on_commit_callbacks(execute=True):
        served = send(client_for("beta"), body, ctype)
    assert served.status_code == 202, served.content
    assert lanes.flush_wakes()


def test_no_pace_below_the_least_backlog_nor_when_it_is_off(channels, clean_redis, settings):
    settings.STAMPING_MAX_WAIT_SECONDS = 3600
    settings.STAMPING_MIN_BACKLOG = 20
    settings.STAMPING_INTAKE_PACE = 1.5
    _surge_on_alpha(backlog=10, cost=10.0)  # a short queue: a quiet channel's burst is never paced
    assert _admitted(channels["alpha"], 40) == 40

    settings.STAMPING_INTAKE_PACE = 0
    _surge_on_alpha(backlog=30, cost=10.0)
    assert _admitted(channels["alpha"], 40) == 40


def test_a_fast_lane_may_take_a_burst_of_two_seconds_of_its_pace(channels, clean_redis, settings):
    settings.STAMPING_MAX_WAIT_SECONDS = 3600
    settings.STAMPING_MIN_BACKLOG = 20
    settings.STAMPING_INTAKE_PACE = 1.5
    # 0.2 s a stamp on 2 drainers: 10 done a second, 15 taken a second, a burst of 30 (more than 20).
    _surge_on_alpha(backlog=30, cost=0.2)
    taken = _admitted(channels["alpha"], 100)
    assert 30 <= taken < 100  # the checks take a moment: the pace refills a little meanwhile


def test_a_batch_larger_than_the_burst_is_taken_once_the_burst_is_whole_and_pays_for_every_job(
    channels, clean_redis, settings
):
    from stamping.errors import Overloaded

    settings.STAMPING_MAX_WAIT_SECONDS = 3600
    settings.STAMPING_MIN_BACKLOG = 20
    settings.STAMPING_INTAKE_PACE = 1.5
    _surge_on_alpha(backlog=30, cost=10.0)  # one job taken every 3.3 s, a burst of 20
    with schema_context("alpha"):
        admission.admit(channel=channels["alpha"], new_jobs=50)  # the whole burst was there
        with pytest.raises(Overloaded) as refused:  # ... and it paid for 50 jobs, not 20
            admission.admit(channel=channels["alpha"])
    assert refused.value.extra["retry_after"] >= 30 * 10 / 2 / 1.5


# --------------------------------------------------------------------------- completions


def _counted(schema: str) -> tuple[int, int, int]:
    """The backlog counter, the channel's and everyone's finished stamps in this time bucket and the
    one before (a read just after a bucket turned still sees what was counted in the last one)."""
    bucket = int(time.time()) // admission.BUCKET_SECONDS
    keys = [admission._key("backlog", schema)]
    for scope in (schema, "all"):
        keys += [admission._key("done", scope, bucket), admission._key("done", scope, bucket - 1)]
    backlog, mine, mine_before, everyone, everyone_before = (int(v or 0) for v in admission.client().mget(keys))
    return backlog, mine + mine_before, everyone + everyone_before


def test_a_drainers_completions_are_counted_together_and_all_counted_on_the_way_out(monkeypatch):
    monkeypatch.setattr(admission, "COMPLETION_FLUSH_SECONDS", 3600.0)  # nothing leaves before the end
    first, second = unique("lane"), unique("lane")
    admission.client().set(admission._key("backlog", first), 5)
    admission.client().set(admission._key("backlog", second), 2)
    backlog_first, done_first, done_all = _counted(first)

    with admission.completions_batched():
        for schema in (first, first, second, first):
            admission.record_completion(channel_schema=schema)
        with admission.completions_batched():  # (nested: the outer one sends)
            admission.record_completion(channel_schema=second)
        assert _counted(first)[:2] == (backlog_first, done_first)  # not sent yet
    after_first, after_second = _counted(first), _counted(second)
    assert after_first[:2] == (5 - 3, done_first + 3) and after_second[:2] == (2 - 2, 2)
    assert after_first[2] >= done_all + 5  # (other tests may count in the same bucket)

    admission.record_completion(channel_schema=first)  # outside a drainer's slice: at once
    assert _counted(first)[:2] == (5 - 4, done_first + 4)


def test_a_drainers_completions_leave_at_least_every_flush_interval(monkeypatch):
    monkeypatch.setattr(admission, "COMPLETION_FLUSH_SECONDS", 0.0)
    schema = unique("lane")
    admission.client().set(admission._key("backlog", schema), 3)
    with admission.completions_batched():
        admission.record_completion(channel_schema=schema)  # the first opens the interval
        admission.record_completion(channel_schema=schema)  # the interval is over: both leave
        assert _counted(schema)[0] == 1
