from __future__ import annotations

import datetime as dt

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from faces.labels import shown_choices
from issuer.models import IncidentNote
from tenants.models import Channel


class StaffLoginForm(AuthenticationForm):
    """Only issuer staff (public-schema users with ``is_staff``) may sign in to the back office."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "not_staff": _("This account is not issuer staff. Sign in with a staff account."),
    }

    def confirm_login_allowed(self, user):
        super().confirm_login_allowed(user)
        if not user.is_staff:
            raise forms.ValidationError(self.error_messages["not_staff"], code="not_staff")


class OtpCodeForm(forms.Form):
    token = forms.CharField(
        label=_("Code"),
        min_length=6,
        max_length=8,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}),
        help_text=_("The six-digit code your authenticator app shows now."),
    )


class DepositForm(forms.Form):
    channel = forms.ModelChoiceField(
        queryset=Channel.objects.filter(kind=Channel.Kind.CHANNEL, is_active=True).order_by("name"),
        label=_("Channel"),
        empty_label=_("Choose a channel"),
    )
    units = forms.IntegerField(
        label=_("Units"), min_value=1, max_value=100_000_000, help_text=_("e-Meterai units the deposit pays for.")
    )
    reference = forms.CharField(
        label=_("Billing reference"), max_length=100, help_text=_("The reference of the channel's payment (unique).")
    )

    def clean_reference(self):
        return self.cleaned_data["reference"].strip()


class PeriodForm(forms.Form):
    date_from = forms.DateField(label=_("From"), widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label=_("To (included)"), widget=forms.DateInput(attrs={"type": "date"}))

    @staticmethod
    def default_period() -> dict:
        today = timezone.localdate()
        return {"date_from": today.replace(day=1), "date_to": today}

    def clean(self):
        data = super().clean()
        start, end = data.get("date_from"), data.get("date_to")
        if start and end:
            if end < start:
                raise forms.ValidationError(gettext("The period ends before it starts."))
            if end - start > dt.timedelta(days=366):
                raise forms.ValidationError(gettext("Choose a period of at most a year."))
        return data


class SerialLookupForm(forms.Form):
    serial = forms.CharField(
        label=_("Serial number"),
        max_length=40,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )


class DateTimeLocalInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, attrs=None):
        super().__init__(attrs, format="%Y-%m-%dT%H:%M")


class IncidentForm(forms.Form):
    title = forms.CharField(label=_("Title"), max_length=200)
    body = forms.CharField(
        label=_("What users should know"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("Shown on the public status page as plain text."),
    )
    severity = forms.ChoiceField(
        label=_("Severity"), choices=shown_choices(IncidentNote.Severity.choices), initial=IncidentNote.Severity.MINOR
    )
    started_at = forms.DateTimeField(label=_("Started"), widget=DateTimeLocalInput(), input_formats=["%Y-%m-%dT%H:%M"])
    resolved_at = forms.DateTimeField(
        label=_("Resolved"),
        required=False,
        widget=DateTimeLocalInput(),
        input_formats=["%Y-%m-%dT%H:%M"],
        help_text=_("Leave empty while the incident is ongoing."),
    )

    def clean(self):
        data = super().clean()
        start, end = data.get("started_at"), data.get("resolved_at")
        if start and end and end < start:
            self.add_error("resolved_at", gettext("An incident cannot be resolved before it started."))
        return data


class BrownoutForm(forms.Form):
    """Pause one class of new work for one channel or for all (``stamping.brownout``)."""

    kind = forms.ChoiceField(
        label=_("Pause"),
        choices=[
            ("registrations", _("New customers")),
            ("purchases", _("New purchases")),
            ("stamping", _("New stamp requests")),
        ],
        help_text=_("Pausing a class pauses the lower ones with it (customers, then purchases, then stamp requests)."),
    )
    channel = forms.ModelChoiceField(
        label=_("Channel"),
        queryset=Channel.objects.filter(kind=Channel.Kind.CHANNEL).order_by("name"),
        required=False,
        empty_label=_("Every channel"),
        to_field_name="code",
    )
    reason = forms.CharField(
        label=_("Reason"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Shown to channels (API, webhooks) and on the public status page."),
    )
