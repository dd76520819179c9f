"""The portal's page for compat users (``/compat-users/`` on the channel host): the channel's admin
lists them and creates one (user name, password, the customer whose wallet it spends, the API key
whose scopes and rate limits it gets). Kept apart from ``faces/portal/views.py``."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from faces.compat.accounts import create_compat_user
from faces.compat.models import CompatUser
from faces.portal.views import portal_login_required
from faces.wording import error_text
from gateway.models import ApiKey
from kernel.errors import ApplicationError
from tenants.members.models import Role


class CompatUserForm(forms.Form):
    username = forms.CharField(max_length=150, label=gettext_lazy("User name"))
    email = forms.EmailField(label=gettext_lazy("Email"), required=False)
    password = forms.CharField(
        label=gettext_lazy("Password"), widget=forms.PasswordInput(render_value=False), min_length=8, strip=False
    )
    customer = forms.IntegerField(
        label=gettext_lazy("Customer"), min_value=1,
        help_text=gettext_lazy("The customer id whose quota this user spends."),
    )  # fmt: skip
    api_key = forms.ModelChoiceField(
        queryset=ApiKey.objects.none(), label=gettext_lazy("API key"),
        help_text=gettext_lazy("The user acts with this key's scopes and rate limits."),
    )  # fmt: skip

    def __init__(self, *args, channel, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["api_key"].queryset = ApiKey.objects.filter(channel_id=channel.pk, revoked_at__isnull=True)


@portal_login_required(Role.DEVELOPER)
@require_http_methods(["GET", "POST"])
def compat_users(request):
    channel = request.tenant
    form = CompatUserForm(request.POST or None, channel=channel)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                user = create_compat_user(
                    channel=channel,
                    username=data["username"],
                    password=data["password"],
                    customer_id=data["customer"],
                    api_key=data["api_key"],
                    email=data["email"],
                )
            except ApplicationError as exc:
                form.add_error(None, error_text(exc))
                status = 400
            else:
                messages.success(
                    request, _("Compat user “%(name)s” created; it can log in now.") % {"name": user.username}
                )
                return redirect("portal:compat-users")
        else:
            status = 400
    users = CompatUser.objects.order_by("username")
    return render(request, "portal/compat_users.html", {"form": form, "users": users}, status=status)
