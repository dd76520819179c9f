from __future__ import annotations

from django import forms

from gateway.models import ApiKey

SCOPE_HELP = {
    "read": "read customers, orders, stamps and balances",
    "purchase": "create orders and refunds",
    "stamp": "send documents to be stamped",
    "admin": "manage customers and webhooks",
}
EVENT_CHOICES = [
    ("*", "Every event"),
    ("order.paid", "order.paid - a payment arrived"),
    ("order.credited", "order.credited - units reached the customer's wallet"),
    ("stamp.completed", "stamp.completed - a document was stamped"),
    ("stamp.failed", "stamp.failed - a stamp failed for good (the unit was given back)"),
    ("stock.low", "stock.low - the channel's stock fell below its threshold"),
    ("service.paused", "service.paused - the issuer paused new purchases, customers or stamp requests"),
    ("service.resumed", "service.resumed - the issuer resumed them"),
    ("stock.credited", "stock.credited - the issuer confirmed a deposit: units were added to the stock"),
]


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="Where the key is used, e.g. “mobile app production”.")
    scopes = forms.MultipleChoiceField(
        choices=[(value, f"{value} - {SCOPE_HELP.get(value, label)}") for value, label in ApiKey.Scope.choices],
        widget=forms.CheckboxSelectMultiple,
        initial=["read", "purchase", "stamp"],
        help_text="Give each key only what it needs.",
    )


class WebhookEndpointForm(forms.Form):
    url = forms.URLField(label="Endpoint URL", max_length=500, assume_scheme="https")
    events = forms.MultipleChoiceField(choices=EVENT_CHOICES, widget=forms.CheckboxSelectMultiple, initial=["*"])
    description = forms.CharField(max_length=200, required=False)
