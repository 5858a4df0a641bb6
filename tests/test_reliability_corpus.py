"""The bad-input corpus against every front end: each case gets a clear 4xx from the HTTP API
(on SQLite and PostgreSQL) or exit 2 from the CLI, or, for inputs that are odd but valid, the
correct verdict; never a 500 or a traceback, and nothing stored on a refusal.

The corpus is testkit/bad_inputs.py: :func:`bad_images` and :func:`bad_specs` (also fed
to the CLI by test_cli.py and to the API by test_api.py), :func:`more_bad_images`,
:func:`more_bad_specs`, :func:`odd_pairs`, plus the request-level cases built here (1000 files
in one request). ``test_corpus_covers_the_issue`` counts the kinds.
"""

from __future__ import annotations

import functools
import io
import json
import resource
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from service.app import create_app
from testkit.bad_inputs import (
    BadInput,
    OddPair,
    bad_images,
    bad_specs,
    more_bad_images,
    more_bad_specs,
    odd_pairs,
)
from testkit.photos import corpus_photos, jpeg
from testkit.service import (
    BACKENDS,
    auth,
    dangling_files,
    file_count,
    new_key,
    row_counts,
    running_app,
    settings_for,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

_VERDICT_EXIT = {"pass": 0, "fail": 1, "inconclusive": 3}
_MB = 1024 * 1024


def _spec() -> str:
    return json.dumps({"roi": corpus_photos()[3], "tolerances": {"delta_e00": 3.0}})


def _refused_images() -> list[BadInput]:
    return bad_images() + more_bad_images()


def _refused_specs() -> list[BadInput]:
    return bad_specs() + more_bad_specs()


@functools.cache
def _odd() -> list[OddPair]:
    golden, unit, other, _ = corpus_photos()
    return odd_pairs(golden, unit, other)


_REQUEST_KINDS = ("thousand-files-in-one-request",)


def test_corpus_covers_the_issue():
    kinds = ([c.kind for c in _refused_images() + _refused_specs()]
             + [c.kind for c in _odd()] + list(_REQUEST_KINDS))
    assert len(kinds) == len(set(kinds)) >= 25, len(kinds)
    for wanted in ("empty-file", "random-bytes", "truncated-jpeg", "png-decompression-bomb",
                   "sixteen-bit-png-unit", "cmyk-jpeg-unit", "greyscale-pair", "animated-gif",
                   "heic-unit", "svg-as-png", "html-as-jpg", "tiny-8x8", "all-black-unit",
                   "unrelated-products", "identical-images", "spec-malformed-json",
                   "spec-roi-outside", "spec-negative-tolerance", "dotdot-and-unicode-names",
                   *(f"exif-orientation-{n}" for n in range(1, 9))):
        assert wanted in kinds, wanted


# --------------------------------------------------------------------------------------------
# HTTP API


@pytest.fixture(scope="module", params=BACKENDS)
def api(request, tmp_path_factory):
    with running_app(request.param, "corpus", request, tmp_path_factory) as client:
        client.key = new_key(client.settings)
        golden = jpeg(corpus_photos()[0])
        sealed = client.post("/v1/goldens", headers=auth(client.key),
                             data={"name": "corpus", "sku": "CORPUS", "spec": _spec()},
                             files={"images": ("golden.jpg", golden, "image/jpeg")})
        assert sealed.status_code == 201, sealed.text
        client.golden_id = sealed.json()["id"]
        yield client


def _stored(api) -> tuple[dict[str, int], int, list[Path]]:
    data_dir = api.settings.data_dir
    return (row_counts(api.settings), file_count(data_dir),
            sorted((data_dir / "tmp").glob("*")))


def _assert_refused(response, status: int, says: tuple[str, ...], what: str) -> None:
    assert response.status_code == status, (what, response.status_code, response.text)
    detail = response.json()["detail"]
    assert isinstance(detail, str) and any(s in detail.lower() for s in says), (what, detail)
    assert "Traceback" not in response.text and "\n" not in detail, what


def test_every_refusal_answers_its_4xx_on_every_upload_endpoint_and_stores_nothing(api):
    """Each bad photo as the golden to seal, as the unit to inspect and on either side of a
    one-off comparison; each bad spec when sealing and comparing."""
    key, golden = api.key, jpeg(corpus_photos()[0])
    before = _stored(api)
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for case in _refused_images():
        bad = (case.filename, case.data, "application/octet-stream")
        start = time.perf_counter()
        calls = {
            "seal": api.post("/v1/goldens", headers=auth(key), data={"name": "n", "sku": "s"},
                             files={"images": bad}),
            "inspect": api.post(f"/v1/goldens/{api.golden_id}/inspections", headers=auth(key),
                                files={"images": bad}),
            "compare-golden": api.post("/v1/compare", headers=auth(key), files={
                "golden": bad, "unit": ("u.jpg", golden, "image/jpeg")}),
            "compare-unit": api.post("/v1/compare", headers=auth(key), files={
                "golden": ("g.jpg", golden, "image/jpeg"), "unit": bad}),
        }
        elapsed = time.perf_counter() - start
        for endpoint, response in calls.items():
            _assert_refused(response, case.http_status, case.says, f"{case.kind} {endpoint}")
        if "bomb" in case.kind:  # refused from the header: no full decode
            assert elapsed < 4.0, (case.kind, elapsed)
    for case in _refused_specs():
        spec = case.data.decode("utf-8")
        seal = api.post("/v1/goldens", headers=auth(key), data={
            "name": "n", "sku": "s", "spec": spec},
            files={"images": ("g.jpg", golden, "image/jpeg")})
        _assert_refused(seal, 422, case.says, f"{case.kind} seal")
        compare = api.post("/v1/compare", headers=auth(key), data={"spec": spec}, files={
            "golden": ("g.jpg", golden, "image/jpeg"), "unit": ("u.jpg", golden, "image/jpeg")})
        _assert_refused(compare, 422, case.says, f"{case.kind} compare")
    # A 60000 x 60000 RGB decode alone would need 10 GB; the peak grew by far less.
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before) / 1024
    assert grown_mb < 500, f"peak RSS grew by {grown_mb:.0f} MB during the refusals"
    assert _stored(api) == before
    assert dangling_files(api.settings) == []


def test_a_thousand_files_in_one_request_is_refused_early(api):
    files = [("images", (f"u{n}.jpg", b"\xff\xd8\xff" + bytes(64), "image/jpeg"))
             for n in range(1000)]
    before = _stored(api)
    response = api.post(f"/v1/goldens/{api.golden_id}/inspections", headers=auth(api.key),
                        files=files)
    _assert_refused(response, 413, ("too many parts",), "1000 files")
    assert _stored(api) == before


def _exif_of(data: bytes) -> dict:
    with Image.open(io.BytesIO(data)) as image:
        return dict(image.getexif())


@pytest.fixture(scope="module")
def compare_api(tmp_path_factory, request):
    """POST /v1/compare stores nothing, so one backend is enough for the verdicts (the
    stored-inspection test below covers both)."""
    settings = settings_for("sqlite", tmp_path_factory.mktemp("corpus-compare"), request)
    with TestClient(create_app(settings)) as client:
        client.key = new_key(settings)
        yield client


@pytest.mark.parametrize("case", _odd(), ids=lambda c: c.kind)
def test_odd_but_valid_pairs_get_the_correct_verdict_over_http(compare_api, case):
    api = compare_api
    response = api.post("/v1/compare", headers=auth(api.key), data={"spec": _spec()}, files={
        "golden": (case.golden_name, case.golden, "application/octet-stream"),
        "unit": (case.unit_name, case.unit, "application/octet-stream")})
    assert response.status_code == 200, response.text
    report = response.json()["report"]
    assert report["verdict"] in case.verdicts, (case.kind, report["reasons"])
    if case.unit_size is not None:
        assert tuple(report["unit_size"]) == case.unit_size, case.kind


@pytest.mark.parametrize("kind", ["dotdot-and-unicode-names", "exif-orientation-6"])
def test_stored_odd_inputs_keep_their_names_and_are_served_re_encoded(api, kind):
    """The client's file name is data (kept verbatim, never a path); the photo comes back
    with its orientation applied and without the uploaded EXIF."""
    case = next(c for c in _odd() if c.kind == kind)
    data_dir = api.settings.data_dir
    outside_before = sorted(p for p in data_dir.parent.rglob("*") if data_dir not in p.parents)
    response = api.post(f"/v1/goldens/{api.golden_id}/inspections", headers=auth(api.key),
                        files={"images": (case.unit_name, case.unit, "image/jpeg")})
    assert response.status_code == 201, response.text
    record = response.json()
    assert record["verdict"] in case.verdicts
    assert record["images"][0]["filename"] == case.unit_name
    outside_after = sorted(p for p in data_dir.parent.rglob("*") if data_dir not in p.parents)
    assert outside_after == outside_before, "a file name must never become a path"
    served = api.get(f"/v1/inspections/{record['id']}/images/0", headers=auth(api.key))
    assert served.status_code == 200 and served.content != case.unit
    assert _exif_of(served.content) == {}  # nothing of the upload's metadata rides along
    shown = cv2.imdecode(np.frombuffer(served.content, np.uint8), cv2.IMREAD_COLOR)
    width, height = record["images"][0]["width"], record["images"][0]["height"]
    assert shown.shape[:2] == (height, width)
    if case.unit_size is not None:
        assert (width, height) == case.unit_size
        # Pixels as displayed: the re-encoded photo matches the unit before it was rotated.
        unit = corpus_photos()[1]
        assert np.abs(shown[..., ::-1].astype(np.int16) - unit).mean() < 4.0


# --------------------------------------------------------------------------------------------
# CLI




@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("reliability_corpus")
    for case in more_bad_images() + more_bad_specs():
        (directory / case.filename).write_bytes(case.data)
    (directory / "golden.jpg").write_bytes(jpeg(corpus_photos()[0]))
    (directory / "spec.json").write_text(_spec())
    return directory


def _assert_exit_2(code: int, out: str, err: str, says: tuple[str, ...], what: str) -> None:
    assert code == 2 and out == "", (what, code, err)
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("sealcheck: error: "), (what, err)
    assert any(s in lines[0].lower() for s in says), (what, lines[0])


@pytest.mark.parametrize("case", more_bad_images(), ids=lambda c: c.kind)
def test_cli_refuses_the_further_bad_photos_with_exit_2(cli, corpus_dir, case):
    bad, good = corpus_dir / case.filename, corpus_dir / "golden.jpg"
    _assert_exit_2(*cli("compare", good, bad), case.says, case.kind)
    _assert_exit_2(*cli("compare", bad, good), case.says, case.kind)


@pytest.mark.parametrize("case", more_bad_specs(), ids=lambda c: c.kind)
def test_cli_refuses_the_further_bad_specs_with_exit_2(cli, corpus_dir, case):
    good = corpus_dir / "golden.jpg"
    _assert_exit_2(*cli("compare", good, good, "--spec", corpus_dir / case.filename),
                   case.says, case.kind)


@pytest.mark.parametrize("case", _odd(), ids=lambda c: c.kind)
def test_cli_gives_the_odd_but_valid_pairs_their_verdict(cli, corpus_dir, tmp_path, case):
    # The CLI takes paths: a '../' in one is the caller's own path; the unicode stays.
    golden = tmp_path / Path(case.golden_name).name
    unit = tmp_path / case.unit_name.replace("\\", "_").replace("/", "_")
    golden.write_bytes(case.golden)
    unit.write_bytes(case.unit)
    code, out, err = cli("compare", golden, unit, "--spec", corpus_dir / "spec.json", "--json")
    assert "Traceback" not in err
    report = json.loads(out)
    assert report["verdict"] in case.verdicts, (case.kind, report["reasons"])
    assert code == _VERDICT_EXIT[report["verdict"]]
