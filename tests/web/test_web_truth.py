"""The pages say what the code does (issue 26, part B), through plain HTTP on SQLite and
PostgreSQL: the region wording of the seal, golden and report pages against the report's
``roi_source``; one lot concept (an open lot picked from a list, named by its reference, kept by
"Inspect another unit"); the golden list's small thumbnails, made once and cached."""

from __future__ import annotations

import datetime as dt
import html
import re

import cv2
import numpy as np
import pytest

from service.db import make_engine
from service.gc import collect_garbage
from service.storage import BlobStore
from testkit.photos import jpeg, photo_pair
from testkit.service import auth, new_key, running_app

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

# What each roi_source must be called on the pages, and the words that were wrong before.
REGION_PHRASES = {
    "spec": "region set for this golden",
    "product": "product detected on the golden photo is compared",
    "overlap": "whole area both photos show is compared",
}
WRONG_PHRASES = ("whole photo", "table included")


@pytest.fixture(scope="module")
def app(backend, request, tmp_path_factory):
    with running_app(backend, "web-truth", request, tmp_path_factory) as client:
        yield client


@pytest.fixture(scope="module")
def signed_in(app):
    """A browser (TestClient with its cookie) signed in as a new tenant; its CSRF token."""
    key = new_key(app.settings)
    response = app.post("/signin", data={"api_key": key}, follow_redirects=False)
    assert response.status_code == 303, response.text
    page = app.get("/goldens")
    csrf = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page.text).group(1)
    return {"key": key, "csrf": csrf}


def _text(page: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}"[^>]*>(.*?)</', page, re.S)
    assert found, f"no #{element_id} on the page"
    return html.unescape(re.sub(r"\s+", " ", found.group(1))).strip()


def _close_up() -> tuple[bytes, bytes]:
    """Golden and unit cropped inside the product: nothing stands out from a background."""
    golden, unit, (x, y, w, h) = photo_pair()
    crops = []
    for data in (golden, unit):
        rgb = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
        crops.append(jpeg(np.ascontiguousarray(rgb[y + 10:y + h - 10, x + 10:x + w - 10])))
    return crops[0], crops[1]


def _seal(app, csrf: str, golden: bytes, sku: str, roi=None) -> str:
    form = {"csrf_token": csrf, "name": f"Print {sku}", "sku": sku, "delta_e00": "3"}
    if roi is not None:
        form.update({f"roi_{c}": str(v) for c, v in zip("xywh", roi, strict=True)})
    sealed = app.post("/goldens", data=form,
                      files={"images": ("golden.jpg", golden, "image/jpeg")},
                      follow_redirects=False)
    assert sealed.status_code == 303, sealed.text
    return sealed.headers["location"].rsplit("/", 1)[1]


def _inspect(app, csrf: str, golden_id: str, unit: bytes, **fields) -> str:
    done = app.post(f"/goldens/{golden_id}/inspections", data={"csrf_token": csrf, **fields},
                    files={"images": ("unit.jpg", unit, "image/jpeg")}, follow_redirects=False)
    assert done.status_code == 303, done.text
    return done.headers["location"].rsplit("/", 1)[1]


def _assert_says(sentence: str, source: str) -> None:
    assert REGION_PHRASES[source] in sentence, (source, sentence)
    for other, phrase in REGION_PHRASES.items():
        if other != source:
            assert phrase not in sentence, (source, sentence)
    for wrong in WRONG_PHRASES:
        assert wrong not in sentence.lower(), sentence


def test_the_seal_form_says_what_is_compared_without_a_region(app, signed_in):
    """Before sealing the product is not looked for yet: both cases, neither of them wrong."""
    sentence = _text(app.get("/goldens/new").text, "region-words")
    assert REGION_PHRASES["product"] in sentence and REGION_PHRASES["overlap"] in sentence
    assert "colour card" in sentence
    assert not any(wrong in sentence.lower() for wrong in WRONG_PHRASES), sentence


@pytest.mark.parametrize("case", ["spec", "product", "overlap"])
def test_region_wording_on_golden_and_report_pages_agrees_with_roi_source(app, signed_in, case):
    """Seal with a region, without one (the product stands out from the table) and a close-up
    without one (nothing stands out); the golden page says what will be compared before any
    inspection, and the inspection's report must carry that roi_source."""
    csrf = signed_in["csrf"]
    golden, unit, roi = photo_pair()
    if case == "overlap":
        golden, unit = _close_up()
    golden_id = _seal(app, csrf, golden, f"REGION-{case}".upper(),
                      roi=roi if case == "spec" else None)
    before = _text(app.get(f"/goldens/{golden_id}").text, "region-words")
    _assert_says(before, case)

    inspection_id = _inspect(app, csrf, golden_id, unit)
    report = app.get(f"/v1/inspections/{inspection_id}",
                     headers=auth(signed_in["key"])).json()["report"]
    assert report["roi_source"] == case
    _assert_says(_text(app.get(f"/inspections/{inspection_id}").text, "region-words"),
                 report["roi_source"])
    # With the prepared golden gone from memory (a restart), the page still knows, from the
    # golden's reports.
    app.app.state.service.goldens._items.clear()
    _assert_says(_text(app.get(f"/goldens/{golden_id}").text, "region-words"),
                 report["roi_source"])


def _options(page: str) -> list[tuple[str, bool, str]]:
    select = re.search(r'<select id="lot_id" name="lot_id">(.*?)</select>', page, re.S)
    assert select, "the inspect form has no lot list"
    return [(value, bool(selected), html.unescape(label).strip()) for value, selected, label in
            re.findall(r'<option value="([^"]*)"( selected)?>([^<]*)</option>', select.group(1))]


def test_a_unit_joins_an_open_lot_picked_by_its_reference_and_the_next_stays_in_it(
        app, signed_in):
    csrf = signed_in["csrf"]
    golden, unit, roi = photo_pair()
    golden_id = _seal(app, csrf, golden, "LOTS-1", roi=roi)
    page = app.get(f"/goldens/{golden_id}").text
    assert 'name="lot_id"' in page and not re.search(r'<input[^>]+name="lot_id"', page)
    assert _options(page) == [("", False, "No lot: a single unit")]

    lots = {}
    for reference, size in (("PO-77 lot 3", "3"), ("PO-78", "40")):
        opened = app.post(f"/goldens/{golden_id}/lots", data={
            "csrf_token": csrf, "lot_size": size, "level": "II", "aql_critical": "0",
            "aql_major": "6.5", "aql_minor": "6.5", "reference": reference},
            follow_redirects=False)
        assert opened.status_code == 303, opened.text
        lots[reference] = opened.headers["location"].rsplit("/", 1)[1]

    # Open lots are offered by reference, never by UUID; "Inspect a unit for this lot"
    # preselects it.
    options = _options(app.get(f"/goldens/{golden_id}?lot={lots['PO-78']}").text)
    assert [o[0] for o in options] == ["", lots["PO-78"], lots["PO-77 lot 3"]]
    assert [o[1] for o in options] == [False, True, False]
    assert options[1][2].startswith("PO-78 ·") and options[2][2].startswith("PO-77 lot 3 ·")
    assert not any(re.fullmatch(r"[0-9a-f-]{36}", o[2]) or lots["PO-78"] in o[2]
                   for o in options)
    lot_page = app.get(f"/lots/{lots['PO-78']}").text
    assert f'href="/goldens/{golden_id}?lot={lots["PO-78"]}#inspect"' in lot_page

    # A unit of the lot: its report's "Inspect another unit" stays in the lot.
    first = _inspect(app, csrf, golden_id, unit, unit_label="u1", lot_id=lots["PO-78"])
    report_page = app.get(f"/inspections/{first}").text
    another = re.search(r'id="inspect-another" href="([^"]+)"', report_page).group(1)
    assert another == f"/goldens/{golden_id}?lot={lots['PO-78']}#inspect"
    follow = app.get(another.split("#")[0]).text
    assert [o[0] for o in _options(follow) if o[1]] == [lots["PO-78"]]
    # The golden's recent inspections name the lot by its reference.
    assert "lot PO-78" in follow and f"lot {lots['PO-78']}" not in follow

    # A unit without a lot: "Inspect another unit" leaves nothing chosen.
    single = _inspect(app, csrf, golden_id, unit, unit_label="alone")
    another = re.search(r'id="inspect-another" href="([^"]+)"',
                        app.get(f"/inspections/{single}").text).group(1)
    assert another == f"/goldens/{golden_id}#inspect"

    # A judged lot is no longer offered (lot size 3: sample of 2, all good units accept it).
    for label in ("a", "b"):
        _inspect(app, csrf, golden_id, unit, unit_label=label, lot_id=lots["PO-77 lot 3"])
    api = app.get(f"/v1/lots/{lots['PO-77 lot 3']}", headers=auth(signed_in["key"])).json()
    assert api["verdict"] == "accept"
    options = _options(app.get(f"/goldens/{golden_id}").text)
    assert [o[0] for o in options] == ["", lots["PO-78"]]
    judged = app.get(f"/inspections/{_last_inspection(app, signed_in, lots['PO-77 lot 3'])}")
    assert re.search(r'id="inspect-another" href="([^"]+)"', judged.text).group(1) \
        == f"/goldens/{golden_id}#inspect"


def _last_inspection(app, signed_in, lot_id: str) -> str:
    items = app.get("/v1/inspections", params={"lot_id": lot_id},
                    headers=auth(signed_in["key"])).json()["items"]
    return items[0]["id"]


def test_the_golden_list_shows_small_thumbnails_made_at_sealing_and_cached(app, signed_in):
    golden, _, roi = photo_pair()
    golden_id = _seal(app, signed_in["csrf"], golden, "THUMB-1", roi=roi)
    blobs = BlobStore(app.settings.data_dir)
    made = list((app.settings.data_dir / "derived").rglob("*.thumb.webp"))
    assert made, "no thumbnail was made at sealing"
    listing = app.get("/goldens", params={"sku": "THUMB-1"}).text
    assert f'src="/goldens/{golden_id}/thumb.webp"' in listing
    assert "picture.png" not in listing

    answer = app.get(f"/goldens/{golden_id}/thumb.webp")
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/webp"
    assert "immutable" in answer.headers["cache-control"]
    assert len(answer.content) <= 15_000, len(answer.content)
    thumb = cv2.imdecode(np.frombuffer(answer.content, np.uint8), cv2.IMREAD_COLOR)
    assert max(thumb.shape[:2]) == 320
    picture = cv2.imdecode(np.frombuffer(app.get(f"/goldens/{golden_id}/picture.png").content,
                                         np.uint8), cv2.IMREAD_COLOR)
    small = cv2.resize(picture, thumb.shape[1::-1], interpolation=cv2.INTER_AREA)
    assert np.abs(small.astype(int) - thumb.astype(int)).mean() < 6  # the same picture
    # Made once: the file served is the one made at sealing, and the collector leaves it.
    stamp = {p: p.stat().st_mtime_ns for p in made}
    app.get(f"/goldens/{golden_id}/thumb.webp")
    engine = make_engine(app.settings.database_url)
    try:
        collect_garbage(engine, blobs, dt.timedelta(0))
    finally:
        engine.dispose()
    assert {p: p.stat().st_mtime_ns for p in made} == stamp
    # Another tenant's golden: 404, as for its picture.
    other = new_key(app.settings)
    theirs = app.post("/v1/goldens", headers=auth(other), data={"name": "X", "sku": "X-1"},
                      files={"images": ("g.jpg", golden, "image/jpeg")}).json()["id"]
    assert app.get(f"/goldens/{theirs}/thumb.webp").status_code == 404


def test_a_golden_without_a_thumbnail_gets_one_on_first_read(app, signed_in):
    golden, _, _ = photo_pair("stain")
    golden_id = app.post("/v1/goldens", headers=auth(signed_in["key"]),
                         data={"name": "Old", "sku": "OLD-1"},
                         files={"images": ("g.jpg", golden, "image/jpeg")}).json()["id"]
    for path in (app.settings.data_dir / "derived").rglob("*.thumb.webp"):
        path.unlink()
    first = app.get(f"/goldens/{golden_id}/thumb.webp")
    assert first.status_code == 200
    again = app.get(f"/goldens/{golden_id}/thumb.webp")
    assert again.content == first.content
