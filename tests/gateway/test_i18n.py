"""Bahasa Indonesia: the catalogues are complete and current, pages and problems follow the language the
person chose (cookie, then ``Accept-Language``), the ``code`` of a problem never changes."""

from __future__ import annotations

from pathlib import Path

import polib
import pytest
from django.conf import settings
from django.template.loader import get_template
from django.utils import translation

from gateway import i18n
from issuer.serials import new_serial

pytestmark = pytest.mark.django_db


# ---------------------------------------------------------------- the catalogues


def test_every_template_renders_under_id_with_every_message_translated() -> None:
    """Each template compiles under ``id`` and every message in it has an Indonesian translation: a new
    ``{% translate %}`` without one fails here (run ``manage.py i18n_extract`` and translate)."""
    base = Path(settings.BASE_DIR)
    templates = i18n.template_files(base)
    assert len(templates) > 20
    missing = {}
    with translation.override("id"):
        for path in templates:
            get_template(str(path.relative_to(base / "templates")))  # parses: tags and filters exist
            left = i18n.untranslated("id", i18n.template_messages(path))
            if left:
                missing[str(path.relative_to(base))] = [m.msgid for m in left]
    assert not missing, f"untranslated in Indonesian: {missing}"


def test_the_catalogue_is_current_and_complete() -> None:
    """The .po holds exactly what the code says (templates, gettext calls, the error catalogue), all of it
    translated; the compiled catalogue is the one Django uses."""
    extracted = i18n.extract()
    po = polib.pofile(str(i18n.po_path("id")))
    in_po = {(e.msgctxt or "", e.msgid) for e in po if not e.obsolete}
    in_code = {(m.context, m.msgid) for m in extracted.messages}
    assert in_code - in_po == set(), "new messages: run `manage.py i18n_extract` and translate them"
    assert in_po - in_code == set(), "messages no longer used: run `manage.py i18n_extract`"
    assert i18n.untranslated("id", extracted.messages) == []
    with translation.override("id"):
        assert translation.gettext("Verify an e-Meterai") == "Verifikasi e-Meterai"


def test_extraction_reads_templates_and_python_and_keeps_translations(tmp_path, monkeypatch) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "page.html").write_text(
        '{% load i18n %}<h1>{% translate "Buy units" %}</h1>'
        "{% blocktranslate with n=order.units %}You bought {{ n }} units.{% endblocktranslate %}"
        '{% translate "May" context "month" %}',
        encoding="utf-8",
    )
    (tmp_path / "faces").mkdir()
    (tmp_path / "faces" / "views.py").write_text(
        'from django.utils.translation import gettext as _\nMESSAGE = _("Signed in")\nOTHER = obj.gettext("no")\n',
        encoding="utf-8",
    )
    monkeypatch.setattr(i18n, "PYTHON_PACKAGES", ("faces",))
    monkeypatch.setattr(i18n, "error_messages", lambda: iter(()))
    found = {(m.context, m.msgid) for m in i18n.extract(tmp_path).messages}
    assert found == {("", "Buy units"), ("", "You bought %(n)s units."), ("month", "May"), ("", "Signed in")}

    i18n.merge("id", i18n.extract(tmp_path), base=tmp_path)
    po = polib.pofile(str(i18n.po_path("id", tmp_path)))
    po.find("Buy units").msgstr = "Beli unit"
    po.save()
    (tmp_path / "templates" / "page.html").write_text(
        '{% load i18n %}{% translate "Buy units" %}{% translate "Pay" %}', encoding="utf-8"
    )
    total, untranslated = i18n.merge("id", i18n.extract(tmp_path), base=tmp_path)
    po = polib.pofile(str(i18n.po_path("id", tmp_path)))
    assert (total, untranslated) == (3, 2)  # Buy units (kept), Pay (new), Signed in
    assert po.find("Buy units").msgstr == "Beli unit" and po.find("You bought %(n)s units.") is None


def test_a_template_indented_unevenly_still_gives_all_its_messages(tmp_path) -> None:
    """The calls ``templatize`` makes of a template are read by Python's tokenizer, which must not see the
    template's indentation (an unindent it cannot match once made it skip every message of a page)."""
    page = tmp_path / "page.html"
    page.write_text(
        '{% load i18n %}\n<section>\n    <h2>{% translate "Keys" %}</h2>\n  </section>\n'
        "{% blocktranslate with n=k.name %}Revoke key {{ n }}{% endblocktranslate %}\n",
        encoding="utf-8",
    )
    assert {m.msgid for m in i18n.template_messages(page)} == {"Keys", "Revoke key %(n)s"}


# ---------------------------------------------------------------- pages


def test_public_pages_follow_accept_language(client_for) -> None:
    client = client_for(None)
    page = client.get("/verify", HTTP_ACCEPT_LANGUAGE="id-ID,id;q=0.9,en;q=0.5")
    html = page.content.decode()
    assert page["Content-Language"] == "id"
    assert '<html lang="id">' in html and "Verifikasi e-Meterai" in html and "Periksa nomor seri" in html
    english = client.get("/verify", HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")
    assert english["Content-Language"] == "en" and "Verify an e-Meterai" in english.content.decode()


def test_the_language_switch_persists_and_wins_over_the_browser(client_for) -> None:
    client = client_for(None)
    switched = client.get("/lang/id", {"next": "/status"})
    assert switched.status_code == 302 and switched["Location"] == "/status"
    cookie = switched.cookies[settings.LANGUAGE_COOKIE_NAME]
    assert cookie.value == "id" and int(cookie["max-age"]) >= 365 * 24 * 3600
    page = client.get("/verify", HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")  # the cookie wins
    assert "Verifikasi e-Meterai" in page.content.decode()
    back = client.get("/lang/en", {"next": "/verify"})
    assert back.cookies[settings.LANGUAGE_COOKIE_NAME].value == "en"
    assert "Verify an e-Meterai" in client.get("/verify").content.decode()


def test_the_language_switch_goes_back_only_to_this_site(client_for) -> None:
    client = client_for(None)
    assert client.get("/lang/id", {"next": "https://evil.example/x"})["Location"] == "/"
    assert client.get("/lang/xx").status_code == 404


def test_the_end_users_pages_default_to_indonesian() -> None:
    from django.test import RequestFactory

    factory = RequestFactory()
    assert i18n.language_for(factory.get("/shop/")) == "id"
    assert i18n.language_for(factory.get("/shop/", HTTP_ACCEPT_LANGUAGE="en-GB")) == "en"
    assert i18n.language_for(factory.get("/api/v1/customers")) == "en"
    assert i18n.language_for(factory.get("/api/v1/customers", HTTP_ACCEPT_LANGUAGE="fr, id;q=0.5")) == "id"


# ---------------------------------------------------------------- problems


def test_a_problem_is_in_indonesian_for_accept_language_id_with_the_same_code(client_for) -> None:
    client = client_for(None)
    serial = new_serial()
    english = client.get(f"/api/v1/verify/{serial}").json()
    indonesian_response = client.get(f"/api/v1/verify/{serial}", HTTP_ACCEPT_LANGUAGE="id")
    indonesian = indonesian_response.json()
    assert indonesian_response["Content-Type"] == "application/problem+json"
    assert indonesian_response["Content-Language"] == "id"
    assert english["code"] == indonesian["code"] == "serial_not_found"
    assert english["title"] == "Unknown serial number"
    assert indonesian["title"] == "Nomor seri tidak dikenal"
    assert indonesian["detail"].startswith("Penerbit ini tidak pernah mencatat nomor seri itu")
    assert english["detail"] != indonesian["detail"]


def test_a_keyed_storefront_problem_is_translated_too(client_for) -> None:
    response = client_for("alpha").get("/api/v1/customers/cus_nobody", HTTP_ACCEPT_LANGUAGE="id-ID")
    body = response.json()
    assert response.status_code == 404 and body["code"] in ("customer_not_found", "not_found")
    assert body["title"] in ("Pelanggan tidak ditemukan", "Tidak ditemukan")


def test_the_openapi_documents_say_problems_follow_accept_language() -> None:
    from gateway.http.schema import IssuerSchemaGenerator, StorefrontSchemaGenerator, schema_for

    for generator in (StorefrontSchemaGenerator, IssuerSchemaGenerator):
        schema = schema_for(generator)
        assert "Accept-Language: id" in schema["info"]["description"]
        assert "Accept-Language" in schema["components"]["schemas"]["Problem"]["description"]


def test_the_status_pages_shared_figures_are_shown_in_each_visitors_language(client_for) -> None:
    """The status page's components and waits are worked out once and shared by every visitor (cached):
    each visitor still reads them in their own language."""
    from django.core.cache import cache

    from faces.backoffice.selectors import STATUS_CACHE_KEY

    cache.delete(STATUS_CACHE_KEY)
    client = client_for(None)
    english = client.get("/status", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Database (PostgreSQL)" in english and "Stamping workers" in english
    indonesian = client.get("/status", HTTP_ACCEPT_LANGUAGE="id").content.decode()  # the same cached figures
    assert "Basis data (PostgreSQL)" in indonesian and "Pekerja pembubuhan meterai" in indonesian
    assert "Database (PostgreSQL)" not in indonesian and "answered in" not in indonesian
    assert "tanpa antre" in indonesian or "kurang dari semenit" in indonesian or "sekitar" in indonesian
