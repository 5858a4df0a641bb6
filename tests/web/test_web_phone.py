"""The pages on a phone and a desktop with no network but this server (issue 26, part B):
Playwright driving Debian's Chromium at 390x844 and 1280x800, every request not to 127.0.0.1 or
localhost aborted, against a real server (`sealcheck serve`, SQLite).

- The golden list of 12 goldens transfers at most 150 KB (every thumbnail loaded, measured from
  the responses' sizes: headers and bodies).
- Seal -> open a lot -> inspect 3 units through "Inspect a unit for this lot" and the report's
  "Inspect another unit" -> the lot page lists all 3 units, and so does the API.
- The lot table's last column ("Ac / Re") stays inside its card on the phone.

Screenshots of every page go to tests/output/screenshots/ (phone-*/desktop-* with "offline").
"""

from __future__ import annotations

import re
import urllib.parse
import uuid

import httpx
import pytest

from testkit.photos import photo_pair
from testkit.server import free_port
from testkit.service import auth, new_key, settings_for, start_server
from tests.web.conftest import SCREENSHOTS, SIZES, browser_or_skip

GOLDEN_LIST_BUDGET = 150_000  # bytes on the wire for the list of 12 goldens
LIST_GOLDENS = 12


@pytest.fixture(scope="module")
def site(tmp_path_factory, request):
    """A server of its own (SQLite); a tenant holding 12 goldens sealed through the API (for
    the list) and another for the flow; a golden and a good unit photo on disk."""
    browser_or_skip()
    data_dir = tmp_path_factory.mktemp("web-phone")
    settings = settings_for("sqlite", data_dir, request)
    list_key, flow_key = new_key(settings), new_key(settings)
    port = free_port()
    process = start_server(settings, port, data_dir / "server.log")
    base = f"http://127.0.0.1:{port}"
    golden, good_unit, _ = photo_pair()
    files = {"golden": data_dir / "golden.jpg", "unit": data_dir / "unit.jpg"}
    files["golden"].write_bytes(golden)
    files["unit"].write_bytes(good_unit)  # a failure could reject the lot before 3 units
    try:
        for n in range(LIST_GOLDENS):
            sealed = httpx.post(f"{base}/v1/goldens", headers=auth(list_key), timeout=60,
                                data={"name": f"Astronaut print {n + 1}",
                                      "sku": f"AST-{n:02d}"},
                                files={"images": ("golden.jpg", golden, "image/jpeg")})
            assert sealed.status_code == 201, sealed.text
        yield {"base": base, "list_key": list_key, "flow_key": flow_key, "files": files}
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def chromium(site, chromium_browser):
    return chromium_browser


def _offline_page(chromium, size: str):
    """A fresh context (empty cache) at `size` whose requests leave only for this machine;
    returns (context, page, the URLs that were blocked)."""
    width, height = SIZES[size]
    context = chromium.new_context(viewport={"width": width, "height": height},
                                   device_scale_factor=1, is_mobile=size == "phone",
                                   has_touch=size == "phone")
    blocked: list[str] = []

    def only_local(route):
        host = urllib.parse.urlsplit(route.request.url).hostname
        if host in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    context.route("**/*", only_local)
    page = context.new_page()
    page.set_default_timeout(60_000)
    return context, page, blocked


def _sign_in(page, base: str, key: str) -> None:
    page.goto(f"{base}/signin")
    page.fill("#api_key", key)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/goldens")


def _shot(page, size: str, step: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{size}-offline-{step}.png"), full_page=True)


@pytest.mark.parametrize("size", list(SIZES))
def test_the_golden_list_of_12_transfers_at_most_150_kb_offline(size, site, chromium):
    context, page, blocked = _offline_page(chromium, size)
    try:
        _sign_in(page, site["base"], site["list_key"])
        # Signing in lands on the list: let that load finish, then count a whole new load
        # (routing turns Chromium's cache off, so every response is fetched again).
        page.wait_for_load_state("networkidle")
        transferred: dict[str, int] = {}

        def count(request):
            sizes = request.sizes()
            transferred[request.url] = (transferred.get(request.url, 0)
                                        + sizes["responseBodySize"]
                                        + sizes["responseHeadersSize"])

        page.on("requestfinished", count)
        page.goto(f"{site['base']}/goldens")
        # Every thumbnail is loaded (lazy ones too), then the total is taken.
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        page.wait_for_function("""(n) => {
            const imgs = Array.from(document.querySelectorAll('#golden-list img'));
            return imgs.length === n && imgs.every(i => i.complete && i.naturalWidth > 0);
        }""", arg=LIST_GOLDENS)
        page.wait_for_load_state("networkidle")
        thumbnails = {u: b for u, b in transferred.items() if u.endswith("/thumb.webp")}
        total = sum(transferred.values())
        print(f"\n{size}: golden list of {LIST_GOLDENS}: {total} bytes in {len(transferred)} "
              f"responses ({sum(thumbnails.values())} in {len(thumbnails)} thumbnails)")
        assert len(thumbnails) == LIST_GOLDENS
        assert total <= GOLDEN_LIST_BUDGET, transferred
        assert blocked == []  # the page asks nothing of the internet
        page.evaluate("window.scrollTo(0, 0)")
        _shot(page, size, "1-goldens")
    finally:
        context.close()


def _plan_fits_its_card(page) -> None:
    overflow = page.evaluate("""() => {
        const table = document.querySelector('#plan');
        const card = table.closest('.card');
        const style = getComputedStyle(card);
        const inner = card.getBoundingClientRect().right - parseFloat(style.paddingRight)
            - parseFloat(style.borderRightWidth);
        return Array.from(table.querySelectorAll('th, td'))
            .map(c => [c.textContent.trim(), c.getBoundingClientRect().right - inner,
                       c.scrollWidth - c.clientWidth])
            .filter(([_, over, clipped]) => over > 0.5 || clipped > 0);
    }""")
    assert overflow == [], f"plan cells past the card's edge: {overflow}"


@pytest.mark.parametrize("size", list(SIZES))
def test_seal_open_a_lot_inspect_3_units_and_the_lot_keeps_them_offline(size, site, chromium):
    width, _ = SIZES[size]
    base, key = site["base"], site["flow_key"]
    context, page, blocked = _offline_page(chromium, size)
    try:
        _sign_in(page, base, key)
        # Seal through the form, no region: the page says the product will be compared.
        page.goto(f"{base}/goldens/new")
        page.set_input_files("#golden-photo", str(site["files"]["golden"]))
        page.locator("[data-roi-image]").wait_for(state="visible")
        sku = f"FLOW-{size}-{uuid.uuid4().hex[:4]}".upper()
        page.fill("#name", f"Astronaut print ({size})")
        page.fill("#sku", sku)
        _shot(page, size, "2-seal-form")
        page.click("#seal-form [data-submit]")
        page.wait_for_url(re.compile(rf"{re.escape(base)}/goldens/[0-9a-f-]{{36}}$"))
        golden_id = page.url.rsplit("/", 1)[1]
        assert "product detected" in page.inner_text("#region-words")
        _shot(page, size, "3-golden")

        # Open a lot of 40 units with a reference.
        page.click("#lots summary")
        page.fill("#lot_size", "40")
        reference = f"PO-{size}-1"
        page.fill("#reference", reference)
        page.click("#lot-form button[type=submit]")
        page.wait_for_url(re.compile(rf"{re.escape(base)}/lots/[0-9a-f-]{{36}}$"))
        lot_id = page.url.rsplit("/", 1)[1]
        _plan_fits_its_card(page)
        _shot(page, size, "4-lot-open")

        # Three units: the first from the lot page's link, the others from the report's
        # "Inspect another unit"; the lot is chosen by its reference each time.
        page.click("text=Inspect a unit for this lot")
        inspections = []
        for n in range(1, 4):
            page.wait_for_url(re.compile(rf"/goldens/{golden_id}\?lot={lot_id}"))
            chosen = page.eval_on_selector("#lot_id", "s => s.selectedOptions[0].textContent")
            assert page.input_value("#lot_id") == lot_id and chosen.startswith(reference), chosen
            if n == 1:
                _shot(page, size, "5-inspect-for-lot")
            page.set_input_files("#unit-photo", str(site["files"]["unit"]))
            page.fill("#unit_label", f"unit {n}")
            page.click("#inspect-form [data-submit]")
            page.wait_for_url(re.compile(rf"{re.escape(base)}/inspections/[0-9a-f-]{{36}}$"))
            inspections.append(page.url.rsplit("/", 1)[1])
            assert reference in page.inner_text("#lot-summary")
            if n == 1:
                page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
                page.wait_for_function("""() => Array.from(document.querySelectorAll('main img'))
                    .every(img => img.complete && img.naturalWidth > 0)""")
                page.evaluate("window.scrollTo(0, 0)")
                # Decoded again before the full-page shot (offscreen images may be dropped).
                page.evaluate("""() => Promise.all(Array.from(document.querySelectorAll('main img'))
                    .map(img => img.decode().catch(() => null)))""")
                _shot(page, size, "6-report")
            if n < 3:
                page.click("#inspect-another")

        # The lot page lists all three, as does the API.
        page.goto(f"{base}/lots/{lot_id}")
        listed = page.eval_on_selector_all(
            "#lot-units a", "els => els.map(a => a.getAttribute('href').split('/').pop())")
        assert sorted(listed) == sorted(inspections)
        lot = httpx.get(f"{base}/v1/lots/{lot_id}", headers=auth(key)).json()
        assert lot["inspected"] == 3
        assert f"3 of {lot['to_inspect']} units inspected" in page.inner_text("#lot-progress")
        api = httpx.get(f"{base}/v1/inspections", params={"lot_id": lot_id},
                        headers=auth(key)).json()["items"]
        assert sorted(i["id"] for i in api) == sorted(inspections)
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        _plan_fits_its_card(page)
        _shot(page, size, "7-lot")

        page.goto(f"{base}/goldens/{golden_id}")
        _shot(page, size, "8-golden-with-lot")
        page.goto(f"{base}/inspections?golden={golden_id}")
        _shot(page, size, "9-history")
        assert blocked == []
    finally:
        context.close()
