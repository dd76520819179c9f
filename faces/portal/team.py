"""The portal's team pages: the owner invites members, changes their roles and removes them; anyone
with a one-time link (an invitation or a password reset) chooses a password. Kept apart from
``views.py``; the rules are in ``tenants.members.services``."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from faces.labels import shown_choices
from faces.portal.views import _suspended_page, portal_login_required
from faces.wording import error_text
from kernel.errors import ApplicationError
from tenants.members import services as members
from tenants.members.models import Member, OneTimeLink, Role
from tenants.services import ChannelSuspended, refuse_if_suspended


class InviteForm(forms.Form):
    email = forms.EmailField(label=gettext_lazy("Email"), max_length=150)
    role = forms.ChoiceField(label=gettext_lazy("Role"), choices=shown_choices(Role.choices), initial=Role.DEVELOPER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(label=gettext_lazy("Role"), choices=shown_choices(Role.choices))


class PasswordForm(forms.Form):
    password = forms.CharField(
        widget=forms.PasswordInput, strip=False, min_length=8, label=gettext_lazy("New password")
    )
    password2 = forms.CharField(widget=forms.PasswordInput, strip=False, label=gettext_lazy("New password again"))

    def clean(self):
        data = super().clean()
        if data.get("password") and data.get("password") != data.get("password2"):
            raise forms.ValidationError(_("The two passwords differ."))
        return data


class ResetRequestForm(forms.Form):
    email = forms.EmailField(label=gettext_lazy("Email"), max_length=150)


def link_base(request) -> str:
    """This portal's address as the browser reached it (links in mails point back here)."""
    return f"{request.scheme}://{request.get_host()}"


@portal_login_required(Role.OWNER)
@require_http_methods(["GET", "POST"])
def team(request):
    form = InviteForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                member = members.invite_member(
                    **form.cleaned_data, invited_by=request.user, link_base=link_base(request),
                    channel_name=request.tenant.name,
                )  # fmt: skip
            except ApplicationError as exc:
                form.add_error(None, error_text(exc))
                status = exc.http_status
            else:
                messages.success(
                    request,
                    _("%(email)s is invited as %(role)s.")
                    % {"email": member.email, "role": _(member.get_role_display()).lower()},
                )
                return redirect("portal:team")
        else:
            status = 400
    rows = Member.objects.filter(removed_at__isnull=True).select_related("user").order_by("email")
    context = {"form": form, "members": rows, "roles": Role.choices}
    return render(request, "portal/team.html", context, status=status)


@portal_login_required(Role.OWNER)
@require_POST
def member_role(request, member_id: int):
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose one of the roles."))
        return redirect("portal:team")
    try:
        member = members.set_member_role(member_id=member_id, role=form.cleaned_data["role"], actor=request.user)
    except Member.DoesNotExist:
        return render(request, "portal/not_found.html", {"what": _("member")}, status=404)
    except ApplicationError as exc:
        messages.error(request, error_text(exc))
    else:
        now = {"email": member.email, "role": _(member.get_role_display()).lower()}
        messages.success(request, _("%(email)s is now %(role)s.") % now)
    return redirect("portal:team")


@portal_login_required(Role.OWNER)
@require_POST
def member_remove(request, member_id: int):
    try:
        member = members.remove_member(member_id=member_id, actor=request.user)
    except Member.DoesNotExist:
        return render(request, "portal/not_found.html", {"what": _("member")}, status=404)
    except ApplicationError as exc:
        messages.error(request, error_text(exc))
    else:
        messages.success(request, _("%(email)s is removed; their sessions have ended.") % {"email": member.email})
    return redirect("portal:team")


def _one_time_link(request, token: str, purpose: str, template: str):
    try:
        refuse_if_suspended(request.tenant)
    except ChannelSuspended as exc:
        return _suspended_page(request, exc)
    form = PasswordForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                members.use_link(token=token, purpose=purpose, password=form.cleaned_data["password"])
            except ApplicationError as exc:
                form.add_error(None, error_text(exc))
                status = exc.http_status
            else:
                messages.success(request, _("Your password is set. Sign in with your e-mail address and it."))
                return redirect("portal:login")
        else:
            status = 400
    elif not members.link_is_valid(token=token, purpose=purpose):
        status = 400
        form = None
    response = render(request, template, {"form": form}, status=status)
    # The token is in the address: it never leaves this site in a Referer ("no-referrer" would make
    # the browser send "Origin: null" with the form, which the CSRF check rightly refuses).
    response["Referrer-Policy"] = "same-origin"
    return response


@never_cache
@require_http_methods(["GET", "POST"])
def join(request, token: str):
    return _one_time_link(request, token, OneTimeLink.Purpose.INVITATION, "portal/join.html")


@never_cache
@require_http_methods(["GET", "POST"])
def reset(request, token: str):
    return _one_time_link(request, token, OneTimeLink.Purpose.PASSWORD_RESET, "portal/reset.html")


@require_http_methods(["GET", "POST"])
def reset_request(request):
    try:
        refuse_if_suspended(request.tenant)
    except ChannelSuspended as exc:
        return _suspended_page(request, exc)
    form = ResetRequestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        members.request_password_reset(
            email=form.cleaned_data["email"], link_base=link_base(request), channel_name=request.tenant.name
        )
        messages.success(request, _("If this address belongs to a member, a reset link is on its way."))
        return redirect("portal:login")
    return render(request, "portal/reset_request.html", {"form": form}, status=400 if form.errors else 200)
