from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.indexes import BrinIndex
from django.db import models
from django.db.models import F, Q


class Account(models.Model):
    """One ledger account. Balances are running totals maintained by the ledger functions only."""

    class Kind(models.TextChoices):
        MINT = "mint", "Issuer mint (source of all units)"
        STOCK = "stock", "Channel stock (one of several shards)"
        WALLET = "wallet", "Customer wallet"
        USED = "used", "Units used by stamps (one of several shards)"

    code = models.CharField(max_length=120, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    channel = models.ForeignKey("tenants.Channel", null=True, blank=True, on_delete=models.PROTECT)
    customer_id = models.BigIntegerField(null=True, blank=True)
    shard = models.PositiveSmallIntegerField(null=True, blank=True)
    debits_pending = models.BigIntegerField(default=0)
    debits_posted = models.BigIntegerField(default=0)
    credits_pending = models.BigIntegerField(default=0)
    credits_posted = models.BigIntegerField(default=0)
    # The account may never pay out more than it has received (posted), counting pending holds.
    no_overdraft = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                name="ledger_account_no_overdraft",
                condition=Q(no_overdraft=False) | Q(debits_posted__lte=F("credits_posted") - F("debits_pending")),
            ),
            models.CheckConstraint(
                name="ledger_account_totals_non_negative",
                condition=Q(debits_pending__gte=0, debits_posted__gte=0, credits_pending__gte=0, credits_posted__gte=0),
            ),
        ]
        indexes = [models.Index(fields=["channel", "kind"])]

    def __str__(self) -> str:
        return self.code

    @property
    def available(self) -> int:
        """What can still be debited: posted credits less posted and pending debits."""
        return self.credits_posted - self.debits_posted - self.debits_pending


class Transfer(models.Model):
    """An immutable movement of ``amount`` units. A pending transfer is open while its
    ``PendingTransfer`` row exists; its post or void is another row pointing at it (``pending``)."""

    class State(models.TextChoices):
        POSTED = "posted"  # a single-phase transfer, or the posting of a pending one
        PENDING = "pending"  # a hold; open while its PendingTransfer row exists, then see its resolution
        VOIDED = "voided"  # the voiding (or expiry) of a pending transfer

    id = models.CharField(max_length=200, primary_key=True)  # the caller's idempotency key
    # No full index per account: every index is written on the hot path, and only two account
    # lookups exist (partial indexes below); reconciliation scans the table anyway.
    debit_account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+", db_index=False)
    credit_account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+", db_index=False)
    amount = models.BigIntegerField()
    kind = models.CharField(max_length=32)
    state = models.CharField(max_length=16, choices=State.choices)
    pending = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="resolution", db_column="pending_id"
    )
    timeout_at = models.DateTimeField(null=True, blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(name="ledger_transfer_amount_positive", condition=Q(amount__gt=0)),
            models.CheckConstraint(
                name="ledger_transfer_distinct_accounts", condition=~Q(debit_account=F("credit_account"))
            ),
        ]
        indexes = [
            # Reports scan by time; a BRIN index costs almost nothing on the insert-heavy hot path.
            BrinIndex(fields=["created_at"], name="ledger_transfer_created_brin"),
            # a wallet's used units (GET /customers/{id}) and a channel's allocations (balance)
            models.Index(fields=["debit_account"], name="ledger_commits_by_wallet", condition=Q(kind="commit")),
            models.Index(fields=["credit_account"], name="ledger_allocations", condition=Q(kind="allocate")),
        ]

    def __str__(self) -> str:
        return f"{self.id}: {self.amount} {self.kind} ({self.state})"


class Deposit(models.Model):
    """A channel's prepayment of stamp duty for ``units``; confirmed, it allocates the units."""

    class Status(models.TextChoices):
        PENDING = "pending"
        CONFIRMED = "confirmed"
        REJECTED = "rejected"

    channel = models.ForeignKey("tenants.Channel", on_delete=models.PROTECT, related_name="deposits")
    reference = models.CharField(max_length=100, unique=True, help_text="The billing reference of the payment.")
    units = models.PositiveIntegerField()
    amount_rupiah = models.BigIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    # Maker-checker: the person who recorded a deposit never confirms it (billing.deposits).
    recorded_by = models.CharField(max_length=150, blank=True)
    recorded_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    confirmed_at = models.DateTimeField(null=True, blank=True)
    confirmed_by = models.CharField(max_length=150, blank=True)
    confirmed_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ("-created_at",)
        constraints = [models.CheckConstraint(name="deposit_units_positive", condition=Q(units__gt=0))]
        permissions = [
            ("record_deposit", "Can record a channel's deposit"),
            ("confirm_deposit", "Can confirm a deposit recorded by someone else (allocates its units)"),
        ]

    def __str__(self) -> str:
        return f"{self.reference}: {self.units} units"


class ReconciliationRun(models.Model):
    """The stored outcome of one ``reconcile`` run, for the back office."""

    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    ok = models.BooleanField()
    report = models.JSONField()

    class Meta:
        ordering = ("-started_at",)

    def __str__(self) -> str:
        return f"{self.started_at:%Y-%m-%d %H:%M} {'ok' if self.ok else 'VIOLATIONS'}"


class PendingTransfer(models.Model):
    """The open holds and reservations: one row per pending transfer not yet posted or voided.

    Small (only work in flight), so the sweeper's scan for expired holds is cheap, and deleting a
    row is the gate that lets exactly one post or void through.
    """

    transfer = models.OneToOneField(Transfer, primary_key=True, on_delete=models.PROTECT, related_name="open")

    class Meta:
        db_table = "ledger_pending"

    def __str__(self) -> str:
        return f"open: {self.transfer_id}"


class TopUpRequest(models.Model):
    """A channel's request for more stock (its finance member, in the portal): N units, the reference
    of the bank transfer that pays their stamp duty, and the proof of that transfer. Issuer staff turn
    it into a :class:`Deposit` (recorded by one person, confirmed by another, ``billing.topups``)."""

    class State(models.TextChoices):
        REQUESTED = "requested", "Waiting for the issuer"
        RECORDED = "recorded", "Recorded; waiting for a second person's confirmation"
        CONFIRMED = "confirmed", "Confirmed; the units are in your stock"
        REJECTED = "rejected", "Rejected"

    channel = models.ForeignKey("tenants.Channel", on_delete=models.PROTECT, related_name="topup_requests")
    units = models.PositiveIntegerField()
    transfer_reference = models.CharField(max_length=100)
    proof_name = models.CharField(max_length=200)
    proof_type = models.CharField(max_length=100)
    proof = models.BinaryField(help_text="The uploaded proof of transfer (PDF or image), at most 900 KB.")
    requested_by = models.CharField(max_length=200)
    state = models.CharField(max_length=16, choices=State.choices, default=State.REQUESTED)
    deposit = models.OneToOneField(
        Deposit, null=True, blank=True, on_delete=models.PROTECT, related_name="topup_request"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-created_at",)
        constraints = [
            models.CheckConstraint(name="topup_units_positive", condition=Q(units__gt=0)),
            models.UniqueConstraint(fields=["channel", "transfer_reference"], name="topup_reference_once"),
        ]

    def __str__(self) -> str:
        return f"top-up {self.pk} of {self.units} units ({self.state})"
