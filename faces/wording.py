"""Sentences more than one face shows, in the language of the request (``gettext`` at call time)."""

from __future__ import annotations

from django.utils import translation
from django.utils.translation import gettext as _

from billing.retail.models import FACE_VALUE_RUPIAH
from faces.charts import format_number
from kernel.errors import ApplicationError


def duty_basis() -> str:
    """How the stamp duty owed is counted (``billing.settlement.DUTY_BASIS``, said in the page's language)."""
    return _(
        "Stamp duty due = units used by completed stamps x Rp %(face_value)s. Units sold but not yet used can "
        "still be refunded, so they are not counted until they are used."
    ) % {"face_value": format_number(FACE_VALUE_RUPIAH)}


def said(exc: ApplicationError) -> tuple[str, str]:
    """``(title, detail)`` of a refused action in the page's language: in English the error's title and its
    own message (which names the specifics); in another language the catalogue's title and what to do
    (as ``gateway.http.problems.localized`` does for the APIs), the message when the catalogue lacks them."""
    if (translation.get_language() or "en").startswith("en"):
        return exc.title, exc.message
    title = translation.gettext(exc.title) if exc.title else exc.title
    what_to_do = translation.gettext(exc.what_to_do) if exc.what_to_do else ""
    return title, what_to_do if what_to_do and what_to_do != exc.what_to_do else exc.message


def error_text(exc: ApplicationError) -> str:
    """A refused action as one sentence for a form or a message: the error's message in English, its
    translated title and what to do in another language."""
    title, detail = said(exc)
    if detail == exc.message:
        return exc.message
    return f"{title}. {detail}" if title else detail
