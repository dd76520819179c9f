"""Template filters shared by every page: numbers and rupiah as Indonesian readers write them.

``{% load ui %}`` then ``{{ units|num }}`` -> ``2.500.000`` and ``{{ amount|rupiah }}`` -> ``Rp 2.500.000``
(dots between thousands, whatever the interface language)."""

from __future__ import annotations

from django import template

from faces.charts import format_number

register = template.Library()


@register.filter
def num(value) -> str:
    try:
        number = round(float(value))
    except (TypeError, ValueError):
        return "" if value is None else str(value)
    return format_number(number)


@register.filter
def rupiah(value) -> str:
    text = num(value)
    return f"Rp\u00a0{text}" if text else ""


@register.simple_tag
def brownout_pauses(channel) -> list:
    """The pauses of new work in force for ``channel`` (brownout; the per-process copy, no query)."""
    from stamping.brownout.selectors import pauses_for

    if channel is None or getattr(channel, "is_issuer", True):
        return []
    return pauses_for(channel.pk)
