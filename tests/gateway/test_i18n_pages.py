"""The channel portal and the issuer's back office stay translated: no template of theirs shows text
outside the translation tags, and their pages come out in Indonesian for a person who chose ``id``.

How the template check works: each template is parsed with Django's own engine; the text between its
tags and variables (its ``TextNode`` objects, inside every block, ``if`` and ``for``) is put together
with a marker where any other node stood, then read as HTML. Whatever a person sees or hears (text
between elements, and the ``title``, ``alt``, ``placeholder``, ``aria-label`` and ``data-confirm``
attributes) must contain no word: numbers, punctuation, the markers, the content of ``<code>`` (code
is not a language) and the few words of :data:`ALLOWED` are all it may hold. Literal strings handed to
``{% include ... with x="..." %}`` and to the ``default`` filter are checked too (they are shown).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.template import engines
from django.template.base import TextNode, VariableNode
from django.template.loader_tags import BlockNode, IncludeNode
from django.test import Client
from django_tenants.utils import schema_context

# Words that are the same in every language of the product: names of formats and protocols, the
# currency, the brand, and the languages' own names in the language switch.
ALLOWED = frozenset({"API", "CSV", "PDF", "HTTP", "JSON", "Rp", "pt", "e-Meterai", "Bahasa", "Indonesia", "English"})
SHOWN_ATTRIBUTES = frozenset({"title", "alt", "placeholder", "aria-label", "data-confirm"})
NOT_LANGUAGE = frozenset({"code", "script", "style"})
MARK = "\x1f"
# What is never shown: blocks that fill an attribute (a CSS class, a link) and ``include`` arguments
# that name a URL or a navigation key.
NOT_SHOWN_BLOCKS = frozenset({"body_class", "brand_href"})
NOT_SHOWN_ARGUMENTS = frozenset({"name", "current"})
CHECKED = ("portal", "issuer/backoffice", "includes")

TEMPLATES = Path(settings.BASE_DIR) / "templates"


def checked_templates() -> list[str]:
    return sorted(str(p.relative_to(TEMPLATES)) for folder in CHECKED for p in (TEMPLATES / folder).rglob("*.html"))


def _skeleton(nodelist, literals: list[str]) -> str:
    """The template's own text with ``MARK`` wherever a tag or variable stood (their children included
    in place), and the literal strings it shows through ``include``/``with`` and ``default``."""
    parts = []
    for node in nodelist:
        if isinstance(node, TextNode):
            parts.append(node.s)
            continue
        parts.append(MARK)
        if isinstance(node, BlockNode) and node.name in NOT_SHOWN_BLOCKS:
            continue
        if isinstance(node, VariableNode):
            expression = node.filter_expression
            if isinstance(expression.var, str):
                literals.append(expression.var)
            for func, args in expression.filters:
                if func.__name__ in ("default", "default_if_none"):
                    literals.extend(value for lookup, value in args if not lookup and isinstance(value, str))
        if isinstance(node, IncludeNode) or hasattr(node, "extra_context"):
            for key, expression in getattr(node, "extra_context", {}).items():
                if key not in NOT_SHOWN_ARGUMENTS and isinstance(expression.var, str):
                    literals.append(expression.var)
        for name in node.child_nodelists:
            child = getattr(node, name, None)
            if child:
                parts.append(_skeleton(child, literals))
                parts.append(MARK)
    return "".join(parts)


class _Shown(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.texts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag, attrs):
        if tag in NOT_LANGUAGE:
            self.hidden += 1
        self.texts.extend(value for name, value in attrs if name in SHOWN_ATTRIBUTES and value)

    def handle_startendtag(self, tag, attrs):
        self.texts.extend(value for name, value in attrs if name in SHOWN_ATTRIBUTES and value)

    def handle_endtag(self, tag):
        if tag in NOT_LANGUAGE and self.hidden:
            self.hidden -= 1

    def handle_data(self, data):
        if not self.hidden:
            self.texts.append(data)


def words(text: str) -> list[str]:
    """The words of ``text``: at least two letters and no digit (numbers, codes and serials are not words)."""
    found = re.findall(r"[\w'’-]+", text.replace(MARK, " "))
    return [
        w for w in found
        if sum(c.isalpha() for c in w) >= 2 and not any(c.isdigit() or c == "_" for c in w) and w not in ALLOWED
    ]  # fmt: skip


def untranslated_text(name: str) -> list[str]:
    template = engines["django"].get_template(name).template
    literals: list[str] = []
    parser = _Shown()
    parser.feed(_skeleton(template.nodelist, literals))
    parser.close()
    shown = [t for t in parser.texts if words(t)] + [f"(literal) {t}" for t in literals if words(t)]
    return [" ".join(t.split()) for t in shown]


def test_the_checker_finds_text_outside_the_translation_tags(tmp_path, settings) -> None:
    from django.template import Engine

    engine = Engine(libraries={"i18n": "django.templatetags.i18n"}, builtins=["django.templatetags.i18n"])
    good = engine.from_string(
        '{% load i18n %}<p title="{% translate "Hello" %}">{% translate "Stock" %} 1.000 &middot; <code>GET /x</code>'
        "{% if a %}{% blocktranslate %}{{ n }} units{% endblocktranslate %}{% endif %} PDF</p>"
    )
    bad = engine.from_string(
        '{% load i18n %}<p aria-label="Filter by {{ x }}">{% if a %}No stamps yet.{% endif %}'
        '{{ y|default:"never" }}{% include "z.html" with heading="Choose one" %}</p>'
    )

    def found(template):
        literals: list[str] = []
        parser = _Shown()
        parser.feed(_skeleton(template.nodelist, literals))
        return [t for t in parser.texts if words(t)] + [t for t in literals if words(t)]

    assert found(good) == []
    assert [" ".join(t.replace(MARK, " ").split()) for t in found(bad)] == [
        "Filter by", "No stamps yet.", "never", "Choose one",
    ]  # fmt: skip


@pytest.mark.parametrize("name", checked_templates())
def test_no_portal_or_back_office_template_shows_untranslated_text(name) -> None:
    assert untranslated_text(name) == [], (
        f"{name} shows text outside {{% translate %}}/{{% blocktranslate %}}: wrap it, run "
        "`manage.py i18n_extract` and translate it in locale/id/LC_MESSAGES/django.po"
    )


# ---------------------------------------------------------------- pages in Indonesian


def _portal(language: str, username: str = "admin") -> Client:
    from django.contrib.auth import get_user_model

    client = Client(HTTP_HOST="alpha.test")
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    with schema_context("alpha"):
        client.force_login(get_user_model().objects.get(username=username))
    return client


def _office(language: str) -> Client:
    from django.contrib.auth import get_user_model

    from tests.staff_helpers import make_staff, office_client

    client = office_client(get_user_model().objects.filter(username="bahasa").first() or make_staff("bahasa"))
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    return client


PORTAL_PAGES = {
    "/": ["Dasbor", "Tersedia untuk dijual", "Meterai terbaru", "Harga eceran", "48 jam terakhir, per jam"],
    "/customers/": ["Pelanggan", "Nama, referensi, atau e-mail", "Tersedia", "Ditahan", "Terpakai"],
    "/orders/": ["Pesanan", "Saring menurut status", "Menunggu pembayaran", "Semua", "Dibuat", "Dibayar"],
    "/stamps/": ["Riwayat meterai", "Semua meterai", "Dalam antrean", "Dokumen", "Nomor seri", "Selesai"],
    "/keys/": ["Buat key", "Cakupan", "membaca pelanggan, pesanan, meterai, dan saldo", "Beri setiap key"],
    "/webhooks/": ["Tambah endpoint", "URL endpoint", "Semua event", "Pengiriman"],
    "/topups/": ["Isi ulang stok", "Minta unit", "Bukti transfer", "Setiap unit bernilai bea meterai Rp 10.000."],
    "/statements/": ["Laporan", "Unit yang dialokasikan penerbit", "Bea meterai terutang", "Unit terjual per hari"],
    "/team/": ["Undang anggota", "Kirim undangan", "Peran", "Anggota", "Pengembang"],
}
OFFICE_PAGES = {
    "/backoffice/": ["Sekilas semua kanal", "Stok per kanal", "Meterai per menit", "Satu jam terakhir"],
    "/backoffice/channels/": ["Kanal baru", "Jatah pembubuhan", "Keadaan"],
    "/backoffice/channels/new": ["Buat kanal", "Harga: biaya layanan per unit (Rp)", "E-mail pemilik"],
    "/backoffice/deposits/": ["Tertunda", "Catat setoran", "Pilih kanal", "Referensi tagihan", "Semua setoran"],
    "/backoffice/reconciliation/": ["Rekonsiliasi", "Jalankan sekarang"],
    "/backoffice/settlement/": [
        "Laporan penyelesaian",
        "Sampai (termasuk)",
        "Cara menghitung bea.",
        "Bea meterai terutang =",
    ],
    "/backoffice/serials/": ["Pencarian nomor seri", "Cari"],
    "/backoffice/incidents/": [
        "Layanan terganggu",
        "Catatan insiden",
        "Yang perlu diketahui pengguna",
        "Terbitkan di halaman status",
    ],
    "/backoffice/brownout/": ["Jeda pekerjaan baru", "Pelanggan baru", "Semua kanal", "Sedang berlaku"],
    "/backoffice/audit/": ["Log audit", "Saring menurut tindakan", "Pelaku"],
}
STILL_ENGLISH = ["Filter by", "No stamps yet", "Available to sell", "Create a key", "Record a deposit", "(optional)"]


def _shown_in(html: str, expected: list[str]) -> None:
    assert '<html lang="id">' in html
    missing = [text for text in expected if text not in html]
    assert missing == [], f"not in the Indonesian page: {missing}"
    assert [text for text in STILL_ENGLISH if text in html] == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("face", "path"), [("portal", path) for path in PORTAL_PAGES] + [("office", path) for path in OFFICE_PAGES]
)
def test_portal_and_back_office_pages_are_in_indonesian_for_a_person_who_chose_it(channels, face, path) -> None:
    signed_in, pages = (_portal, PORTAL_PAGES) if face == "portal" else (_office, OFFICE_PAGES)
    response = signed_in("id").get(path)
    assert response.status_code == 200 and response["Content-Language"] == "id"
    _shown_in(response.content.decode(), pages[path])


@pytest.mark.django_db
def test_the_same_pages_stay_in_english_by_default(channels) -> None:
    dashboard = _portal("en").get("/").content.decode()
    assert "Available to sell" in dashboard and "Tersedia untuk dijual" not in dashboard
    connection.set_schema_to_public()  # the channel host's request left the connection in its schema
    deposits = _office("en").get("/backoffice/deposits/").content.decode()
    assert "Record a deposit" in deposits and "Catat setoran" not in deposits


@pytest.mark.django_db
def test_sign_in_and_second_factor_pages_and_their_refusals_are_in_indonesian() -> None:
    from tests.staff_helpers import make_staff

    make_staff("kode", password="staff-pass-123")  # noqa: S106 - a test password
    client = Client(HTTP_HOST="issuer.test", HTTP_ACCEPT_LANGUAGE="id-ID,id;q=0.9")
    login = client.get("/backoffice/login/").content.decode()
    assert "Masuk ke kantor belakang" in login and "Nama pengguna" in login
    signed_in = client.post("/backoffice/login/", {"username": "kode", "password": "staff-pass-123"})
    assert signed_in.status_code == 302
    wrong = client.post(signed_in["Location"], {"token": "000000"})
    html = wrong.content.decode()
    assert wrong.status_code == 400
    assert "Masukkan kode sekali pakai Anda" in html and "Kode itu tidak sah." in html


@pytest.mark.django_db
def test_portal_messages_and_form_errors_are_in_indonesian(channels) -> None:
    client = _portal("id")
    refused = client.post("/team/", {"email": "bukan-email", "role": "developer"})
    assert refused.status_code == 400
    assert "Masukkan alamat email dengan format yang benar." in refused.content.decode()  # Django's catalogue
    created = client.post("/keys/", {"name": "Aplikasi", "scopes": ["read"]}, follow=True).content.decode()
    assert "Salin key baru Anda sekarang" in created and "Nama “Aplikasi” &middot; cakupan read" in created
    statement = client.get("/statements/", {"month": "2026-13"})
    assert statement.status_code == 400 and statement.json()["title"] == "Bulan tidak sah"


def test_every_label_of_the_choices_the_pages_show_is_in_the_catalogue() -> None:
    """The pages translate the domains' choice labels (``faces.labels``): a new status, state, role,
    severity or brownout class whose label is missing there would stay English."""
    from billing.ledger.models import Deposit, TopUpRequest
    from billing.retail.models import Order
    from faces.labels import LABELS
    from issuer.models import IncidentNote, Serial
    from outbox.models import WebhookDelivery
    from stamping.brownout.models import Brownout
    from stamping.models import StampJob
    from tenants.members.models import Role
    from tenants.models import Onboarding

    shown = (
        StampJob.Status, Order.Status, WebhookDelivery.Status, Deposit.Status, TopUpRequest.State,
        IncidentNote.Severity, Onboarding.State, Role, Brownout.Kind, Serial.Status,
    )  # fmt: skip
    missing = {str(label) for choices in shown for label in choices.labels} - set(LABELS)
    assert missing == set()
    from django.utils import translation

    with translation.override("id"):
        assert translation.gettext(Order.Status.AWAITING_PAYMENT.label) == "Menunggu pembayaran"


@pytest.mark.django_db
def test_a_refusal_on_a_back_office_page_is_said_in_indonesian() -> None:
    html = _office("id").get("/backoffice/serials/", {"serial": "X" * 22}).content.decode()
    assert "Nomor seri tidak sah" in html and "is not an e-Meterai serial" not in html
    english = _office("en").get("/backoffice/serials/", {"serial": "X" * 22}).content.decode()
    assert "Not a valid serial number" in english and "is not an e-Meterai serial" in english


@pytest.mark.django_db
def test_a_throttled_sign_in_is_explained_in_indonesian(settings) -> None:
    import uuid

    from gateway import ratelimit

    settings.RATE_LIMIT_NAMESPACE = f"login-{uuid.uuid4().hex}"
    settings.LOGIN_THROTTLES = ((1, 60), (8, 60))
    ratelimit.reset_fallback_state()
    client = Client(HTTP_HOST="alpha.test", HTTP_ACCEPT_LANGUAGE="id")
    client.post("/login/", {"username": "admin", "password": "salah"})
    refused = client.post("/login/", {"username": "admin", "password": "salah"})
    assert refused.status_code == 429
    html = refused.content.decode()
    assert "Terlalu banyak percobaan masuk untuk akun ini" in html and " detik, lalu coba lagi" in html


@pytest.mark.django_db
def test_the_statement_pdf_is_written_in_the_language_of_the_person_who_asked(channels) -> None:
    from tests.billing.test_statements import _pdf_text

    indonesian = _pdf_text(_portal("id").get("/statements/2026-01.pdf").content)
    assert "Unit terjual per hari" in indonesian and "Bea meterai terutang kepada kas negara" in indonesian
    english = _pdf_text(_portal("en").get("/statements/2026-01.pdf").content)
    assert "Units sold per day" in english and "Unit terjual" not in english
