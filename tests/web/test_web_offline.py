"""The API docs with no network but this server (issue 26, part A): Playwright driving Debian's
Chromium at 390x844 and 1280x800, every request not to 127.0.0.1 or localhost aborted, against
a real server (`sealcheck serve`, SQLite). /docs (Swagger UI) and /redoc must render the
operations from the files installed with the package (fastapi-offline), not from a CDN.

Screenshots go to tests/output/screenshots/ (phone-/desktop-docs-offline.png,
desktop-redoc-offline.png).
"""

from __future__ import annotations

import signal
import urllib.parse

import pytest

from testkit.server import free_port
from testkit.service import settings_for, start_server
from tests.web.conftest import SCREENSHOTS, SIZES, browser_or_skip

LOCAL_HOSTS = ("127.0.0.1", "localhost")


@pytest.fixture(scope="module")
def docs_server(tmp_path_factory, request):
    browser_or_skip()
    data_dir = tmp_path_factory.mktemp("web-offline")
    port = free_port()
    process = start_server(settings_for("sqlite", data_dir, request), port,
                           data_dir / "server.log")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)


def _open_offline(browser, size: str, url: str):
    """`url` in a fresh context at `size`; returns the page and the URLs that were blocked."""
    width, height = SIZES[size]
    context = browser.new_context(viewport={"width": width, "height": height},
                                  is_mobile=size == "phone", has_touch=size == "phone")
    blocked: list[str] = []

    def route(route) -> None:
        if urllib.parse.urlsplit(route.request.url).hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort("internetdisconnected")

    context.route("**/*", route)
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url)
    return page, blocked, errors


@pytest.mark.parametrize("size", list(SIZES))
def test_swagger_ui_renders_the_operations_without_internet(size, docs_server,
                                                            chromium_browser):
    page, blocked, errors = _open_offline(chromium_browser, size, f"{docs_server}/docs")
    try:
        # Swagger UI draws one block per operation once its script has read /openapi.json.
        seal = page.locator(".opblock-post .opblock-summary-path[data-path='/v1/goldens']")
        seal.first.wait_for(state="visible")
        listed = page.locator(".opblock-get .opblock-summary-path[data-path='/v1/goldens']")
        assert listed.count() == 1
        assert page.locator(".opblock").count() >= 10
        assert "sealcheck" in page.locator(".info .title").inner_text()
        assert blocked == [] and errors == [], (blocked, errors)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{size}-docs-offline.png"))
    finally:
        page.context.close()


def test_redoc_renders_the_operations_without_internet(docs_server, chromium_browser):
    page, blocked, errors = _open_offline(chromium_browser, "desktop", f"{docs_server}/redoc")
    try:
        page.locator("h2", has_text="Seal a golden sample").first.wait_for(state="visible")
        # ReDoc's only request elsewhere is the footer's decorative "powered by" logo.
        assert [u for u in blocked if not u.endswith("/logo-mini.svg")] == [], blocked
        assert errors == [], errors
        page.screenshot(path=str(SCREENSHOTS / "desktop-redoc-offline.png"))
    finally:
        page.context.close()
