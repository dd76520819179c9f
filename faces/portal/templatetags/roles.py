"""``{% load portal_roles %}`` then ``{% if request|may_open:"portal:orders" %}``: whether the signed-in
member's role opens that page, read from the view's own ``portal_login_required`` roles (the nav
shows only what the role opens; the check itself stays in the decorator)."""

from __future__ import annotations

from django import template
from django.urls import NoReverseMatch, resolve, reverse

register = template.Library()


@register.filter
def may_open(request, url_name: str) -> bool:
    member = getattr(request, "member", None)
    if member is None:
        return False
    try:
        roles = getattr(resolve(reverse(url_name)).func, "portal_roles", None)
    except NoReverseMatch:
        return False
    return roles is None or member.role == "owner" or member.role in roles
