"""Sign-in pages shared by the channel portal and the issuer's back office: throttled per account
and per client address (``gateway.ratelimit.check_login_attempt``, the Redis limiter).

Every attempt is charged before the password is checked; once an account (or an address) has used
its attempts, the page answers ``429`` with ``Retry-After`` and a message, and does not look at the
password at all, so the right one is refused too until the wait is over. A successful sign-in gives
the account its attempts back.
"""

from __future__ import annotations

import math

from django.contrib.auth import views as auth_views
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from gateway.ratelimit import check_login_attempt, client_address, client_bucket, forget_login_attempts


def _wait_text(seconds: float) -> str:
    seconds = max(1, math.ceil(seconds))
    if seconds < 90:
        return ngettext("%(n)s second", "%(n)s seconds", seconds) % {"n": seconds}
    minutes = math.ceil(seconds / 60)
    return _("%(n)s minutes") % {"n": minutes}


class ThrottledLoginView(auth_views.LoginView):
    def throttle_realm(self) -> str:
        raise NotImplementedError

    def post(self, request, *args, **kwargs):
        account = request.POST.get("username", "")[:150]
        decision = check_login_attempt(
            realm=self.throttle_realm(), account=account, client=client_bucket(client_address(request))
        )
        if not decision.allowed:
            wait = _wait_text(decision.retry_after)
            message = _(
                "Too many sign-in attempts for this account or from your address. Wait %(wait)s and try "
                "again; if you do not know the password, ask your administrator to reset it."
            ) % {"wait": wait}
            form = self.get_form_class()(request, initial={"username": account})
            response = self.render_to_response(self.get_context_data(form=form, throttled=message))
            response.status_code = 429
            response["Retry-After"] = str(max(1, math.ceil(decision.retry_after)))
            return response
        return super().post(request, *args, **kwargs)

    def form_valid(self, form):
        forget_login_attempts(realm=self.throttle_realm(), account=form.get_user().get_username())
        return super().form_valid(form)
