from __future__ import annotations

import datetime as dt

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.utils import timezone

from issuer.models import IncidentNote
from tenants.models import Channel


class StaffLoginForm(AuthenticationForm):
    """Only issuer staff (public-schema users with ``is_staff``) may sign in to the back office."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "not_staff": "This account is not issuer staff. Sign in with a staff account.",
    }

    def confirm_login_allowed(self, user):
        super().confirm_login_allowed(user)
        if not user.is_staff:
            raise forms.ValidationError(self.error_messages["not_staff"], code="not_staff")


class OtpCodeForm(forms.Form):
    token = forms.CharField(
        label="Code",
        min_length=6,
        max_length=8,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}),
        help_text="The six-digit code your authenticator app shows now.",
    )


class DepositForm(forms.Form):
    channel = forms.ModelChoiceField(
        queryset=Channel.objects.filter(kind=Channel.Kind.CHANNEL, is_active=True).order_by("name"),
        empty_label="Choose a channel",
    )
    units = forms.IntegerField(min_value=1, max_value=100_000_000, help_text="e-Meterai units the deposit pays for.")
    reference = forms.CharField(
        label="Billing reference", max_length=100, help_text="The reference of the channel's payment (unique)."
    )

    def clean_reference(self):
        return self.cleaned_data["reference"].strip()


class PeriodForm(forms.Form):
    date_from = forms.DateField(label="From", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label="To (included)", widget=forms.DateInput(attrs={"type": "date"}))

    @staticmethod
    def default_period() -> dict:
        today = timezone.localdate()
        return {"date_from": today.replace(day=1), "date_to": today}

    def clean(self):
        data = super().clean()
        start, end = data.get("date_from"), data.get("date_to")
        if start and end:
            if end < start:
                raise forms.ValidationError("The period ends before it starts.")
            if end - start > dt.timedelta(days=366):
                raise forms.ValidationError("Choose a period of at most a year.")
        return data


class SerialLookupForm(forms.Form):
    serial = forms.CharField(
        max_length=40, widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"})
    )


class DateTimeLocalInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, attrs=None):
        super().__init__(attrs, format="%Y-%m-%dT%H:%M")


class IncidentForm(forms.Form):
    title = forms.CharField(max_length=200)
    body = forms.CharField(
        label="What users should know",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Shown on the public status page as plain text.",
    )
    severity = forms.ChoiceField(choices=IncidentNote.Severity.choices, initial=IncidentNote.Severity.MINOR)
    started_at = forms.DateTimeField(label="Started", widget=DateTimeLocalInput(), input_formats=["%Y-%m-%dT%H:%M"])
    resolved_at = forms.DateTimeField(
        label="Resolved",
        required=False,
        widget=DateTimeLocalInput(),
        input_formats=["%Y-%m-%dT%H:%M"],
        help_text="Leave empty while the incident is ongoing.",
    )

    def clean(self):
        data = super().clean()
        start, end = data.get("started_at"), data.get("resolved_at")
        if start and end and end < start:
            self.add_error("resolved_at", "An incident cannot be resolved before it started.")
        return data


class BrownoutForm(forms.Form):
    """Pause one class of new work for one channel or for all (``stamping.brownout``)."""

    kind = forms.ChoiceField(
        label="Pause",
        choices=[
            ("registrations", "New customers"),
            ("purchases", "New purchases"),
            ("stamping", "New stamp requests"),
        ],
        help_text="Pausing a class pauses the lower ones with it (customers, then purchases, then stamp requests).",
    )
    channel = forms.ModelChoiceField(
        queryset=Channel.objects.filter(kind=Channel.Kind.CHANNEL).order_by("name"),
        required=False,
        empty_label="Every channel",
        to_field_name="code",
    )
    reason = forms.CharField(
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Shown to channels (API, webhooks) and on the public status page.",
    )
