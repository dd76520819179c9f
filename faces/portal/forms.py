from __future__ import annotations

from django import forms
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from gateway.models import ApiKey

SCOPE_HELP = {
    "read": _("read customers, orders, stamps and balances"),
    "purchase": _("create orders and refunds"),
    "stamp": _("send documents to be stamped"),
    "admin": _("manage customers and webhooks"),
}
EVENT_CHOICES = [
    ("*", _("Every event")),
    ("order.paid", _("order.paid - a payment arrived")),
    ("order.credited", _("order.credited - units reached the customer's wallet")),
    ("stamp.completed", _("stamp.completed - a document was stamped")),
    ("stamp.failed", _("stamp.failed - a stamp failed for good (the unit was given back)")),
    ("stock.low", _("stock.low - the channel's stock fell below its threshold")),
    ("service.paused", _("service.paused - the issuer paused new purchases, customers or stamp requests")),
    ("service.resumed", _("service.resumed - the issuer resumed them")),
    ("stock.credited", _("stock.credited - the issuer confirmed a deposit: units were added to the stock")),
]


SCOPES = ApiKey.Scope.choices


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        label=_("Name"), max_length=100, help_text=_("Where the key is used, e.g. “mobile app production”.")
    )
    scopes = forms.MultipleChoiceField(
        label=_("Scopes"),
        choices=[(value, format_lazy("{} - {}", value, SCOPE_HELP.get(value, label))) for value, label in SCOPES],
        widget=forms.CheckboxSelectMultiple,
        initial=["read", "purchase", "stamp"],
        help_text=_("Give each key only what it needs."),
    )


class WebhookEndpointForm(forms.Form):
    url = forms.URLField(label=_("Endpoint URL"), max_length=500, assume_scheme="https")
    events = forms.MultipleChoiceField(
        label=_("Events"), choices=EVENT_CHOICES, widget=forms.CheckboxSelectMultiple, initial=["*"]
    )
    description = forms.CharField(label=_("Description"), max_length=200, required=False)
