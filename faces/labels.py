"""The labels of the domains' choices (statuses, states, roles, severities, brownout classes) as the
pages show them. The domains keep their English labels, which their own messages and the APIs use; a
page translates a label where it shows it (``{% translate job.get_status_display %}`` in a template,
``gettext(label)`` in Python), with these entries of the catalogue. ``tests/gateway/test_i18n_pages.py``
fails when a model's choice has a label missing here."""

from __future__ import annotations

from django.utils.translation import gettext_noop

LABELS = (
    # stamping.models.StampJob.Status, tenants.models.Onboarding.State
    gettext_noop("Queued"),
    gettext_noop("Processing"),
    gettext_noop("Stamped"),
    gettext_noop("Failed"),
    gettext_noop("Provisioning"),
    gettext_noop("Ready"),
    # billing.retail.models.Order.Status
    gettext_noop("Awaiting Payment"),
    gettext_noop("Paid"),
    gettext_noop("Credited"),
    gettext_noop("Expired"),
    gettext_noop("Refunded"),
    gettext_noop("Payment Failed"),
    # outbox.models.WebhookDelivery.Status, billing.ledger.models.Deposit.Status
    gettext_noop("Pending"),
    gettext_noop("Succeeded"),
    gettext_noop("Confirmed"),
    gettext_noop("Rejected"),
    # billing.ledger.models.TopUpRequest.State
    gettext_noop("Waiting for the issuer"),
    gettext_noop("Recorded; waiting for a second person's confirmation"),
    gettext_noop("Confirmed; the units are in your stock"),
    # issuer.models.IncidentNote.Severity
    gettext_noop("Information"),
    gettext_noop("Degraded service"),
    gettext_noop("Outage"),
    # tenants.members.models.Role
    gettext_noop("Owner"),
    gettext_noop("Developer"),
    gettext_noop("Finance"),
    gettext_noop("Support"),
    # stamping.brownout.models.Brownout.Kind
    gettext_noop("new stamp requests"),
    gettext_noop("new purchases"),
    gettext_noop("new customers"),
    # issuer.models.Serial.Status
    gettext_noop("Used"),
    gettext_noop("Void"),
)


def shown_choices(choices) -> list[tuple[str, str]]:
    """``choices`` with their labels in the page's language (lazily: a form's field keeps them)."""
    from django.utils.translation import gettext_lazy

    return [(value, gettext_lazy(label)) for value, label in choices]
