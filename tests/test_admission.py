"""The admission budget and the photos (issue 25): everything expensive passes one bounded gate
that answers 503 with Retry-After when full, on the API and on the pages; a photo is re-encoded
once into a file and served from it; only the compared photo is decoded, the others are checked
from their headers; a photo whose decode would cost more than the budget is refused."""

from __future__ import annotations

import contextlib
import re
import threading
import time

import cv2
import numpy as np
import pytest

from testkit.bad_inputs import good_image_bytes, png16_rgba, png_with_one_row
from testkit.photos import photo_pair, sha256
from testkit.service import auth, file_count, new_key, row_counts, running_app

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

MAX_PIXELS = 1_000_000  # the test photos are 1000 x 750


@pytest.fixture(scope="module")
def app(request, tmp_path_factory):
    """One worker and no queue: a single held place fills the budget."""
    with running_app("sqlite", "admission", request, tmp_path_factory, workers=1,
                     queue_size=0, max_pixels=MAX_PIXELS) as client:
        client.key = new_key(client.settings)
        yield client


@pytest.fixture(scope="module")
def golden_id(app) -> str:
    golden, _, _ = photo_pair()
    answer = app.post("/v1/goldens", headers=auth(app.key), data={"name": "mug", "sku": "ADM-1"},
                      files=[("images", ("golden.jpg", golden, "image/jpeg")),
                             ("images", ("side.png", good_image_bytes("PNG", (120, 90)),
                                         "image/png"))])
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def _inspect(app, golden_id: str, defect: str | None = None) -> dict:
    _, unit, _ = photo_pair(defect)
    answer = app.post(f"/v1/goldens/{golden_id}/inspections", headers=auth(app.key),
                      files={"images": ("unit.jpg", unit, "image/jpeg")})
    assert answer.status_code == 201, answer.text
    return answer.json()


def _csrf(app) -> str:
    assert app.post("/signin", data={"api_key": app.key}, follow_redirects=False
                    ).status_code == 303
    page = app.get("/goldens")
    return re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page.text).group(1)


@contextlib.contextmanager
def _budget_full(app):
    """Every place in the budget taken by a real job on the app's own pool."""
    pool = app.app.state.service.pool
    release = threading.Event()
    held = app.portal.start_task_soon(pool.run, release.wait, 30)
    deadline = time.monotonic() + 10
    while pool.jobs < pool.capacity:
        assert time.monotonic() < deadline, "the job did not take its place"
        time.sleep(0.01)
    try:
        yield
    finally:
        release.set()
        held.result(timeout=30)


def _derived(app, sha: str, kind: str):
    return app.settings.data_dir / "derived" / sha[:2] / sha[2:4] / f"{sha}.{kind}"


def _busy(answer) -> bool:
    return answer.status_code == 503 and answer.headers.get("retry-after") == "5"


def test_a_full_budget_answers_503_with_retry_after_on_the_api_and_the_pages(app, golden_id):
    inspection = _inspect(app, golden_id)
    golden_url = f"/v1/goldens/{golden_id}"
    cached = app.get(f"{golden_url}/images/0", headers=auth(app.key))
    assert cached.status_code == 200
    csrf = _csrf(app)
    _, unit, _ = photo_pair()
    rows, files = row_counts(app.settings), file_count(app.settings.data_dir)
    with _budget_full(app):
        # A photo not re-encoded yet waits for the budget; one on disk is sent at once.
        refused = app.get(f"{golden_url}/images/1", headers=auth(app.key))
        assert _busy(refused) and "busy" in refused.json()["detail"], refused.status_code
        again = app.get(f"{golden_url}/images/0", headers=auth(app.key))
        assert again.status_code == 200 and again.content == cached.content
        assert _busy(app.post(f"{golden_url}/inspections", headers=auth(app.key),
                              files={"images": ("unit.jpg", unit, "image/jpeg")}))
        # The spec sheet is parsed inside the budget, so a broken one is not even read.
        assert _busy(app.post("/v1/goldens", headers=auth(app.key),
                              data={"name": "n", "sku": "s", "spec": "roi: [1, 2"},
                              files={"images": ("g.jpg", unit, "image/jpeg")}))
        # The pages: the error page, or {"detail"} for the page's script, both with Retry-After.
        form = {"data": {"csrf_token": csrf},
                "files": {"images": ("unit.jpg", unit, "image/jpeg")}}
        page = app.post(f"/goldens/{golden_id}/inspections", **form)
        assert _busy(page) and "busy" in page.text and "<html" in page.text.lower()
        script = app.post(f"/goldens/{golden_id}/inspections",
                          headers={"Accept": "application/json"}, **form)
        assert _busy(script) and "busy" in script.json()["detail"]
        assert _busy(app.get(f"/inspections/{inspection['id']}/photo"))
        assert _busy(app.get(f"/inspections/{inspection['id']}/heat.png"))
    assert (row_counts(app.settings), file_count(app.settings.data_dir)) == (rows, files)
    assert app.get(f"{golden_url}/images/1", headers=auth(app.key)).status_code == 200
    assert app.get(f"/inspections/{inspection['id']}/photo").status_code == 200


def test_a_photo_is_reencoded_once_into_a_file_beside_it_and_then_sent_from_it(app, golden_id):
    inspection = _inspect(app, golden_id, "stain")  # a photo no other test downloads
    sha = inspection["images"][0]["sha256"]
    made = _derived(app, sha, "display.jpg")
    assert not made.exists()  # not at upload: most photos are never downloaded
    url = f"/v1/inspections/{inspection['id']}/images/0"
    first = app.get(url, headers=auth(app.key))
    assert first.status_code == 200 and first.headers["content-type"] == "image/jpeg"
    assert made.read_bytes() == first.content and sha256(first.content) != sha
    written = made.stat()
    second = app.get(url, headers=auth(app.key))
    page = app.get(f"/inspections/{inspection['id']}/photo")  # the page's copy is the same file
    assert second.content == first.content == page.content
    assert (made.stat().st_ino, made.stat().st_mtime_ns) == (written.st_ino, written.st_mtime_ns)
    assert "immutable" in second.headers["cache-control"]


def test_extra_photos_are_checked_from_their_headers_and_never_decoded(app):
    golden, _, _ = photo_pair()
    # Valid header and checksums, data for one row: only a decode could tell.
    one_row = png_with_one_row(900, 800)
    answer = app.post("/v1/goldens", headers=auth(app.key), data={"name": "n", "sku": "ADM-2"},
                      files=[("images", ("golden.jpg", golden, "image/jpeg")),
                             ("images", ("side.png", one_row, "image/png"))])
    assert answer.status_code == 201, answer.text
    side = answer.json()["images"][1]
    assert (side["width"], side["height"], side["format"]) == (900, 800, "png")
    # Downloading it decodes it: refused in words, not a 500.
    shown = app.get(f"/v1/goldens/{answer.json()['id']}/images/1", headers=auth(app.key))
    assert shown.status_code == 422 and "cannot be shown" in shown.json()["detail"]
    # What the header tells is still checked for every photo.
    for extra, status, says in ((png_with_one_row(1200, 900), 413, "more than the limit"),
                                (one_row[:-30], 422, "truncated")):
        refused = app.post("/v1/goldens", headers=auth(app.key),
                           data={"name": "n", "sku": "ADM-3"},
                           files=[("images", ("golden.jpg", golden, "image/jpeg")),
                                  ("images", ("side.png", extra, "image/png"))])
        assert refused.status_code == status and says in refused.json()["detail"], refused.text
        assert refused.json()["detail"].startswith("images[1] (side.png)")


def test_a_photo_whose_decode_costs_more_than_the_budget_is_refused(app):
    rgb = cv2.imdecode(np.frombuffer(photo_pair()[0], np.uint8), cv2.IMREAD_COLOR_RGB)
    rows, files = row_counts(app.settings), file_count(app.settings.data_dir)
    wide = app.post("/v1/goldens", headers=auth(app.key), data={"name": "n", "sku": "ADM-4"},
                    files={"images": ("deep.png", png16_rgba(rgb), "image/png")})
    # 750,000 pixels at 8 bytes: 6 MB, twice the 3 MB an 8-bit RGB photo at the cap takes.
    assert wide.status_code == 413, wide.text
    detail = wide.json()["detail"]
    assert "at 8 bytes each" in detail and "more than the limit of 3 MB" in detail, detail
    assert "8 bits per channel" in detail
    assert (row_counts(app.settings), file_count(app.settings.data_dir)) == (rows, files)
    ok, rgb_png = cv2.imencode(".png", rgb[..., ::-1])
    assert app.post("/v1/goldens", headers=auth(app.key), data={"name": "n", "sku": "ADM-4"},
                    files={"images": ("plain.png", rgb_png.tobytes(), "image/png")}
                    ).status_code == 201


def test_work_in_the_helper_process_survives_the_process_dying():
    """Spec sheets are parsed in a helper process (PyYAML would hold the GIL, and so the event
    loop); a parser that dies fails its own call only, and the next call gets a new one."""
    import asyncio
    import os
    from concurrent.futures.process import BrokenProcessPool

    from service.metrics import Metrics
    from service.work import PipelinePool
    from vision.spec import SpecError, parse_spec

    async def scenario() -> None:
        pool = PipelinePool(workers=1, queue_size=0, metrics=Metrics())
        try:
            async with pool.admit() as admission:
                spec = await admission.run_in_process(parse_spec, "tolerances:\n  ssim_min: 0.7")
                assert spec.tolerances.ssim_min == 0.7
                with pytest.raises(SpecError, match="neither valid JSON nor valid YAML"):
                    await admission.run_in_process(parse_spec, "roi: [1, 2")
                with pytest.raises(BrokenProcessPool):
                    await admission.run_in_process(os._exit, 3)
                assert await admission.run_in_process(abs, -3) == 3
        finally:
            pool.shutdown()

    asyncio.run(scenario())
