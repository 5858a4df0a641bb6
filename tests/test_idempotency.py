"""Retries without duplicates: POSTs of goldens, inspections and lots with an Idempotency-Key, on
SQLite and PostgreSQL. The same key and body answer the first answer and create nothing; a
first answer the client never read (it hung up) is still the one its retry gets; duplicates
sent at once make one record; another body with the key is refused; keys expire."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import json
import uuid

import httpx
import pytest
import sqlalchemy as sa

from service.db import make_engine
from testkit.photos import photo_pair
from testkit.server import free_port, stop
from testkit.service import (
    auth,
    dangling_files,
    file_count,
    new_key,
    row_counts,
    running_app,
    settings_for,
    start_server,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def api(backend, request, tmp_path_factory):
    with running_app(backend, "idempotency", request, tmp_path_factory) as client:
        yield client


@pytest.fixture(scope="module")
def golden_id(api, key) -> str:
    golden, _, roi = photo_pair()
    response = api.post("/v1/goldens", headers=auth(key), data={
        "name": "g", "sku": f"IDEM-{uuid.uuid4().hex[:6]}", "spec": json.dumps({"roi": roi})},
        files={"images": ("g.jpg", golden, "image/jpeg")})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _with_key(key: str, idempotency_key: str) -> dict[str, str]:
    return {**auth(key), "Idempotency-Key": idempotency_key}


def _open_lot(client, key, golden_id, **headers):
    return client.post("/v1/lots", headers={**auth(key), **headers},
                       json={"golden_id": golden_id, "lot_size": 500, "reference": "L-1"})


def _inspect(client, key, golden_id, idempotency_key, **fields):
    _, unit, _ = photo_pair("stain")
    return client.post(f"/v1/goldens/{golden_id}/inspections",
                       headers=_with_key(key, idempotency_key), data=fields,
                       files={"images": ("unit.jpg", unit, "image/jpeg")})


def test_an_inspection_posted_three_times_is_one_inspection_and_one_unit_of_its_lot(
        api, key, golden_id):
    lot = _open_lot(api, key, golden_id).json()
    before = row_counts(api.settings)
    retry = str(uuid.uuid4())
    answers = [_inspect(api, key, golden_id, retry, lot_id=lot["id"]) for _ in range(3)]
    assert [a.status_code for a in answers] == [201, 201, 201]
    assert answers[0].content == answers[1].content == answers[2].content
    assert "Idempotent-Replayed" not in answers[0].headers
    assert answers[2].headers["Idempotent-Replayed"] == "true"
    after = row_counts(api.settings)
    assert after["inspections"] == before["inspections"] + 1
    assert after["inspection_images"] == before["inspection_images"] + 1
    listed = api.get("/v1/inspections", headers=auth(key), params={"lot_id": lot["id"]}).json()
    assert [i["id"] for i in listed["items"]] == [answers[0].json()["id"]]
    assert api.get(f"/v1/lots/{lot['id']}", headers=auth(key)).json()["inspected"] == 1


def test_duplicates_sent_at_once_make_one_inspection_and_one_answer(api, key, golden_id):
    lot = _open_lot(api, key, golden_id).json()
    before = row_counts(api.settings)
    retry = str(uuid.uuid4())
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: _inspect(api, key, golden_id, retry,
                                                   lot_id=lot["id"]), range(4)))
    assert [a.status_code for a in answers] == [201] * 4, [a.text for a in answers]
    assert len({a.content for a in answers}) == 1
    assert row_counts(api.settings)["inspections"] == before["inspections"] + 1
    assert api.get(f"/v1/lots/{lot['id']}", headers=auth(key)).json()["inspected"] == 1


def test_goldens_and_lots_posted_again_with_their_key_are_not_created_again(api, key,
                                                                           golden_id):
    golden, _, _ = photo_pair()
    retry = str(uuid.uuid4())
    sku = f"ONCE-{uuid.uuid4().hex[:6]}"
    before = row_counts(api.settings)
    sealed = [api.post("/v1/goldens", headers=_with_key(key, retry), data={
        "name": "g", "sku": sku}, files={"images": ("g.jpg", golden, "image/jpeg")})
        for _ in range(2)]
    assert [s.status_code for s in sealed] == [201, 201]
    assert sealed[0].content == sealed[1].content and sealed[0].json()["version"] == 1
    lot_key = str(uuid.uuid4())
    lots = [_open_lot(api, key, golden_id, **{"Idempotency-Key": lot_key}) for _ in range(2)]
    assert [lot.status_code for lot in lots] == [201, 201]
    assert lots[0].content == lots[1].content
    after = row_counts(api.settings)
    assert (after["goldens"], after["lots"]) == (before["goldens"] + 1, before["lots"] + 1)
    # The key is the tenant's own: another tenant's same key is another request.
    other = new_key(api.settings)
    assert _open_lot(api, other, golden_id, **{"Idempotency-Key": lot_key}).status_code == 404


def test_the_same_key_with_another_body_or_route_is_refused(api, key, golden_id):
    retry = str(uuid.uuid4())
    assert _inspect(api, key, golden_id, retry, unit_label="A").status_code == 201
    before = row_counts(api.settings)
    for refused in (_inspect(api, key, golden_id, retry, unit_label="B"),
                    _open_lot(api, key, golden_id, **{"Idempotency-Key": retry})):
        assert refused.status_code == 422, refused.text
        assert "already used" in refused.json()["detail"]
        assert "new key" in refused.json()["detail"]
    assert row_counts(api.settings) == before


def test_a_refused_request_keeps_no_answer_and_a_bad_key_is_refused(api, key, golden_id):
    retry = str(uuid.uuid4())
    bad = api.post(f"/v1/goldens/{golden_id}/inspections", headers=_with_key(key, retry),
                   files={"images": ("u.jpg", b"not a photo", "image/jpeg")})
    assert bad.status_code == 415
    # Nothing was created, so the key is free: the fixed request runs.
    assert _inspect(api, key, golden_id, retry).status_code == 201
    for header in ("x" * 256, "a b"):
        refused = _open_lot(api, key, golden_id, **{"Idempotency-Key": header})
        assert refused.status_code == 422 and "Idempotency-Key" in refused.json()["detail"]


def test_sealcheck_gc_expires_keys_after_24_hours(api, key, golden_id, cli, monkeypatch):
    from service.db import IdempotentRequest

    retry = str(uuid.uuid4())
    first = _open_lot(api, key, golden_id, **{"Idempotency-Key": retry})
    engine = make_engine(api.settings.database_url)
    try:
        with engine.begin() as connection:
            connection.execute(sa.update(IdempotentRequest)
                               .where(IdempotentRequest.key == retry)
                               .values(created_at=dt.datetime.now(dt.UTC)
                                       - dt.timedelta(hours=25)))
        monkeypatch.setenv("SEALCHECK_DATA_DIR", str(api.settings.data_dir))
        monkeypatch.setenv("SEALCHECK_DATABASE_URL", api.settings.database_url)
        code, out, err = cli("gc")
        assert code == 0, err
        assert "expired" in out and "Idempotency-Key" in out
        with engine.connect() as connection:
            assert connection.scalar(sa.select(sa.func.count()).select_from(IdempotentRequest)
                                     .where(IdempotentRequest.key == retry)) == 0
    finally:
        engine.dispose()
    again = _open_lot(api, key, golden_id, **{"Idempotency-Key": retry})
    assert again.status_code == 201 and again.json()["id"] != first.json()["id"]


def test_the_header_is_documented_on_each_creating_post(api):
    paths = api.get("/openapi.json").json()["paths"]
    for path in ("/v1/goldens", "/v1/goldens/{golden_id}/inspections", "/v1/lots"):
        parameters = paths[path]["post"].get("parameters", [])
        assert any(p["in"] == "header" and p["name"] == "Idempotency-Key"
                   for p in parameters), path


def test_an_answer_the_client_never_read_is_the_one_its_retry_gets(backend, request,
                                                                   tmp_path):
    """A real server; the client hangs up before the inspection's answer comes, then retries
    (twice, and twice more at once)."""
    settings = settings_for(backend, tmp_path, request)
    key = new_key(settings)
    process = start_server(settings, port := free_port(), tmp_path / "server.log")
    base = f"http://127.0.0.1:{port}"
    try:
        golden, unit, _ = photo_pair("stain")
        with httpx.Client(base_url=base, timeout=60) as client:
            golden_id = client.post("/v1/goldens", headers=auth(key), data={
                "name": "g", "sku": "DROP-1"}, files={"images": ("g.jpg", golden,
                                                                 "image/jpeg")}).json()["id"]
            lot = _open_lot(client, key, golden_id).json()
        retry = str(uuid.uuid4())

        def post(timeout: float) -> httpx.Response:
            with httpx.Client(base_url=base, timeout=timeout) as client:
                return _inspect(client, key, golden_id, retry, lot_id=lot["id"])

        with pytest.raises(httpx.ReadTimeout):
            post(0.05)  # the answer is lost: the client gave up and closed the connection
        answers = [post(60), post(60)]
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            answers += list(pool.map(post, [60, 60]))
        assert [a.status_code for a in answers] == [201] * 4, [a.text for a in answers]
        assert len({a.content for a in answers}) == 1
        with httpx.Client(base_url=base, timeout=60) as client:
            assert client.get(f"/v1/lots/{lot['id']}", headers=auth(key)).json()[
                "inspected"] == 1
        assert row_counts(settings)["inspections"] == 1
        assert dangling_files(settings) == [] and file_count(tmp_path) > 0
    finally:
        stop(process)
