"""The inspect form in a real browser (Chromium) when the answer is lost on the way back: the
server inspected the unit, the phone saw a network error, the person sends the form again. The
page sends the same Idempotency-Key both times, so the unit is inspected once and the second
send opens that inspection; changing the form makes a new submission with a new key."""

from __future__ import annotations

import re

import httpx
import pytest

from testkit.photos import photo_pair
from testkit.server import free_port, stop
from testkit.service import auth, new_key, settings_for, start_server
from tests.web.conftest import browser_or_skip


@pytest.fixture(scope="module")
def server(tmp_path_factory, request):
    browser_or_skip()
    data_dir = tmp_path_factory.mktemp("web-retry")
    settings = settings_for("sqlite", data_dir, request)
    key = new_key(settings)
    port = free_port()
    process = start_server(settings, port, data_dir / "server.log")
    golden, unit, _ = photo_pair("stain")
    (data_dir / "unit.jpg").write_bytes(unit)
    base = f"http://127.0.0.1:{port}"
    golden_id = httpx.post(f"{base}/v1/goldens", headers=auth(key), timeout=60,
                           data={"name": "Retry", "sku": "RETRY-1"},
                           files={"images": ("g.jpg", golden, "image/jpeg")}).json()["id"]
    try:
        yield {"base": base, "key": key, "unit": data_dir / "unit.jpg", "golden_id": golden_id}
    finally:
        stop(process)


def _inspections(server) -> list[str]:
    answer = httpx.get(f"{server['base']}/v1/inspections", headers=auth(server["key"]),
                       params={"golden_id": server["golden_id"]}, timeout=30)
    return [item["id"] for item in answer.json()["items"]]


def test_a_form_sent_again_after_a_lost_answer_inspects_once(server, chromium_browser):
    context = chromium_browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.set_default_timeout(60_000)
    base = server["base"]
    keys: list[str] = []
    page.on("request", lambda r: keys.append(r.headers.get("idempotency-key", ""))
            if r.method == "POST" and r.url.endswith("/inspections") else None)
    # The first answer is dropped once the server has sent it (Chrome's network layer, at
    # the response stage: the request went out whole and the server did the work).
    cdp = context.new_cdp_session(page)
    dropped: list[str] = []

    def drop_the_first_answer(event: dict) -> None:
        if not dropped:
            dropped.append(event["request"]["url"])
            cdp.send("Fetch.failRequest", {"requestId": event["requestId"],
                                           "errorReason": "ConnectionReset"})
        else:
            cdp.send("Fetch.continueRequest", {"requestId": event["requestId"]})

    cdp.on("Fetch.requestPaused", drop_the_first_answer)
    try:
        page.goto(f"{base}/signin")
        page.fill("#api_key", server["key"])
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/goldens")
        cdp.send("Fetch.enable", {"patterns": [{"urlPattern": "*/inspections",
                                                 "requestStage": "Response"}]})
        page.goto(f"{base}/goldens/{server['golden_id']}")
        page.set_input_files("#unit-photo", str(server["unit"]))
        page.click("#inspect-form [data-submit]")
        error = page.locator("#inspect-form [data-upload-error]")
        error.wait_for(state="visible")
        assert "did not get through" in error.inner_text() and len(dropped) == 1
        assert len(_inspections(server)) == 1  # the server did inspect it

        page.click("#inspect-form [data-submit]")  # the person sends it again
        page.wait_for_url(re.compile(r"/inspections/[0-9a-f-]{36}$"))
        assert len(keys) == 2 and re.fullmatch(r"[0-9a-f]{32}", keys[0]) and keys[1] == keys[0]
        assert _inspections(server) == [page.url.rsplit("/", 1)[1]]

        # Another unit on the same form: a new submission, a new key, a new inspection.
        page.goto(f"{base}/goldens/{server['golden_id']}")
        page.set_input_files("#unit-photo", str(server["unit"]))
        page.fill("#unit_label", "unit 2")
        page.click("#inspect-form [data-submit]")
        page.wait_for_url(re.compile(r"/inspections/[0-9a-f-]{36}$"))
        assert len(keys) == 3 and keys[2] != keys[0]
        assert len(_inspections(server)) == 2
    finally:
        context.close()
