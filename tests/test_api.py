"""The HTTP API through TestClient, on SQLite and on PostgreSQL: sealing, inspecting, comparing,
listing, tenant isolation, keys at rest, bad uploads, and the worker pool's back-pressure."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import threading
import uuid

import cv2
import httpx
import numpy as np
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from service.app import create_app
from service.errors import Busy
from service.http_errors import error_response
from service.metrics import Metrics
from service.work import PipelinePool
from testkit.bad_inputs import bad_images, bad_specs, good_image_bytes
from testkit.photos import photo_pair, sha256
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
def api(backend, request, tmp_path_factory):
    """A running app (lifespan included) on a fresh data directory, per database backend."""
    with running_app(backend, "api", request, tmp_path_factory) as client:
        yield client


@pytest.fixture(scope="module")
def sealed(api, key):
    """One golden sealed twice (versions 1 and 2), with its spec's ROI around the product."""
    golden, _, roi = photo_pair()
    spec = json.dumps({"roi": roi, "tolerances": {"delta_e00": 3.0}})
    sku = f"MUG-{uuid.uuid4().hex[:6]}"
    answers = []
    for name in ("first seal", "second seal"):
        response = api.post("/v1/goldens", headers=auth(key), data={
            "spec": spec, "name": name, "sku": sku},
            files=[("images", ("golden.jpg", golden, "image/jpeg")),
                   ("images", ("side.png", good_image_bytes("PNG", (120, 90)), "image/png"))])
        assert response.status_code == 201, response.text
        answers.append(response.json())
    return answers


@pytest.fixture(scope="module")
def inspected(api, key, sealed):
    """Inspections of an identical unit and of a unit with a stain, against version 2."""
    golden_id = sealed[1]["id"]
    out = {}
    for label, defect in (("good", None), ("stained", "stain")):
        _, unit, _ = photo_pair(defect)
        response = api.post(f"/v1/goldens/{golden_id}/inspections", headers=auth(key),
                            data={"unit_label": f"unit {label}", "lot_id": "LOT-1"},
                            files={"images": ("unit.jpg", unit, "image/jpeg")})
        assert response.status_code == 201, response.text
        out[label] = response.json()
    return out


def test_sealing_answers_the_images_and_resealing_adds_a_version(api, key, sealed):
    first, second = sealed
    golden, _, roi = photo_pair()
    assert (first["version"], second["version"]) == (1, 2)
    assert first["sku"] == second["sku"] and first["id"] != second["id"]
    assert dt.datetime.fromisoformat(second["sealed_at"]) >= dt.datetime.fromisoformat(
        first["sealed_at"])
    primary, side = second["images"]
    assert primary["sha256"] == sha256(golden)
    assert (primary["width"], primary["height"], primary["format"]) == (1000, 750, "jpeg")
    assert (side["width"], side["height"], side["format"]) == (120, 90, "png")
    assert second["spec"]["roi"] == roi and second["spec"]["tolerances"]["delta_e00"] == 3.0
    # The old version stays readable and unchanged.
    old = api.get(f"/v1/goldens/{first['id']}", headers=auth(key))
    assert old.status_code == 200 and old.json() == first
    # The photo is served re-encoded (never the uploaded bytes), with the uploaded pixels.
    photo = api.get(f"/v1/goldens/{first['id']}/images/0", headers=auth(key))
    assert photo.status_code == 200 and photo.headers["content-type"] == "image/jpeg"
    assert sha256(photo.content) != sha256(golden)
    assert _mean_abs_difference(photo.content, golden) < 2.0


def _mean_abs_difference(served: bytes, uploaded: bytes) -> float:
    a, b = (cv2.imdecode(np.frombuffer(d, np.uint8), cv2.IMREAD_COLOR) for d in (served, uploaded))
    assert a.shape == b.shape
    return float(np.abs(a.astype(np.int16) - b).mean())


def test_goldens_list_pages_newest_first_and_filters_by_sku(api, key, sealed):
    sku = sealed[0]["sku"]
    page = api.get("/v1/goldens", headers=auth(key), params={"sku": sku, "limit": 1}).json()
    assert [g["version"] for g in page["items"]] == [2]
    page2 = api.get("/v1/goldens", headers=auth(key),
                    params={"sku": sku, "limit": 1, "cursor": page["next_cursor"]}).json()
    assert [g["version"] for g in page2["items"]] == [1] and page2["next_cursor"] is None
    none = api.get("/v1/goldens", headers=auth(key), params={"sku": "NO-SUCH-SKU"}).json()
    assert none == {"items": [], "next_cursor": None}
    bad = api.get("/v1/goldens", headers=auth(key), params={"cursor": "garbage!"})
    assert bad.status_code == 400 and "cursor" in bad.json()["detail"]


def test_sku_is_exact_and_sku_contains_finds_any_part_ignoring_case(api, key, sealed):
    """`sku` lists one product code's versions, exactly; `sku_contains` is the web pages'
    search (any part, any case, % and _ literal). The schema says which is which."""
    sku = sealed[0]["sku"]  # "MUG-" and six hex digits

    def skus(**params) -> list[tuple[str, int]]:
        response = api.get("/v1/goldens", headers=auth(key), params=params)
        assert response.status_code == 200, response.text
        return [(g["sku"], g["version"]) for g in response.json()["items"]]

    assert skus(sku=sku) == [(sku, 2), (sku, 1)]
    assert skus(sku=sku.lower()) == []  # exact and case-sensitive
    assert skus(sku_contains=sku.lower()[2:]) == [(sku, 2), (sku, 1)]
    assert skus(sku_contains=sku[-4:].upper(), sku=sku) == [(sku, 2), (sku, 1)]
    assert skus(sku_contains="%") == [] and skus(sku_contains="MUG_") == []
    parameters = {p["name"]: p.get("description", "") for p in
                  api.get("/openapi.json").json()["paths"]["/v1/goldens"]["get"]["parameters"]}
    assert "case-sensitive" in parameters["sku"]
    assert "ignoring case" in parameters["sku_contains"]


def test_docs_and_redoc_load_their_files_from_this_server(api):
    """Swagger UI and ReDoc come with the package: no page asks another host for anything."""
    for page, assets in (("/docs", ("swagger-ui-bundle.js", "swagger-ui.css")),
                         ("/redoc", ("redoc.standalone.js",))):
        html = api.get(page)
        assert html.status_code == 200 and "<html" in html.text.lower()
        urls = re.findall(r"""(?:src|href|url)\s*[=:(]\s*['"]([^'"]+)['"]""", html.text)
        assert urls and all(u.startswith("/") and not u.startswith("//") for u in urls), urls
        for name in assets:
            url = next(u for u in urls if u.endswith(name))
            served = api.get(url)
            assert served.status_code == 200 and len(served.content) > 100_000, url


def test_identical_unit_passes_and_stained_unit_fails(api, key, sealed, inspected):
    good, stained = inspected["good"], inspected["stained"]
    assert good["verdict"] == "pass", good["report"]["reasons"]
    assert stained["verdict"] == "fail", stained["report"]["reasons"]
    assert stained["report"]["defects"]["regions"], "the stain must be found"
    assert good["golden_id"] == sealed[1]["id"] and good["golden_version"] == 2
    assert good["unit_label"] == "unit good" and good["lot_id"] == "LOT-1"
    assert good["report"]["spec"]["tolerances"]["delta_e00"] == 3.0  # the golden's spec
    # Stored and readable again, identical.
    again = api.get(f"/v1/inspections/{stained['id']}", headers=auth(key))
    assert again.status_code == 200 and again.json() == stained
    _, unit, _ = photo_pair("stain")
    photo = api.get(f"/v1/inspections/{stained['id']}/images/0", headers=auth(key))
    assert stained["images"][0]["sha256"] == sha256(unit)  # the original, stored unaltered
    assert photo.status_code == 200 and _mean_abs_difference(photo.content, unit) < 2.0


def test_overlay_and_defect_map_are_golden_sized_pngs(api, key, inspected):
    stained = inspected["stained"]
    overlay = api.get(stained["overlay_url"], headers=auth(key))
    defect_map = api.get(stained["defect_map_url"], headers=auth(key))
    assert overlay.headers["content-type"] == defect_map.headers["content-type"] == "image/png"
    overlay_rgb = cv2.imdecode(np.frombuffer(overlay.content, np.uint8), cv2.IMREAD_COLOR)
    heat = cv2.imdecode(np.frombuffer(defect_map.content, np.uint8), cv2.IMREAD_UNCHANGED)
    assert overlay_rgb.shape == (750, 1000, 3) and heat.shape == (750, 1000)
    x, y, w, h = stained["report"]["defects"]["regions"][0]["bbox"]
    assert heat[y:y + h, x:x + w].max() > 128 > np.median(heat)


def test_inspections_list_filters(api, key, sealed, inspected):
    golden_id = sealed[1]["id"]
    listed = api.get("/v1/inspections", headers=auth(key), params={"golden_id": golden_id})
    assert [i["id"] for i in listed.json()["items"]] == [inspected["stained"]["id"],
                                                         inspected["good"]["id"]]
    fails = api.get("/v1/inspections", headers=auth(key), params={"verdict": "fail"}).json()
    assert [i["id"] for i in fails["items"]] == [inspected["stained"]["id"]]
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)).isoformat()
    assert api.get("/v1/inspections", headers=auth(key),
                   params={"since": later}).json()["items"] == []
    earlier = inspected["good"]["created_at"]
    assert len(api.get("/v1/inspections", headers=auth(key),
                       params={"since": earlier}).json()["items"]) == 2
    page = api.get("/v1/inspections", headers=auth(key), params={"limit": 1}).json()
    rest = api.get("/v1/inspections", headers=auth(key),
                   params={"cursor": page["next_cursor"]}).json()
    assert [i["id"] for i in page["items"] + rest["items"]] == [inspected["stained"]["id"],
                                                               inspected["good"]["id"]]
    bad = api.get("/v1/inspections", headers=auth(key), params={"verdict": "maybe"})
    assert bad.status_code == 422 and "verdict" in bad.json()["detail"]


def test_compare_judges_the_pair_and_stores_nothing(api, key):
    golden, unit, roi = photo_pair("stain")
    rows, files = row_counts(api.settings), file_count(api.settings.data_dir)
    response = api.post("/v1/compare", headers=auth(key),
                        data={"spec": json.dumps({"roi": roi})},
                        files={"golden": ("g.jpg", golden, "image/jpeg"),
                               "unit": ("u.jpg", unit, "image/jpeg")})
    assert response.status_code == 200, response.text
    assert response.json()["report"]["verdict"] == "fail"
    assert row_counts(api.settings) == rows and file_count(api.settings.data_dir) == files


def test_another_tenants_ids_answer_404_like_missing_ones(api, key, sealed, inspected):
    intruder = new_key(api.settings)
    golden_id, inspection_id = sealed[1]["id"], inspected["good"]["id"]
    missing = str(uuid.uuid4())
    unit = photo_pair()[1]
    calls = [
        ("GET", "/v1/goldens/{g}", {}),
        ("GET", "/v1/goldens/{g}/images/0", {}),
        ("POST", "/v1/goldens/{g}/inspections",
         {"files": {"images": ("u.jpg", unit, "image/jpeg")}}),
        ("GET", "/v1/inspections/{i}", {}),
        ("GET", "/v1/inspections/{i}/overlay.png", {}),
        ("GET", "/v1/inspections/{i}/defect_map.png", {}),
        ("GET", "/v1/inspections/{i}/images/0", {}),
        ("GET", "/v1/inspections?golden_id={g}", {}),
    ]
    rows = row_counts(api.settings)
    for method, template, kwargs in calls:
        theirs = api.request(method, template.format(g=golden_id, i=inspection_id),
                             headers=auth(intruder), **kwargs)
        absent = api.request(method, template.format(g=missing, i=missing),
                             headers=auth(intruder), **kwargs)
        assert theirs.status_code == 404, (template, theirs.text)
        assert theirs.json() == absent.json(), template
        # The owner still sees it (the 404 is about the tenant, not the id).
        mine = api.request(method, template.format(g=golden_id, i=inspection_id),
                           headers=auth(key), **({} if method == "POST" else kwargs))
        assert mine.status_code != 404, template
    # Lists never show another tenant's rows.
    assert api.get("/v1/goldens", headers=auth(intruder)).json()["items"] == []
    assert api.get("/v1/inspections", headers=auth(intruder)).json()["items"] == []
    assert row_counts(api.settings)["inspections"] == rows["inspections"]


def test_keys_are_required_and_never_stored_in_plaintext(api, key):
    assert api.get("/v1/goldens").status_code == 401
    wrong = api.get("/v1/goldens", headers=auth(key + "x"))
    assert wrong.status_code == 401 and "unknown API key" in wrong.json()["detail"]
    assert api.get("/v1/goldens", headers={"Authorization": f"Basic {key}"}).status_code == 401
    settings = api.settings
    engine = sa.create_engine(settings.database_url)
    with engine.connect() as connection:
        dump = json.dumps([[list(map(str, row)) for row in connection.execute(
            sa.text(f"SELECT * FROM {table}"))] for table in ("tenants", "api_keys")])
    engine.dispose()
    secret = key.removeprefix("sck_")
    assert secret not in dump and sha256(key.encode()) in dump
    if settings.database_url.startswith("sqlite"):  # the raw file and its WAL too
        raw = b"".join(p.read_bytes() for p in settings.data_dir.glob("sealcheck.db*"))
        assert secret.encode() not in raw


def _bad_requests() -> list[tuple[str, dict, int, tuple[str, ...]]]:
    """(kind, request kwargs for POST /v1/goldens, status, fragments the detail must hold)."""
    golden = photo_pair()[0]
    good_fields = {"name": "mug", "sku": "BAD-INPUT"}
    whole = httpx.Request("POST", "http://test/v1/goldens", data=good_fields,
                          files={"images": ("golden.jpg", golden, "image/jpeg")})
    body, content_type = whole.read(), whole.headers["Content-Type"]
    cases = []
    status_of = {"random-bytes": 415, "svg-as-png": 415, "html-as-jpg": 415, "gif-as-jpg": 415,
                 "pdf-as-jpg": 415, "png-decompression-bomb": 413}
    for case in bad_images():
        cases.append((case.kind, {"data": good_fields, "files": [
            ("images", ("golden.jpg", golden, "image/jpeg")),
            ("images", (case.filename, case.data, "application/octet-stream"))]},
            status_of.get(case.kind, 422), case.says))
    for case in bad_specs():
        if case.kind == "spec-roi-outside":
            says = ("outside",)
        else:
            says = case.says
        cases.append((case.kind, {"data": {**good_fields, "spec": case.data.decode()},
                                  "files": {"images": ("golden.jpg", golden, "image/jpeg")}},
                      422, says))
    cases += [
        ("images-field-misnamed", {"data": good_fields, "files": {
            "image": ("g.jpg", golden, "image/jpeg")}}, 422, ("images is missing",)),
        ("urlencoded-form", {"data": good_fields}, 415, ("multipart/form-data",)),
        ("no-sku", {"data": {"name": "mug"},
                    "files": {"images": ("g.jpg", golden, "image/jpeg")}}, 422,
         ("sku is missing",)),
        ("json-body", {"json": {"name": "mug"}}, 415, ("multipart/form-data",)),
        ("no-boundary", {"content": b"x", "headers": {"Content-Type": "multipart/form-data"}},
         400, ("boundary",)),
        ("upload-cut-short", {"content": body[:-10], "headers": {"Content-Type": content_type}},
         400, ("cut short",)),
        ("strip-3000x16", {"data": good_fields, "files": {"images": (
            "strip.png", good_image_bytes("PNG", (3000, 16)), "image/png")}}, 422,
         ("strip rather than a product photo",)),
        ("too-many-pixels", {"data": good_fields, "files": {"images": (
            "big.jpg", good_image_bytes("JPEG", (1100, 800)), "image/jpeg")}}, 413,
         ("more than the limit",)),
        ("too-many-bytes", {"data": good_fields,
                            "files": {"images": ("huge.jpg", golden + b"\0" * 600_001,
                                                 "image/jpeg")}}, 413, ("larger than the limit",)),
    ]
    return cases


@pytest.fixture(scope="module")
def strict_api(backend, request, tmp_path_factory):
    """An app with small caps, on the same backend as `api`, for the size limits."""
    with running_app(backend, "strict", request, tmp_path_factory, max_pixels=800_000,
                     max_upload_bytes=600_000) as client:
        yield client


def test_bad_uploads_answer_4xx_with_a_fix_and_store_nothing(strict_api):
    key = new_key(strict_api.settings)
    cases = _bad_requests()
    assert len({kind for kind, *_ in cases}) >= 10
    rows, files = row_counts(strict_api.settings), file_count(strict_api.settings.data_dir)
    for kind, kwargs, status, says in cases:
        headers = {**auth(key), **kwargs.pop("headers", {})}
        response = strict_api.post("/v1/goldens", headers=headers, **kwargs)
        detail = response.json().get("detail", "")
        assert response.status_code == status, (kind, response.status_code, detail)
        assert isinstance(detail, str) and any(s in detail.lower() for s in says), (kind, detail)
        assert "Traceback" not in response.text
    assert row_counts(strict_api.settings) == rows
    assert file_count(strict_api.settings.data_dir) == files
    assert dangling_files(strict_api.settings) == []


def test_metrics_count_requests_and_pipeline_stages(api, inspected):
    text = api.get("/metrics").text
    assert 'sealcheck_http_requests_total{method="POST",route="/v1/goldens/{golden_id}/' \
           'inspections",status="201"}' in text
    for stage in ("decode", "prepare_golden", "register", "encode_png", "store"):
        assert f'sealcheck_pipeline_stage_seconds_count{{stage="{stage}"}}' in text
    assert "sealcheck_queue_depth" in text
    # Sealing filled the cache: no inspection prepared the golden again.
    assert 'sealcheck_golden_cache_total{result="hit"}' in text
    assert 'sealcheck_golden_cache_total{result="miss"}' not in text
    assert api.get("/healthz").json() == {"status": "ok"}
    assert api.get("/readyz").status_code == 200
    docs = api.get("/openapi.json").json()
    body = docs["paths"]["/v1/goldens"]["post"]["requestBody"]["content"]
    assert "images" in body["multipart/form-data"]["schema"]["properties"]


def test_full_queue_answers_503_with_retry_after():
    async def scenario():
        pool = PipelinePool(workers=1, queue_size=1, metrics=Metrics())
        release = threading.Event()
        running = [asyncio.ensure_future(pool.run(release.wait, 10)) for _ in range(2)]
        await asyncio.sleep(0.05)
        with pytest.raises(Busy) as refused:
            await pool.run(release.wait, 10)
        release.set()
        assert await asyncio.gather(*running) == [True, True]
        assert pool.jobs == 0
        pool.shutdown()
        return refused.value

    refused = error_response(asyncio.run(scenario()))
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "5"


def test_settings_that_make_no_sense_are_refused_at_start(capsys, monkeypatch):
    from service.cli import main
    from service.settings import Settings, SettingsError

    with pytest.raises(SettingsError, match="SEALCHECK_MAX_UPLOAD_BYTES must be a whole"):
        Settings.from_env({"SEALCHECK_MAX_UPLOAD_BYTES": "25MB"})
    with pytest.raises(SettingsError, match="SQLite or PostgreSQL"):
        Settings.from_env({"SEALCHECK_DATABASE_URL": "mysql://root@localhost/x"})
    defaults = Settings.from_env({"SEALCHECK_DATA_DIR": "/srv/sealcheck"})
    assert defaults.database_url == "sqlite:////srv/sealcheck/sealcheck.db"
    assert defaults.max_upload_bytes == 25 * 1024 * 1024 and defaults.max_pixels == 80_000_000
    assert defaults.queue_size == 2 * defaults.workers
    assert Settings.from_env({"SEALCHECK_DATABASE_URL": "postgresql://u@h/db"}).database_url \
        == "postgresql+psycopg://u@h/db"
    monkeypatch.setenv("SEALCHECK_WORKERS", "0")
    assert main(["serve"]) == 2
    assert main(["serve", "--port", "70000"]) == 2
    assert main(["keys", "create"]) == 2
    errors = capsys.readouterr().err.splitlines()
    assert len(errors) == 3 and "SEALCHECK_WORKERS must be at least 1" in errors[0]


def test_golden_cache_builds_once_for_concurrent_misses_and_evicts_the_oldest():
    from service.work import GoldenCache

    cache = GoldenCache(size=2)
    builds = []

    def build():
        builds.append(1)
        threading.Event().wait(0.05)  # long enough for the others to miss too
        return "prepared"

    threads = [threading.Thread(target=cache.get_or_build, args=("a", build)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(builds) == 1 and cache.get_or_build("a", build) == ("prepared", True)
    cache.put("b", 2)
    cache.get("a")  # a is now the most recently used
    cache.put("c", 3)
    assert cache.get("b") is None and cache.get("a") == "prepared" and len(cache) == 2


def test_busy_server_answers_503_and_health_stays_up(tmp_path, request):
    settings = settings_for("sqlite", tmp_path, request, workers=1, queue_size=0)
    key = new_key(settings)
    golden, unit, _ = photo_pair()
    with TestClient(create_app(settings)) as client:
        golden_id = client.post("/v1/goldens", headers=auth(key), data={"name": "n", "sku": "s"},
                                files={"images": ("g.jpg", golden, "image/jpeg")}).json()["id"]
        url = f"/v1/goldens/{golden_id}/inspections"
        first: list = []
        worker = threading.Thread(target=lambda: first.append(client.post(
            url, headers=auth(key), files={"images": ("u.jpg", unit, "image/jpeg")})))
        worker.start()
        while client.get("/readyz").json()["pipeline_jobs"] == 0 and worker.is_alive():
            pass  # until the first inspection holds the only worker
        busy = client.post(url, headers=auth(key), files={"images": ("u.jpg", unit, "image/jpeg")})
        health = client.get("/healthz")
        worker.join()
    assert first[0].status_code == 201
    assert busy.status_code == 503 and busy.headers["Retry-After"] == "5"
    assert "busy" in busy.json()["detail"] and health.status_code == 200
    assert row_counts(settings)["inspections"] == 1
