"""What the browser tests share: Debian's Chromium, the two viewport sizes, where screenshots
go, and the skip (or, with SEALCHECK_REQUIRE_BROWSER=1 as in CI, the failure) without a
browser."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

__all__ = ["CHROMIUM", "SCREENSHOTS", "SIZES", "browser_or_skip"]

CHROMIUM = Path("/usr/bin/chromium")
SIZES = {"phone": (390, 844), "desktop": (1280, 800)}
SCREENSHOTS = Path(__file__).resolve().parents[1] / "output" / "screenshots"


def browser_or_skip() -> None:
    problem = None
    if not CHROMIUM.exists():
        problem = f"{CHROMIUM} is missing (apt-get install chromium)"
    else:
        try:
            from playwright.sync_api import sync_playwright  # noqa: F401
        except ImportError:
            problem = "playwright is not installed (pip install -e '.[dev]')"
    if problem:
        if os.environ.get("SEALCHECK_REQUIRE_BROWSER") == "1":
            pytest.fail(f"browser tests required (SEALCHECK_REQUIRE_BROWSER=1) but {problem}")
        pytest.skip(f"browser tests skipped: {problem}")


@pytest.fixture(scope="module")
def chromium_browser():
    """Headless Chromium for one test module (skipped, or failed in CI, without it)."""
    browser_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield browser
        finally:
            browser.close()
