"""Charts on the back office and the portal: nothing drawn for the time before a channel existed,
and numbers on axes and in tables written one way (Indonesian grouping, ``10.000``)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone
from django_tenants.utils import schema_context

from billing import quota
from faces.charts import NO_VALUE, format_number
from gateway import hosts
from tenants.models import Channel
from tests.billing.factories import unique
from tests.staff_helpers import make_staff, office_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def young_alpha(channels):
    """alpha, created 20 minutes ago, with 10,000 units."""
    alpha = channels["alpha"]
    Channel.objects.filter(pk=alpha.pk).update(created_at=timezone.now() - dt.timedelta(minutes=20))
    hosts.forget()
    quota.allocate_stock(channel_id=alpha.pk, units=10_000, reference=unique("dep"))
    yield Channel.objects.get(pk=alpha.pk)
    hosts.forget()


def _office() -> Client:
    with schema_context("public"):
        return office_client(make_staff("ops"))


def test_the_stock_chart_draws_nothing_before_the_channel_existed(young_alpha):
    response = _office().get("/backoffice/?window=1h")

    assert response.status_code == 200
    chart = response.context["stock_chart"]
    column = chart["table"]["columns"].index(young_alpha.name)
    labels = [label for label, _ in chart["table"]["rows"]]
    cells = [values[column] for _, values in chart["table"]["rows"]]
    born = labels.index(timezone.localtime(young_alpha.created_at).strftime("%H:%M"))  # its minute
    assert 20 <= born <= 40
    assert cells[:born] == [NO_VALUE] * born
    assert NO_VALUE not in cells[born:]
    assert cells[-1] == format_number(quota_available(young_alpha))
    line = next(s for s in chart["series"] if s["name"] == young_alpha.name)
    assert len(line["points"].split()) == len(labels) - born  # no line along 0 before it existed
    stamps = response.context["stamps_chart"]
    stamp_cells = [values[column] for _, values in stamps["table"]["rows"]]
    assert stamp_cells == [NO_VALUE] * born + ["0"] * (len(labels) - born)


def quota_available(channel) -> int:
    from billing.ledger.selectors import channel_balance

    return channel_balance(channel_id=channel.pk).available


def test_axes_and_tables_write_thousands_with_dots(young_alpha):
    response = _office().get("/backoffice/?window=1h")

    html = response.content.decode()
    available = quota_available(young_alpha)
    assert available >= 10_000
    axis = [g["label"] for g in response.context["stock_chart"]["grid"]]
    assert all("," not in label for label in axis)
    assert any("." in label for label in axis)  # e.g. 10.000, 20.000
    assert f'class="ylabel" x="44" y="12.0" dy="4">{axis[-1]}<' in html
    assert f'data-testid="available-alpha"><strong>{format_number(available)}</strong>' in html
    assert [format_number(v) for v in (10_000, 1_234_567, 2.5, 0.25, 0)] == ["10.000", "1.234.567", "2,5", "0,25", "0"]


def test_the_portal_activity_chart_has_no_bars_before_the_channel_existed(young_alpha):
    young = Channel.objects.filter(pk=young_alpha.pk)
    young.update(created_at=timezone.now() - dt.timedelta(hours=5))
    hosts.forget()
    portal = Client(HTTP_HOST="alpha.test")
    with schema_context("alpha"):
        portal.force_login(get_user_model().objects.get(username="admin"))

    response = portal.get("/?range=48h")

    assert response.status_code == 200
    rows = response.context["chart"]["table"]["rows"]
    labels = [label for label, _ in rows]
    hour = timezone.localtime(young.get().created_at).strftime("%H:00")
    born = len(labels) - 1 - labels[::-1].index(hour)  # the hour it was created in (labels repeat over 48 h)
    assert len(rows) == 48 and born >= 40
    assert [values for _, values in rows[:born]] == [[NO_VALUE, NO_VALUE]] * born
    assert all(NO_VALUE not in values for _, values in rows[born:])
