"""Languages: which one a request is answered in, and the message catalogues under ``locale/``.

A request is answered in the language of the ``django_language`` cookie (set by the language switch,
``/lang/<code>``), else the first supported one its ``Accept-Language`` names, else the default of
its pages: Indonesian for the end user's storefront (``/shop/``), English elsewhere (the APIs, the
portals). The ``code`` of a problem never changes with the language; its ``title`` and ``detail`` do.

The catalogues are ``locale/<lang>/LC_MESSAGES/django.po`` (committed) and their compiled ``.mo``
(never committed: made by ``manage.py i18n_compile`` at install and test time, with ``polib`` so that
no GNU gettext is needed). ``manage.py i18n_extract`` finds every message of the templates
(``{% translate %}``, ``{% blocktranslate %}``, ``_()``), of the Python code (``gettext`` and friends)
and of the error catalogue (each ``ApplicationError``'s ``title`` and ``what_to_do``) and merges them
into the ``.po`` files, keeping the translations already there. See docs/translating.md.
"""

from __future__ import annotations

import ast
import io
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.middleware.locale import LocaleMiddleware
from django.utils import translation
from django.utils.translation import trans_real

# Paths whose pages are the end user's: Indonesian unless the person asked for another language.
END_USER_PREFIXES = ("/shop/",)
END_USER_LANGUAGE = "id"

_CALLS = {
    "_": ("msgid",),
    "gettext": ("msgid",),
    "gettext_lazy": ("msgid",),
    "gettext_noop": ("msgid",),
    "pgettext": ("context", "msgid"),
    "pgettext_lazy": ("context", "msgid"),
    "ngettext": ("msgid", "plural"),
    "ngettext_lazy": ("msgid", "plural"),
}
# what is scanned, relative to BASE_DIR (the virtualenv, tests and data are not)
PYTHON_PACKAGES = ("kernel", "gateway", "faces", "stamping", "outbox", "tenants", "issuer", "billing", "staff")


def language_for(request) -> str:
    """The language ``request`` is answered in: its cookie, its ``Accept-Language``, its pages' default."""
    supported = dict(settings.LANGUAGES)
    chosen = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME)
    if chosen in supported:
        return chosen
    for accepted, _quality in trans_real.parse_accept_lang_header(request.META.get("HTTP_ACCEPT_LANGUAGE", "")):
        if accepted == "*":
            break
        try:
            return translation.get_supported_language_variant(accepted)
        except LookupError:
            continue
    return END_USER_LANGUAGE if request.path.startswith(END_USER_PREFIXES) else settings.LANGUAGE_CODE


class GatewayLocaleMiddleware(LocaleMiddleware):
    """Django's ``LocaleMiddleware`` without URL prefixes, with the end user's default (see above)."""

    def process_request(self, request):
        language = language_for(request)
        translation.activate(language)
        request.LANGUAGE_CODE = translation.get_language()


# ---------------------------------------------------------------- extraction


@dataclass(frozen=True, order=True)
class Message:
    context: str
    msgid: str
    plural: str = ""


@dataclass
class Catalogue:
    messages: dict[Message, set[str]] = field(default_factory=dict)

    def add(self, message: Message, where: str) -> None:
        if message.msgid:
            self.messages.setdefault(message, set()).add(where)


def _calls(source: str):
    """``(name, [string arguments], line)`` for every gettext-like call in Python-ish ``source``: the
    arguments that are not plain string literals end the list."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return
    for i, tok in enumerate(tokens[:-1]):
        if tok.type != tokenize.NAME or tok.string not in _CALLS:
            continue
        if i and tokens[i - 1].type == tokenize.OP and tokens[i - 1].string == ".":
            continue  # obj.gettext(...) is not ours
        if tokens[i + 1].string != "(":
            continue
        args: list[str] = []
        parts: list[str] = []
        depth = 0
        for t in tokens[i + 2 :]:
            if t.type == tokenize.OP and t.string in "([{":
                depth += 1
            elif t.type == tokenize.OP and t.string in ")]}":
                if depth == 0:
                    break
                depth -= 1
            if depth == 0 and t.type == tokenize.OP and t.string == ",":
                if not _literal(parts, args):
                    break
                parts = []
                continue
            if t.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT):
                parts.append(t.string)
        else:
            continue
        _literal(parts, args)
        yield tok.string, args, tok.start[0]


def _literal(parts: list[str], args: list[str]) -> bool:
    try:
        value = ast.literal_eval(" ".join(parts)) if parts else None
    except (ValueError, SyntaxError):
        return False
    if not isinstance(value, str):
        return False
    args.append(value)
    return True


def _add_calls(catalogue: Catalogue, source: str, where: str) -> None:
    for name, args, line in _calls(source):
        roles = _CALLS[name]
        if len(args) < len(roles):
            continue
        values = dict(zip(roles, args, strict=False))
        catalogue.add(Message(values.get("context", ""), values["msgid"], values.get("plural", "")), f"{where}:{line}")


def _templatized(text: str, origin: str) -> str:
    """A template as the gettext calls Django's ``templatize`` makes of it, each line without its leading
    blanks: the template's own indentation means nothing to the tokenizer that reads the calls, and an
    indentation it cannot follow would otherwise end the reading of the whole file (every message lost)."""
    from django.utils.translation.template import templatize

    return "\n".join(line.lstrip() for line in templatize(text, origin=origin).splitlines())


def template_files(base: Path) -> list[Path]:
    return sorted((base / "templates").rglob("*.html"))


def extract(base: Path | None = None) -> Catalogue:
    """Every translatable message of the project's templates, Python code and error catalogue."""
    base = Path(base or settings.BASE_DIR)
    catalogue = Catalogue()
    for path in template_files(base):
        text = path.read_text(encoding="utf-8")
        _add_calls(catalogue, _templatized(text, str(path)), str(path.relative_to(base)))
    for package in PYTHON_PACKAGES:
        for path in sorted((base / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            _add_calls(catalogue, path.read_text(encoding="utf-8"), str(path.relative_to(base)))
    for message, where in error_messages():
        catalogue.add(message, where)
    return catalogue


def error_messages():
    """The ``title`` and ``what_to_do`` of every error of the catalogue: what a problem says in Indonesian."""
    import importlib

    from gateway.http.schema import error_classes

    base = Path(settings.BASE_DIR)
    for package in PYTHON_PACKAGES:  # every errors module, so that the list does not depend on what ran before
        for path in sorted((base / package).rglob("errors.py")):
            importlib.import_module(".".join(path.relative_to(base).with_suffix("").parts))
    for urlconf in (settings.ROOT_URLCONF, settings.PUBLIC_SCHEMA_URLCONF):  # and the errors the views' modules define
        importlib.import_module(urlconf)
    for cls in error_classes():
        where = f"{cls.__module__}.{cls.__name__}"
        yield Message("", cls.title), where
        yield Message("", cls.what_to_do), where


def template_messages(path: Path) -> set[Message]:
    catalogue = Catalogue()
    _add_calls(catalogue, _templatized(path.read_text(encoding="utf-8"), str(path)), str(path))
    return set(catalogue.messages)


# ---------------------------------------------------------------- .po files


def po_path(language: str, base: Path | None = None) -> Path:
    return Path(base or settings.BASE_DIR) / "locale" / language / "LC_MESSAGES" / "django.po"


def merge(language: str, catalogue: Catalogue, base: Path | None = None) -> tuple[int, int]:
    """Write ``language``'s .po: every message of ``catalogue``, with the translations it had; messages
    no longer in the code are dropped. Returns (messages, untranslated)."""
    import polib

    path = po_path(language, base)
    old = polib.pofile(str(path)) if path.exists() else polib.POFile()
    known = {(e.msgctxt or "", e.msgid): e for e in old if not e.obsolete}
    po = polib.POFile(wrapwidth=100)
    po.metadata = {
        "Project-Id-Version": "e-meterai-gateway",
        "Language": language,
        "MIME-Version": "1.0",
        "Content-Type": "text/plain; charset=UTF-8",
        "Content-Transfer-Encoding": "8bit",
        "Plural-Forms": "nplurals=1; plural=0;" if language == "id" else "nplurals=2; plural=(n != 1);",
    }
    untranslated = 0
    for message in sorted(catalogue.messages):
        previous = known.get((message.context, message.msgid))
        entry = polib.POEntry(
            msgid=message.msgid,
            msgctxt=message.context or None,
            occurrences=[(where, "") for where in sorted(catalogue.messages[message])[:3]],
        )
        if message.plural:
            entry.msgid_plural = message.plural
            entry.msgstr_plural = dict(previous.msgstr_plural) if previous and previous.msgstr_plural else {0: ""}
            translated = all(entry.msgstr_plural.values())
        else:
            entry.msgstr = previous.msgstr if previous else ""
            translated = bool(entry.msgstr)
        if previous is not None and "fuzzy" in previous.flags:
            entry.flags.append("fuzzy")
            translated = False
        untranslated += not translated
        po.append(entry)
    path.parent.mkdir(parents=True, exist_ok=True)
    po.save(str(path))
    return len(po), untranslated


def compile_all(base: Path | None = None) -> list[Path]:
    """Compile every ``locale/*/LC_MESSAGES/django.po`` to its ``.mo`` (fuzzy entries left out)."""
    import polib

    written = []
    for path in sorted((Path(base or settings.BASE_DIR) / "locale").glob("*/LC_MESSAGES/django.po")):
        po = polib.pofile(str(path))
        target = path.with_suffix(".mo")
        po.save_as_mofile(str(target))
        written.append(target)
    trans_real._translations.clear()  # a process that already loaded the catalogues reads them again
    trans_real._default = None
    return written


def untranslated(language: str, messages, base: Path | None = None) -> list[Message]:
    """The ``messages`` that ``language``'s .po does not translate (absent, empty or fuzzy)."""
    import polib

    path = po_path(language, base)
    po = polib.pofile(str(path)) if path.exists() else polib.POFile()
    done = {
        (e.msgctxt or "", e.msgid)
        for e in po
        if not e.obsolete and "fuzzy" not in e.flags and (all(e.msgstr_plural.values()) if e.msgid_plural else e.msgstr)
    }
    return sorted(m for m in messages if (m.context, m.msgid) not in done)
