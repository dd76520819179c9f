"""``outbox_enqueue_event`` (``outbox.sql``), the event written by SQL inside a stamp's recording
statement, writes exactly what ``outbox.webhooks.enqueue_event`` writes: one pending row per active
endpoint that wants the event (by its type or ``*``), with the same columns."""

from __future__ import annotations

import json

import pytest
from django.db import connection, transaction
from django.forms.models import model_to_dict
from django_tenants.utils import schema_context

from outbox import webhooks
from outbox.models import WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db


def through_sql(event_type: str, payload: dict) -> list[int]:
    event_id, body = webhooks.new_event(event_type, payload)
    with connection.cursor() as cursor:
        cursor.execute('SELECT "alpha".outbox_enqueue_event(%s, %s, %s::jsonb)', [event_type, event_id, body])
        return cursor.fetchone()[0]


def test_the_sql_event_is_the_orm_event_row_for_row():
    payload = {"stamp": {"id": "stp_1", "serial": "A" * 22, "when": "2026-11-30"}}
    with schema_context("alpha"):
        wants = webhooks.create_webhook_endpoint(url="https://a.example/in", events=["stamp.completed"])
        everything = webhooks.create_webhook_endpoint(url="https://b.example/in", events=["*"])
        other = webhooks.create_webhook_endpoint(url="https://c.example/in", events=["order.paid"])
        off = webhooks.create_webhook_endpoint(url="https://d.example/in", events=["stamp.completed"])
        WebhookEndpoint.objects.filter(pk=off.pk).update(active=False)
        with transaction.atomic():
            made_by_orm = webhooks.enqueue_event(event_type="stamp.completed", payload=payload)
        ids = through_sql("stamp.completed", payload)
        made_by_sql = list(WebhookDelivery.objects.filter(pk__in=ids).order_by("pk"))
        for delivery in made_by_orm:
            delivery.refresh_from_db()  # (as stored)

    assert ids == sorted(ids) and len(ids) == 2
    assert [d.endpoint_id for d in made_by_sql] == [wants.pk, everything.pk] == [d.endpoint_id for d in made_by_orm]
    assert other.pk not in [d.endpoint_id for d in made_by_sql]
    assert len({d.event_id for d in made_by_sql}) == 1  # one event, fanned out
    varying = {"id", "event_id", "next_attempt_at"}  # (each its own: the moment it was written)
    for by_sql, by_orm in zip(made_by_sql, made_by_orm, strict=True):
        assert {k: v for k, v in model_to_dict(by_sql).items() if k not in varying} == {
            k: v for k, v in model_to_dict(by_orm).items() if k not in varying
        }
        assert by_sql.created_at is not None and by_sql.next_attempt_at is not None
        assert json.loads(json.dumps(by_sql.payload)) == payload


def test_no_endpoint_that_wants_the_event_writes_nothing():
    with schema_context("alpha"):
        webhooks.create_webhook_endpoint(url="https://c.example/in", events=["order.paid"])
        before = WebhookDelivery.objects.count()
        assert through_sql("stamp.completed", {"stamp": {}}) == []
        assert WebhookDelivery.objects.count() == before
