"""The web pages through plain HTTP (TestClient), on SQLite and on PostgreSQL: sessions and
their cookie, CSRF, tenant isolation, bad input shown on the page with nothing stored, history
filters, and the pictures the report page shows (the aligned unit really is aligned)."""

from __future__ import annotations

import datetime as dt
import hashlib
import re

import cv2
import numpy as np
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from service.db import WebSession, make_engine, make_sessionmaker
from testkit.bad_inputs import good_image_bytes
from testkit.photos import photo_pair
from testkit.service import (
    auth,
    dangling_files,
    file_count,
    new_key,
    row_counts,
    running_app,
    settings_for,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def app(backend, request, tmp_path_factory):
    with running_app(backend, "web", request, tmp_path_factory) as client:
        yield client


def _client(app, base_url: str = "http://testserver") -> TestClient:
    """Another browser (its own cookie jar) on the same running app."""
    client = TestClient(app.app, base_url=base_url)
    client.settings = app.settings
    return client


def _sign_in(client: TestClient, key: str) -> str:
    """Sign in; return the CSRF token the pages put in their forms."""
    response = client.post("/signin", data={"api_key": key}, follow_redirects=False)
    assert response.status_code == 303, response.text
    page = client.get("/goldens")
    assert page.status_code == 200
    return re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page.text).group(1)


def _sql(settings, query: str, **params) -> list:
    engine = make_engine(settings.database_url)
    try:
        with engine.begin() as connection:
            result = connection.execute(sa.text(query), params)
            return list(result) if result.returns_rows else []
    finally:
        engine.dispose()


def _web_session(settings, token_hash: str, **changes):
    """The session row with this token hash (after applying `changes`), or None."""
    engine = make_engine(settings.database_url)
    try:
        with make_sessionmaker(engine)() as session:
            row = session.get(WebSession, token_hash)
            if row is not None and changes:
                for name, value in changes.items():
                    setattr(row, name, value)
                session.commit()
            return row
    finally:
        engine.dispose()


def _seal_form(csrf: str, **fields) -> dict:
    _, _, roi = photo_pair()
    form = {"csrf_token": csrf, "name": "Astronaut print", "sku": "AST-30", "delta_e00": "3",
            "roi_x": str(roi[0]), "roi_y": str(roi[1]), "roi_w": str(roi[2]),
            "roi_h": str(roi[3])}
    form.update(fields)
    return form


@pytest.fixture(scope="module")
def tenants(app):
    """Tenant A: a golden sealed and a good unit inspected through the pages. Tenant B: the
    same through the API. Returns ids and A's signed-in client."""
    golden, good_unit, roi = photo_pair()
    key_a, key_b = new_key(app.settings), new_key(app.settings)
    browser_a = _client(app)
    csrf = _sign_in(browser_a, key_a)
    sealed = browser_a.post("/goldens", data=_seal_form(csrf),
                            files={"images": ("golden.jpg", golden, "image/jpeg")},
                            follow_redirects=False)
    assert sealed.status_code == 303, sealed.text
    golden_a = sealed.headers["location"].rsplit("/", 1)[1]
    inspected = browser_a.post(f"/goldens/{golden_a}/inspections",
                               data={"csrf_token": csrf, "unit_label": "good one"},
                               files={"images": ("unit.jpg", good_unit, "image/jpeg")},
                               follow_redirects=False)
    assert inspected.status_code == 303, inspected.text
    inspection_a = inspected.headers["location"].rsplit("/", 1)[1]
    golden_b = app.post("/v1/goldens", headers=auth(key_b), data={"name": "B", "sku": "B-1"},
                        files={"images": ("g.jpg", golden, "image/jpeg")}).json()["id"]
    inspection_b = app.post(f"/v1/goldens/{golden_b}/inspections", headers=auth(key_b),
                            files={"images": ("u.jpg", good_unit, "image/jpeg")}).json()["id"]
    return {"key_a": key_a, "key_b": key_b, "browser_a": browser_a, "csrf_a": csrf,
            "golden_a": golden_a, "inspection_a": inspection_a, "golden_b": golden_b,
            "inspection_b": inspection_b, "roi": roi}


def test_pages_need_a_session_whose_cookie_is_httponly_and_stored_hashed(app):
    browser = _client(app)
    away = browser.get("/inspections?verdict=fail", follow_redirects=False)
    assert away.status_code == 303
    assert away.headers["location"] == "/signin?next=%2Finspections%3Fverdict%3Dfail"
    wrong = browser.post("/signin", data={"api_key": "sck_nope"}, follow_redirects=False)
    assert wrong.status_code == 401 and "not known" in wrong.text
    assert "set-cookie" not in wrong.headers
    key = new_key(app.settings)
    signed_in = browser.post("/signin", data={"api_key": key, "next": "/inspections"},
                             follow_redirects=False)
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/inspections"
    cookie = signed_in.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    token = re.match(r"sealcheck_session=([^;]+)", cookie).group(1)
    row = _web_session(app.settings, hashlib.sha256(token.encode()).hexdigest())
    assert row is not None
    lifetime = row.expires_at - row.created_at
    assert dt.timedelta(hours=11) < lifetime <= dt.timedelta(hours=12, seconds=1)
    assert not _sql(app.settings, "SELECT 1 FROM web_sessions WHERE token_hash = :t", t=token)
    assert browser.get("/inspections").status_code == 200
    # An open redirect is refused: "next" stays on this site.
    other = _client(app)
    response = other.post("/signin", data={"api_key": key, "next": "//evil.example/x"},
                          follow_redirects=False)
    assert response.headers["location"] == "/goldens"
    # Over https the cookie is Secure as well.
    secure = _client(app, "https://testserver").post("/signin", data={"api_key": key},
                                                     follow_redirects=False)
    assert "Secure" in secure.headers["set-cookie"]


def test_sign_out_deletes_the_session_and_expired_sessions_end(app):
    browser = _client(app)
    csrf = _sign_in(browser, new_key(app.settings))
    token = browser.cookies["sealcheck_session"]
    token_hash = hashlib.sha256(token.encode()).hexdigest()
    # Sign out needs the form's token too.
    refused = browser.post("/signout", data={"csrf_token": "0" * 64}, follow_redirects=False)
    assert refused.status_code == 403
    assert browser.get("/goldens", follow_redirects=False).status_code == 200
    out = browser.post("/signout", data={"csrf_token": csrf}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/signin"
    assert not _sql(app.settings, "SELECT 1 FROM web_sessions WHERE token_hash = :h",
                    h=token_hash)
    replay = _client(app)
    replay.cookies.set("sealcheck_session", token)
    assert replay.get("/goldens", follow_redirects=False).status_code == 303
    # A session past its expiry no longer opens pages.
    later = _client(app)
    _sign_in(later, new_key(app.settings))
    later_hash = hashlib.sha256(later.cookies["sealcheck_session"].encode()).hexdigest()
    _web_session(app.settings, later_hash, expires_at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
    assert later.get("/goldens", follow_redirects=False).status_code == 303


def test_another_tenants_goldens_and_inspections_answer_404(app, tenants):
    browser = tenants["browser_a"]
    golden_b, inspection_b = tenants["golden_b"], tenants["inspection_b"]
    for path in (f"/goldens/{golden_b}", f"/inspections/{inspection_b}",
                 f"/inspections?golden={golden_b}"):
        response = browser.get(path)
        assert response.status_code == 404, path
        assert "not found" in response.text.lower() and "Traceback" not in response.text
        assert response.headers["content-type"].startswith("text/html")
    for path in (f"/goldens/{golden_b}/picture.png", f"/inspections/{inspection_b}/overlay.png",
                 f"/inspections/{inspection_b}/aligned.png",
                 f"/inspections/{inspection_b}/heat.png", f"/inspections/{inspection_b}/photo"):
        assert browser.get(path).status_code == 404, path
    # Own ones answer; a missing id answers exactly like B's.
    assert browser.get(f"/goldens/{tenants['golden_a']}").status_code == 200
    assert browser.get("/goldens/00000000-0000-0000-0000-000000000000").status_code == 404
    # Inspecting B's golden from A's session: 404 and nothing stored.
    rows = row_counts(app.settings)
    _, unit, _ = photo_pair()
    response = browser.post(f"/goldens/{golden_b}/inspections",
                            data={"csrf_token": tenants["csrf_a"]},
                            files={"images": ("u.jpg", unit, "image/jpeg")})
    assert response.status_code == 404 and row_counts(app.settings) == rows
    # The lists show only A's rows.
    goldens = browser.get("/goldens").text
    assert tenants["golden_a"] in goldens and golden_b not in goldens
    history = browser.get("/inspections").text
    assert tenants["inspection_a"] in history and inspection_b not in history
    # The API's new pictures keep the same rule.
    key_a = tenants["key_a"]
    assert app.get(f"/v1/goldens/{golden_b}/picture.png", headers=auth(key_a)).status_code \
        == 404
    assert app.get(f"/v1/inspections/{inspection_b}/aligned.png",
                   headers=auth(key_a)).status_code == 404


def test_forms_need_the_csrf_token_and_this_site_as_origin(app, tenants):
    browser, csrf = tenants["browser_a"], tenants["csrf_a"]
    golden, _, _ = photo_pair()
    rows, files = row_counts(app.settings), file_count(app.settings.data_dir)
    photo = {"images": ("golden.jpg", golden, "image/jpeg")}
    cases = [
        ({}, _seal_form("")),
        ({}, _seal_form("f" * 64)),
        ({"Origin": "https://evil.example"}, _seal_form(csrf)),
        ({"X-CSRF-Token": "nope"}, _seal_form(csrf)),
    ]
    for headers, form in cases:
        response = browser.post("/goldens", data=form, files=photo, headers=headers)
        assert response.status_code == 403, (headers, response.text[:200])
        assert "expired" in response.text
    assert row_counts(app.settings) == rows and file_count(app.settings.data_dir) == files
    # The page's script sends the token as a header instead of a field, and gets JSON back.
    answer = browser.post("/goldens", data=_seal_form("", sku="AST-JS"), files=photo,
                          headers={"X-CSRF-Token": csrf, "Accept": "application/json",
                                   "Origin": "http://testserver"})
    assert answer.status_code == 200 and answer.json()["redirect"].startswith("/goldens/")


def test_bad_input_is_shown_on_the_page_and_stores_nothing(app, tenants):
    browser, csrf = tenants["browser_a"], tenants["csrf_a"]
    golden, _, _ = photo_pair()
    photo = {"images": ("golden.jpg", golden, "image/jpeg")}
    gif = {"images": ("golden.jpg", good_image_bytes("GIF", (64, 64)), "image/jpeg")}
    empty_file = {"images": ("", b"", "application/octet-stream")}
    cases = [
        ("gif photo", _seal_form(csrf), gif, 415, "gif"),
        ("no photo", _seal_form(csrf), empty_file, 422, "photo of the golden"),
        ("no name", _seal_form(csrf, name=" "), photo, 422, "name"),
        ("delta_e00 text", _seal_form(csrf, delta_e00="abc"), photo, 422, "must be a number"),
        ("delta_e00 negative", _seal_form(csrf, delta_e00="-1"), photo, 422, "delta_e00"),
        ("max_defects 1.5", _seal_form(csrf, max_defects="1.5"), photo, 422, "whole number"),
        ("roi incomplete", _seal_form(csrf, roi_h=""), photo, 422, "all four"),
        ("roi outside", _seal_form(csrf, roi_x="5000"), photo, 422, "outside"),
        ("size without card", _seal_form(csrf, dimension_mm="2"), photo, 422, "width_mm"),
    ]
    rows, files = row_counts(app.settings), file_count(app.settings.data_dir)
    for what, form, upload, status, says in cases:
        response = browser.post("/goldens", data=form, files=upload)
        assert response.status_code == status, (what, response.status_code)
        assert response.headers["content-type"].startswith("text/html")
        message = re.search(r'role="alert"[^>]*>([^<]+)<', response.text)
        assert message and says in message.group(1).lower(), (what, message)
        assert "Traceback" not in response.text
        # The typed values stay in the form.
        assert f'value="{form["sku"]}"' in response.text, what
        as_json = browser.post("/goldens", data=form, files=upload,
                               headers={"Accept": "application/json"})
        assert as_json.status_code == status and says in as_json.json()["detail"].lower()
    assert row_counts(app.settings) == rows and file_count(app.settings.data_dir) == files
    bad_day = browser.get("/inspections?since=yesterday")
    assert bad_day.status_code == 400 and "date like" in bad_day.text
    assert browser.get("/inspections?verdict=maybe").status_code == 400
    assert browser.get("/goldens?cursor=garbage!").status_code == 400
    assert dangling_files(app.settings) == []


def test_history_filters_by_golden_verdict_and_date(app, tenants):
    browser = tenants["browser_a"]
    inspection = tenants["inspection_a"]
    today = dt.datetime.now(dt.UTC).date()
    tomorrow = today + dt.timedelta(days=1)

    def listed(**params) -> bool:
        page = browser.get("/inspections", params=params)
        assert page.status_code == 200
        return f'data-inspection="{inspection}"' in page.text

    assert listed() and listed(golden=tenants["golden_a"]) and listed(verdict="pass")
    assert not listed(verdict="fail")
    assert listed(since=today.isoformat(), until=today.isoformat())
    assert not listed(since=tomorrow.isoformat())
    assert listed(sku="ast-") and not listed(sku="NOPE")


def test_report_page_shows_the_stored_report_and_aligned_pictures(app, tenants):
    browser, key = tenants["browser_a"], tenants["key_a"]
    inspection = app.get(f"/v1/inspections/{tenants['inspection_a']}", headers=auth(key)).json()
    assert inspection["verdict"] == "pass", inspection["report"]["reasons"]
    page = browser.get(f"/inspections/{inspection['id']}")
    assert page.status_code == 200 and 'data-verdict="pass"' in page.text
    assert re.search(r'id="defect-count">0<', page.text)
    assert page.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    images = re.findall(r"<img [^>]*>", page.text)
    assert images and all('loading="lazy"' in tag for tag in images)

    def png(path: str, headers=None) -> np.ndarray:
        response = browser.get(path) if headers is None else app.get(path, headers=headers)
        assert response.status_code == 200 and response.headers["content-type"] == "image/png"
        return cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_UNCHANGED)

    picture = png(f"/goldens/{tenants['golden_a']}/picture.png")
    aligned = png(f"/inspections/{inspection['id']}/aligned.png")
    heat = png(f"/inspections/{inspection['id']}/heat.png")
    overlay = png(f"/inspections/{inspection['id']}/overlay.png")
    assert picture.shape == aligned.shape == overlay.shape == (750, 1000, 3)
    assert heat.shape == (750, 1000, 4)
    # The API serves the same pictures.
    assert np.array_equal(png(f"/v1/goldens/{tenants['golden_a']}/picture.png", auth(key)),
                          picture)
    assert np.array_equal(png(f"/v1/inspections/{inspection['id']}/aligned.png", auth(key)),
                          aligned)
    # Aligned means aligned: inside the product's box the unit matches the golden to within
    # photo noise, far better than the same picture moved by 6 px.
    x, y, w, h = tenants["roi"]
    inside = (slice(y, y + h), slice(x, x + w))
    error = np.abs(aligned[inside].astype(float) - picture[inside]).mean()
    shifted = np.abs(np.roll(picture, 6, axis=1)[inside].astype(float)
                     - picture[inside]).mean()
    assert error < 0.5 * shifted, (error, shifted)


def test_report_of_a_unit_that_could_not_be_aligned_shows_the_photo_as_taken(app, tenants):
    """Another product entirely: inconclusive, no aligned picture, the page still reads well."""
    browser, csrf = tenants["browser_a"], tenants["csrf_a"]
    stranger = good_image_bytes("JPEG", (800, 600), seed=5)
    response = browser.post(f"/goldens/{tenants['golden_a']}/inspections",
                            data={"csrf_token": csrf, "unit_label": "wrong product"},
                            files={"images": ("other.jpg", stranger, "image/jpeg")},
                            follow_redirects=False)
    assert response.status_code == 303, response.text
    inspection_id = response.headers["location"].rsplit("/", 1)[1]
    api = app.get(f"/v1/inspections/{inspection_id}", headers=auth(tenants["key_a"])).json()
    assert api["verdict"] == "inconclusive", api["report"]["reasons"]
    page = browser.get(f"/inspections/{inspection_id}")
    assert page.status_code == 200 and 'data-verdict="inconclusive"' in page.text
    assert "could not be put onto the golden photo" in page.text
    assert api["report"]["reasons"][0].replace("'", "&#39;")[:40] in page.text
    assert f"/inspections/{inspection_id}/aligned.png" not in page.text
    assert browser.get(f"/inspections/{inspection_id}/aligned.png").status_code == 404
    photo = browser.get(f"/inspections/{inspection_id}/photo")
    # Re-encoded, never the uploaded bytes, and the same picture.
    assert photo.status_code == 200 and photo.headers["content-type"] == "image/jpeg"
    assert photo.content != stranger
    served, uploaded = (cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
                        for data in (photo.content, stranger))
    assert served.shape == uploaded.shape
    assert np.abs(served.astype(int) - uploaded.astype(int)).mean() < 2.0


def _text(html: str) -> str:
    """The words a person reads: tags dropped, spaces collapsed, entities as characters."""
    import html as html_module

    return " ".join(html_module.unescape(re.sub(r"<[^>]+>", " ", html)).split())


def test_an_inconclusive_report_shows_what_was_not_measured_and_no_score(app, tenants):
    """Nothing compared: the page gives the reason first and no "Score 0/100" or
    "Defects: 0", which would read as measurements."""
    browser = tenants["browser_a"]
    api = app.post(f"/v1/goldens/{tenants['golden_a']}/inspections",
                   headers=auth(tenants["key_a"]), files={"images": (
                       "other.jpg", good_image_bytes("JPEG", (800, 600), seed=7), "image/jpeg")})
    assert api.status_code == 201, api.text
    api = api.json()
    inspection_id = api["id"]
    assert api["verdict"] == "inconclusive" and api["score"] == 0  # documented: no measure
    page = browser.get(f"/inspections/{inspection_id}")
    words = _text(page.text)
    assert "Score" not in words and "/ 100" not in words, words
    assert 'id="defect-count"' not in page.text and "Defects: 0" not in words
    assert "Not looked for" in words
    banner = _text(page.text.split('id="verdict"', 1)[1].split("</section>", 1)[0])
    reason = _text(api["report"]["reasons"][0])
    assert banner.index(reason[:40]) < banner.index("Not measured: alignment, colour")
    # A unit that was compared keeps its score and defect count.
    compared = browser.get(f"/inspections/{tenants['inspection_a']}").text
    assert re.search(r'id="score">Score \d+ / 100<', compared)
    assert 'id="defect-count">0<' in compared and "Not measured" not in compared


def test_report_page_prints_the_reasons_numbers(app, tenants):
    """The colour card, the reasons and the other measures round the same number alike."""
    report = app.get(f"/v1/inspections/{tenants['inspection_a']}",
                     headers=auth(tenants["key_a"])).json()["report"]
    words = _text(tenants["browser_a"].get(f"/inspections/{tenants['inspection_a']}").text)
    reasons = " ".join(report["reasons"])
    card = re.search(r"Delta-E00 ([0-9.]+) within", words).group(1)
    assert f"Delta-E00 {card} <= 3.00" in reasons, (card, reasons)
    assert card == f"{report['color']['delta_e00']:.2f}"
    ssim = re.search(r"SSIM ([0-9.]+) \(lowest allowed 0.500\)", words).group(1)
    assert f"SSIM {ssim} >= 0.500" in reasons, (ssim, reasons)
    assert not re.search(r"-0\.0+(?![0-9])", words), words


def test_page_errors_name_the_photo_and_the_api_names_the_field(app, tenants):
    browser, csrf = tenants["browser_a"], tenants["csrf_a"]
    gif = good_image_bytes("GIF", (64, 64))
    page = browser.post("/goldens", data=_seal_form(csrf),
                        files={"images": ("logo.gif", gif, "image/gif")})
    message = _text(re.search(r'role="alert"[^>]*>([^<]+)<', page.text).group(1))
    assert page.status_code == 415
    assert message.startswith("The photo “logo.gif”: ") and "images[" not in message, message
    assert message.endswith(".")
    script = browser.post("/goldens", data=_seal_form(csrf), headers={"Accept":
                          "application/json"}, files={"images": ("logo.gif", gif, "image/gif")})
    assert script.json()["detail"] == message  # the page's script shows the same words
    api = app.post("/v1/goldens", headers=auth(tenants["key_a"]),
                   data={"name": "n", "sku": "S"}, files={"images": ("logo.gif", gif,
                                                                     "image/gif")})
    assert api.status_code == 415 and api.json()["detail"].startswith("images[0] (logo.gif): ")
    outside = browser.post("/goldens", data=_seal_form(csrf, roi_x="5000"), files={
        "images": ("golden.jpg", photo_pair()[0], "image/jpeg")})
    message = _text(re.search(r'role="alert"[^>]*>([^<]+)<', outside.text).group(1))
    assert message.startswith("The region of interest starts at (5000, "), message


def test_history_offers_a_filter_by_golden(app, tenants):
    browser = tenants["browser_a"]
    page = browser.get("/inspections").text
    select = re.search(r'<select id="f-golden" name="golden">(.*?)</select>', page, re.S)
    assert select, "no golden filter on the history page"
    assert re.search(r'<label for="f-golden">', page)
    options = re.findall(r'<option value="([^"]*)"', select.group(1))
    assert options[0] == "" and tenants["golden_a"] in options
    assert tenants["golden_b"] not in options  # another tenant's golden is not offered
    chosen = browser.get("/inspections", params={"golden": tenants["golden_a"]}).text
    assert re.search(rf'<option value="{tenants["golden_a"]}" selected>', chosen)
    assert f'data-inspection="{tenants["inspection_a"]}"' in chosen


def test_sign_in_page_says_where_a_key_comes_from(app):
    page = _client(app).get("/signin")
    assert "sealcheck keys create" in _text(page.text)


def test_a_unit_for_a_missing_lot_is_refused_on_the_page_before_any_work(app, tenants):
    """The pages apply the API's lot rule: a lot_id that is a UUID must name a lot."""
    import uuid

    browser, csrf = tenants["browser_a"], tenants["csrf_a"]
    _, unit, _ = photo_pair()
    rows, files = row_counts(app.settings), file_count(app.settings.data_dir)
    response = browser.post(f"/goldens/{tenants['golden_a']}/inspections",
                            data={"csrf_token": csrf, "lot_id": str(uuid.uuid4())},
                            files={"images": ("unit.jpg", unit, "image/jpeg")})
    assert response.status_code == 404
    message = re.search(r'role="alert"[^>]*>([^<]+)<', response.text).group(1)
    assert "lot" in message and "not found" in message
    assert row_counts(app.settings) == rows and file_count(app.settings.data_dir) == files


def test_golden_sealed_before_pictures_were_stored_still_shows_its_picture(app, tenants):
    """Goldens from before revision 0003 have no stored picture: it is made from the photo."""
    browser = tenants["browser_a"]
    path = f"/goldens/{tenants['golden_a']}/picture.png"
    stored = browser.get(path).content
    engine = make_engine(app.settings.database_url)
    try:
        with engine.begin() as connection:
            sha = connection.execute(sa.text("SELECT picture_sha256 FROM goldens WHERE id = :i"),
                                     {"i": tenants["golden_a"]}).scalar_one()
            connection.execute(sa.text("UPDATE goldens SET picture_sha256 = NULL WHERE id = :i"),
                               {"i": tenants["golden_a"]})
        remade = browser.get(path)
        assert remade.status_code == 200 and remade.content == stored
    finally:
        with engine.begin() as connection:
            connection.execute(sa.text("UPDATE goldens SET picture_sha256 = :s WHERE id = :i"),
                               {"s": sha, "i": tenants["golden_a"]})
        engine.dispose()


def test_migration_0003_goes_down_to_0002_and_up_again(backend, request, tmp_path):
    from alembic import command
    from alembic.config import Config

    from service.db import MIGRATIONS_DIR, migrate

    settings = settings_for(backend, tmp_path, request)
    engine = make_engine(settings.database_url)
    try:
        migrate(engine)
        config = Config(str(MIGRATIONS_DIR / "alembic.ini"))
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0002")
        tables = sa.inspect(engine)
        assert "web_sessions" not in tables.get_table_names()
        assert "aligned_sha256" not in {c["name"] for c in tables.get_columns("inspections")}
        assert "picture_sha256" not in {c["name"] for c in tables.get_columns("goldens")}
        migrate(engine)
        tables = sa.inspect(engine)
        assert "web_sessions" in tables.get_table_names()
        assert "aligned_sha256" in {c["name"] for c in tables.get_columns("inspections")}
    finally:
        engine.dispose()


# --------------------------------------------------------------------------------------------
# Lots (service/web/lot_pages.py)


def test_a_lot_opened_on_the_golden_page_shows_its_plan_progress_and_verdict(app, tenants):
    browser, csrf, golden = tenants["browser_a"], tenants["csrf_a"], tenants["golden_a"]
    page = browser.get(f"/goldens/{golden}")
    assert 'id="lot-form"' in page.text and 'name="lot_size"' in page.text
    opened = browser.post(f"/goldens/{golden}/lots", data={
        "csrf_token": csrf, "lot_size": "8", "level": "II", "aql_critical": "0",
        "aql_major": "6.5", "aql_minor": "6.5", "reference": "PO-9 lot 2"},
        follow_redirects=False)
    assert opened.status_code == 303, opened.text
    lot_id = opened.headers["location"].rsplit("/", 1)[1]
    # The page shows the API's plan and status: code A, n 2, Ac 0 / Re 1 per class.
    api = app.get(f"/v1/lots/{lot_id}", headers=auth(tenants["key_a"])).json()
    assert (api["code_letter"], api["to_inspect"], api["verdict"]) == ("A", 2, "pending")
    lot_page = browser.get(f"/lots/{lot_id}")
    assert lot_page.status_code == 200
    assert 'data-verdict="pending"' in lot_page.text and "0 of 2 units inspected" in lot_page.text
    rows = re.findall(r'<tr data-class="(\w+)">.*?<td>([\d.]+)</td>\s*<td>(\d+)[^<]*</td>\s*'
                      r'<td class="defective">(\d+)</td><td>(\d+) / (\d+)</td>',
                      lot_page.text, re.S)
    assert rows == [("critical", "0", "2", "0", "0", "1"), ("major", "6.5", "2", "0", "0", "1"),
                    ("minor", "6.5", "2", "0", "0", "1")]
    assert f'href="/goldens/{golden}?lot={lot_id}#inspect"' in lot_page.text
    # That link fills the lot in; two good units accept the lot.
    assert f'<option value="{lot_id}" selected>PO-9 lot 2 ·' in browser.get(
        f"/goldens/{golden}?lot={lot_id}").text
    _, good_unit, _ = photo_pair()
    for label in ("u1", "u2"):
        done = browser.post(f"/goldens/{golden}/inspections",
                            data={"csrf_token": csrf, "unit_label": label, "lot_id": lot_id},
                            files={"images": ("unit.jpg", good_unit, "image/jpeg")},
                            follow_redirects=False)
        assert done.status_code == 303, done.text
        report_page = browser.get(done.headers["location"])
        assert f'Lot <a href="/lots/{lot_id}">PO-9 lot 2</a>' in report_page.text
    assert "accepted, 2 of 2 units inspected" in report_page.text
    lot_page = browser.get(f"/lots/{lot_id}")
    assert 'data-verdict="accept"' in lot_page.text and "2 of 2 units inspected" in lot_page.text
    assert lot_page.text.count('href="/inspections/') == 2
    assert "Inspect a unit for this lot" not in lot_page.text
    assert app.get(f"/v1/lots/{lot_id}", headers=auth(tenants["key_a"])).json()["verdict"] \
        == "accept"
    # The golden page lists the lot with its verdict.
    assert f'href="/lots/{lot_id}"' in browser.get(f"/goldens/{golden}").text


@pytest.mark.parametrize(("fields", "words"), [
    ({"lot_size": "many"}, "whole number"),
    ({"lot_size": "1"}, "at least 2"),
    ({"lot_size": "100", "aql_major": "3"}, "not in the sampling table"),
    ({"lot_size": "100", "level": "IV"}, "nknown inspection level"),
])
def test_a_bad_lot_form_is_shown_on_the_page_and_stores_nothing(app, tenants, fields, words):
    browser, csrf, golden = tenants["browser_a"], tenants["csrf_a"], tenants["golden_a"]
    before = row_counts(app.settings)
    answer = browser.post(f"/goldens/{golden}/lots", data={"csrf_token": csrf, **fields},
                          follow_redirects=False)
    assert answer.status_code == 422
    alert = re.search(r'id="lot-error">([^<]*)<', answer.text).group(1)
    assert words in alert and "Traceback" not in answer.text
    assert f'value="{fields["lot_size"]}"' in answer.text  # what was typed stays
    assert row_counts(app.settings) == before


def test_another_tenants_lot_page_answers_404_and_forms_need_csrf(app, tenants):
    lot = app.post("/v1/lots", headers=auth(tenants["key_b"]),
                   json={"golden_id": tenants["golden_b"], "lot_size": 50}).json()
    browser_a = tenants["browser_a"]
    assert browser_a.get(f"/lots/{lot['id']}").status_code == 404
    before = row_counts(app.settings)
    # Opening a lot on B's golden from A's session: 404; without the CSRF token: 403.
    assert browser_a.post(f"/goldens/{tenants['golden_b']}/lots", data={
        "csrf_token": tenants["csrf_a"], "lot_size": "50"}).status_code == 404
    assert browser_a.post(f"/goldens/{tenants['golden_a']}/lots",
                          data={"lot_size": "50"}).status_code == 403
    assert row_counts(app.settings) == before
