"""Maker-checker deposits (permissions, groups, the service's own refusal) and the audit log written
in the same transaction as each staff action."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.utils import timezone

from billing.deposits import DepositNotAllowed, DepositSamePerson, confirm_deposit, create_deposit
from billing.ledger.models import Deposit
from billing.ledger.services import channel_balance
from staff.models import AuditEntry
from tests.billing.factories import unique
from tests.staff_helpers import APPROVERS, RECORDERS, make_staff, office_client

pytestmark = pytest.mark.django_db


def test_the_groups_carry_the_two_permissions():
    assert list(Group.objects.get(name=RECORDERS).permissions.values_list("codename", flat=True)) == ["record_deposit"]
    assert list(Group.objects.get(name=APPROVERS).permissions.values_list("codename", flat=True)) == ["confirm_deposit"]


def test_one_person_cannot_mint_stock_even_with_both_permissions(channels):
    """The issue: one session recorded and confirmed a 100,000,000-unit deposit."""
    alpha = channels["alpha"]
    both = make_staff("both")  # in both groups
    before = channel_balance(channel_id=alpha.pk)
    deposit = create_deposit(channel=alpha, units=100_000_000, reference=unique("INV"), recorded_by=both)
    with pytest.raises(DepositSamePerson) as refused:
        confirm_deposit(deposit_id=deposit.pk, confirmed_by=both)
    assert refused.value.code == "deposit_same_person" and refused.value.http_status == 403
    deposit.refresh_from_db()
    assert deposit.status == "pending" and channel_balance(channel_id=alpha.pk) == before
    assert not AuditEntry.objects.filter(action="deposit.confirmed", target=f"ledger.deposit:{deposit.pk}").exists()


def test_recording_and_confirming_need_their_permissions(channels):
    alpha = channels["alpha"]
    recorder = make_staff("recorder", groups=(RECORDERS,))
    approver = make_staff("approver", groups=(APPROVERS,))
    with pytest.raises(DepositNotAllowed):
        create_deposit(channel=alpha, units=10, reference=unique("INV"), recorded_by=approver)
    deposit = create_deposit(channel=alpha, units=10, reference=unique("INV"), recorded_by=recorder)
    other_recorder = make_staff("recorder2", groups=(RECORDERS,))
    with pytest.raises(DepositNotAllowed):
        confirm_deposit(deposit_id=deposit.pk, confirmed_by=other_recorder)
    assert Deposit.objects.get(pk=deposit.pk).status == "pending"
    confirmed = confirm_deposit(deposit_id=deposit.pk, confirmed_by=approver)
    assert (confirmed.status, confirmed.recorded_by, confirmed.confirmed_by) == ("confirmed", "recorder", "approver")


def test_a_staff_member_without_the_group_sees_no_form_and_is_refused(channels):
    viewer = make_staff("viewer", groups=())
    client = office_client(viewer)
    page = client.get("/backoffice/deposits/").content.decode()
    assert 'data-testid="no-record-permission"' in page and "Record deposit</button>" not in page
    count = Deposit.objects.count()
    refused = client.post("/backoffice/deposits/", {"channel": channels["alpha"].pk, "units": 5, "reference": "X1"})
    assert refused.status_code == 403 and "may not record deposits" in refused.content.decode()
    assert Deposit.objects.count() == count


def test_every_deposit_step_is_audited_with_who_when_and_where(channels):
    maker, checker = make_staff("maker", groups=(RECORDERS,)), make_staff("checker", groups=(APPROVERS,))
    reference = unique("INV")
    started = timezone.now()
    office_client(maker, REMOTE_ADDR="198.51.100.20").post(
        "/backoffice/deposits/", {"channel": channels["alpha"].pk, "units": 40, "reference": reference},
        HTTP_X_REQUEST_ID="req-audit-maker-1",
    )  # fmt: skip
    deposit = Deposit.objects.get(reference=reference)
    office_client(checker, REMOTE_ADDR="198.51.100.21").post(
        f"/backoffice/deposits/{deposit.pk}/confirm", HTTP_X_REQUEST_ID="req-audit-checker-1"
    )
    entries = list(AuditEntry.objects.filter(target=f"ledger.deposit:{deposit.pk}").order_by("at", "id"))
    assert [(e.action, e.actor, e.request_id, e.client_address) for e in entries] == [
        ("deposit.recorded", "maker", "req-audit-maker-1", "198.51.100.20"),
        ("deposit.confirmed", "checker", "req-audit-checker-1", "198.51.100.21"),
    ]
    assert entries[0].actor_id == maker.pk and entries[1].actor_id == checker.pk
    assert entries[0].details == {"channel": "alpha", "units": 40, "amount_rupiah": 400_000, "reference": reference}
    assert all(e.at >= started for e in entries)
    page = office_client(checker).get("/backoffice/audit/?action=deposit.confirmed").content.decode()
    assert "req-audit-checker-1" in page and "req-audit-maker-1" not in page


def test_incident_notes_and_limit_changes_are_audited(channels):
    ops = make_staff("ops")
    client = office_client(ops)
    created = client.post(
        "/backoffice/incidents/",
        {"title": "Slow stamping", "body": "", "severity": "minor", "started_at": "2026-01-05T10:00"},
    )
    assert created.status_code == 302
    note_entry = AuditEntry.objects.get(action="incident.created")
    assert (note_entry.actor, note_entry.details["title"]) == ("ops", "Slow stamping")
    note_id = int(note_entry.target.split(":")[1])
    client.post(f"/backoffice/incidents/{note_id}/resolve")
    assert AuditEntry.objects.filter(action="incident.resolved", actor="ops", target=note_entry.target).count() == 1

    call_command("channel_limits", "--channel", "alpha", "--per-key", "9")
    limits = AuditEntry.objects.get(action="channel.limits_changed")
    assert limits.actor == "manage.py channel_limits"
    assert limits.details["after"] == {"rate_limit_per_key": 9} and "rate_limit_per_key" in limits.details["before"]


def test_large_deposits_are_on_the_overview_pending_first(channels, settings):
    settings.LARGE_DEPOSIT_UNITS = 1_000_000
    maker, checker = make_staff("maker", groups=(RECORDERS,)), make_staff("checker", groups=(APPROVERS,))
    small = create_deposit(channel=channels["alpha"], units=999_999, reference=unique("SMALL"), recorded_by=maker)
    done = create_deposit(channel=channels["alpha"], units=2_000_000, reference=unique("DONE"), recorded_by=maker)
    confirm_deposit(deposit_id=done.pk, confirmed_by=checker)
    waiting = create_deposit(channel=channels["beta"], units=100_000_000, reference=unique("BIG"), recorded_by=maker)
    page = office_client(checker).get("/backoffice/").content.decode()
    section = page[page.index('id="large-deposits"') : page.index('id="overview-live"')]
    assert small.reference not in section
    assert section.index(waiting.reference) < section.index(done.reference)
    assert "awaiting confirmation" in section and "card large-deposits attention" in page


def test_a_reconciliation_run_from_the_back_office_is_audited():
    from billing.ledger.models import ReconciliationRun

    client = office_client(make_staff("ops"))
    assert client.post("/backoffice/reconciliation/run").status_code == 302
    run = ReconciliationRun.objects.order_by("-pk").first()
    entry = AuditEntry.objects.get(action="reconciliation.run", target=f"ledger.reconciliationrun:{run.pk}")
    assert entry.actor == "ops" and entry.details["ok"] == run.ok


@pytest.mark.parametrize("change", ["update", "delete"])
def test_audit_entries_cannot_be_changed_or_removed(change):
    from django.db import DatabaseError, transaction

    from staff.audit import record

    entry = record("test", "deposit.recorded", "ledger.deposit:1", units=5)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        if change == "update":
            AuditEntry.objects.filter(pk=entry.pk).update(actor="someone else")
        else:
            AuditEntry.objects.filter(pk=entry.pk).delete()
    entry.refresh_from_db()
    assert entry.actor == "test"
