"""Lots through the HTTP API on SQLite and PostgreSQL: the plan, units joining with lot_id,
progress and verdict from real inspections, refusals that store nothing, tenant isolation."""

from __future__ import annotations

import json
import uuid

import cv2
import numpy as np
import pytest

from testkit.photos import photo_pair
from testkit.service import (
    BACKENDS,
    auth,
    file_count,
    new_key,
    row_counts,
    running_app,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module", params=BACKENDS)
def api(request, tmp_path_factory):
    with running_app(request.param, "lots", request, tmp_path_factory) as client:
        yield client


def _seal(api, key) -> dict:
    golden, _, roi = photo_pair()
    response = api.post("/v1/goldens", headers=auth(key), data={
        "spec": json.dumps({"roi": roi, "tolerances": {"delta_e00": 3.0}}), "name": "mug",
        "sku": f"MUG-{uuid.uuid4().hex[:6]}"},
        files={"images": ("golden.jpg", golden, "image/jpeg")})
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture(scope="module")
def golden(api, key) -> dict:
    return _seal(api, key)


@pytest.fixture(scope="module")
def photos() -> dict[str, bytes]:
    featureless = np.full((600, 800, 3), 128, np.uint8)  # nothing to register on
    ok, flat = cv2.imencode(".png", featureless)
    assert ok
    return {"good": photo_pair()[1], "stained": photo_pair("stain")[1],
            "flat": flat.tobytes()}


def _inspect(api, key, golden_id: str, photo: bytes, **data):
    return api.post(f"/v1/goldens/{golden_id}/inspections", headers=auth(key), data=data,
                    files={"images": ("unit.jpg", photo, "image/jpeg")})


def test_a_lot_answers_the_iso_plan_with_the_defaults(api, key, golden):
    response = api.post("/v1/lots", headers=auth(key),
                        json={"golden_id": golden["id"], "lot_size": 3000})
    assert response.status_code == 201, response.text
    lot = response.json()
    assert (lot["level"], lot["code_letter"], lot["verdict"]) == ("II", "K", "pending")
    assert {name: (p["aql"], p["sample_size"], p["ac"], p["re"])
            for name, p in lot["plans"].items()} == {
        "critical": (0.0, 125, 0, 1), "major": (2.5, 125, 7, 8), "minor": (4.0, 125, 10, 11)}
    assert (lot["inspected"], lot["to_inspect"]) == (0, 125)
    again = api.get(f"/v1/lots/{lot['id']}", headers=auth(key)).json()
    assert again == lot


def test_units_join_the_lot_and_it_is_judged_from_their_reports(api, key, golden, photos):
    # Lot of 8 at Level II: code A; every class 0/1 on 2 units (critical 0, major and minor 6.5).
    lot = api.post("/v1/lots", headers=auth(key), json={
        "golden_id": golden["id"], "lot_size": 8, "aql": {"major": 6.5, "minor": 6.5},
        "reference": "PO-1 lot 1"}).json()
    assert lot["to_inspect"] == 2 and lot["reference"] == "PO-1 lot 1"

    flat = _inspect(api, key, golden["id"], photos["flat"], lot_id=lot["id"],
                    unit_label="u1")
    assert flat.status_code == 201, flat.text
    assert flat.json()["verdict"] == "inconclusive"
    status = api.get(f"/v1/lots/{lot['id']}", headers=auth(key)).json()
    assert (status["inspected"], status["awaiting_rephotograph"]) == (0, 1)

    good = _inspect(api, key, golden["id"], photos["good"], lot_id=lot["id"], unit_label="u1")
    assert good.json()["verdict"] == "pass"
    assert good.json()["lot"] == {"id": lot["id"], "reference": "PO-1 lot 1",
                                  "verdict": "pending", "inspected": 1, "to_inspect": 2,
                                  "unit_class": None}

    stained = _inspect(api, key, golden["id"], photos["stained"], lot_id=lot["id"],
                       unit_label="u2").json()
    assert stained["verdict"] == "fail"
    unit_class = stained["report"]["defect_class"]
    assert unit_class in ("critical", "major", "minor")
    assert stained["lot"]["unit_class"] == unit_class
    status = api.get(f"/v1/lots/{lot['id']}", headers=auth(key)).json()
    assert status["defective"][unit_class] == 1 and sum(status["defective"].values()) == 1
    assert status["verdict"] == "reject" and status["inspected"] == 2
    assert api.get(f"/v1/inspections?lot_id={lot['id']}", headers=auth(key)).json()[
        "items"][0]["id"] == stained["id"]

    # A judged lot takes no more units, and the refusal stores nothing.
    before, files = row_counts(api.settings), file_count(api.settings.data_dir)
    late = _inspect(api, key, golden["id"], photos["good"], lot_id=lot["id"])
    assert late.status_code == 409 and "already judged (reject" in late.json()["detail"]
    assert row_counts(api.settings) == before and file_count(api.settings.data_dir) == files


def test_lot_ids_that_do_not_fit_are_refused_before_any_work(api, key, golden, photos):
    other = _seal(api, key)
    lot = api.post("/v1/lots", headers=auth(key),
                   json={"golden_id": other["id"], "lot_size": 100}).json()
    before, files = row_counts(api.settings), file_count(api.settings.data_dir)
    wrong_golden = _inspect(api, key, golden["id"], photos["good"], lot_id=lot["id"])
    assert wrong_golden.status_code == 422 and other["id"] in wrong_golden.json()["detail"]
    missing = _inspect(api, key, golden["id"], photos["good"], lot_id=str(uuid.uuid4()))
    assert missing.status_code == 404 and "POST /v1/lots" in missing.json()["detail"]
    assert row_counts(api.settings) == before and file_count(api.settings.data_dir) == files
    # Text that is not a lot id is still a plain label, as before lots existed.
    labelled = _inspect(api, key, golden["id"], photos["good"], lot_id="LOT-2026-11-A")
    assert labelled.status_code == 201 and labelled.json()["lot"] is None
    assert labelled.json()["lot_id"] == "LOT-2026-11-A"


@pytest.mark.parametrize(("body", "status", "words"), [
    ({"lot_size": 100, "aql": {"major": 3.0}}, 422, "not in the sampling table"),
    ({"lot_size": 1}, 422, "lot_size"),
    ({"lot_size": 100, "level": "IV"}, 422, "level"),
    ({"lot_size": 100, "aql": {"cosmetic": 1.0}}, 422, "aql"),
    ({"lot_size": 100, "aql": {"major": -1}}, 422, "0 or positive"),
    ({"lot_size": 100, "golden_id": "nope"}, 404, "Golden sample not found"),
    ({"lot_size": 100, "colour": 1}, 422, "colour"),
])
def test_bad_lots_answer_4xx_naming_the_problem_and_store_nothing(api, key, golden, body,
                                                                   status, words):
    before = row_counts(api.settings)
    response = api.post("/v1/lots", headers=auth(key), json={"golden_id": golden["id"], **body})
    assert response.status_code == status, response.text
    assert words in response.json()["detail"]
    assert row_counts(api.settings) == before


def test_another_tenants_lots_answer_404_and_never_list(api, key, golden, photos):
    lot = api.post("/v1/lots", headers=auth(key),
                   json={"golden_id": golden["id"], "lot_size": 50}).json()
    intruder = new_key(api.settings)
    missing = api.get(f"/v1/lots/{uuid.uuid4()}", headers=auth(intruder))
    theirs = api.get(f"/v1/lots/{lot['id']}", headers=auth(intruder))
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json() == missing.json()
    assert api.get("/v1/lots", headers=auth(intruder)).json()["items"] == []
    # Nor can they open a lot on our golden, or join ours with a golden of their own.
    assert api.post("/v1/lots", headers=auth(intruder),
                    json={"golden_id": golden["id"], "lot_size": 50}).status_code == 404
    own = _seal(api, intruder)
    joined = _inspect(api, intruder, own["id"], photos["good"], lot_id=lot["id"])
    assert joined.status_code == 404
    mine = api.get("/v1/lots", headers=auth(key)).json()["items"]
    assert lot["id"] in [item["id"] for item in mine]
