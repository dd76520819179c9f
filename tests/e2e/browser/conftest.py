"""Browser tests: Debian's Chromium driven by Playwright against the real gunicorn of ``gateway_url``.

They skip (with the reason) when the ``playwright`` package or ``/usr/bin/chromium`` is missing, so a
machine without them still passes. Playwright's own browser downloads are never used: Chromium is
the system's (``apt-get install chromium``), launched through ``executable_path``.

Host names: the issuer is ``issuer.test`` and the channels ``alpha.test`` / ``beta.test``; Chromium's
``--host-resolver-rules`` maps ``*.test`` to 127.0.0.1 so each host reaches the local server with its
own Host header, as in production.

Screenshots go to ``$E2E_SCREENSHOT_DIR`` when set, else to a pytest temporary directory (its path
is printed with ``-s``).
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest

CHROMIUM = Path(os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP *.test 127.0.0.1",
]


@pytest.fixture(scope="package")
def browser():
    # Package scope: Playwright's sync API runs an event loop in this thread until it stops, and
    # code after the browser tests (pyHanko's validator) needs a thread without a running loop.
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright package is not installed (pip install playwright)")
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    # Playwright's sync API keeps an asyncio loop running in this thread; Django would then refuse the
    # test's own ORM calls (made between browser steps, never concurrently with them).
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(scope="package")
def port(browser, gateway_url) -> int:
    """The live server's port (the browser fixture first, so a skip starts no server)."""
    return urlsplit(gateway_url).port


@pytest.fixture
def site(port):
    """``site("alpha")`` -> ``http://alpha.test:<port>``; ``site(None)`` -> the issuer's host."""

    def url(code: str | None = None, path: str = "/") -> str:
        return f"http://{code or 'issuer'}.test:{port}{path}"

    return url


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="en-GB")
    context.set_default_timeout(15_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture(scope="session")
def shots(tmp_path_factory) -> Path:
    target = os.environ.get("E2E_SCREENSHOT_DIR")
    directory = Path(target) if target else tmp_path_factory.mktemp("screenshots")
    directory.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots: {directory}")  # noqa: T201 - where to look, with -s
    return directory


@pytest.fixture
def shoot(page, shots):
    def take(name: str) -> Path:
        path = shots / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
