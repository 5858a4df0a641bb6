"""Storage failures, real ones: a small file system (a tmpfs mounted for the test) that fills up
or turns read-only, and PostgreSQL whose connections are cut. They answer 507/503 with one line
and Retry-After, /readyz says not-ready until storage works again, what was acknowledged before
stays whole, and no file is left that no row names."""

from __future__ import annotations

import json
import time

import cv2
import numpy as np
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from service.app import create_app
from service.db import make_engine, referenced_blobs
from service.settings import Settings
from service.storage import BlobStore
from testkit.photos import jpeg, photo_pair
from testkit.proxy import TcpProxy
from testkit.service import BACKENDS, auth, dangling_files, new_key, row_counts, settings_for
from testkit.small_fs import fill, mounted_tmpfs, remounted

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

MB = 1024 * 1024


def _stored_files(data_dir) -> set[str]:
    return {sha for sha, _ in BlobStore(data_dir).files()}


def _named_files(settings) -> set[str]:
    engine = make_engine(settings.database_url)
    try:
        with engine.connect() as connection:
            return referenced_blobs(connection)
    finally:
        engine.dispose()


def _seal(client, key, sku="FULL-1"):
    golden, _, roi = photo_pair()
    return client.post("/v1/goldens", headers=auth(key),
                       data={"name": "g", "sku": sku, "spec": json.dumps({"roi": roi})},
                       files={"images": ("g.jpg", golden, "image/jpeg")})


def _unit(quality: int) -> bytes:
    """The stained unit, encoded anew: other bytes each time, so each upload writes files."""
    rgb = cv2.imdecode(np.frombuffer(photo_pair("stain")[1], np.uint8), cv2.IMREAD_COLOR)
    return jpeg(rgb[..., ::-1], quality)


def _inspect(client, key, golden_id, label, quality=92):
    unit = _unit(quality)
    return client.post(f"/v1/goldens/{golden_id}/inspections", headers=auth(key),
                       data={"unit_label": label},
                       files={"images": ("u.jpg", unit, "image/jpeg")})


def _one_line(response) -> str:
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail and "Traceback" not in detail
    return detail


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_full_disk_answers_507_is_not_ready_loses_nothing_and_leaves_no_orphans(
        backend, request, tmp_path, cli, monkeypatch):
    with mounted_tmpfs(tmp_path / "small", "8m") as data_dir:
        settings = settings_for(backend, data_dir, request, max_upload_bytes=MB)
        key = new_key(settings)
        with TestClient(create_app(settings)) as client:
            sealed = _seal(client, key)
            assert sealed.status_code == 201, sealed.text
            golden_id = sealed.json()["id"]
            first = _inspect(client, key, golden_id, "before the disk filled")
            assert first.status_code == 201, first.text
            acknowledged = client.get(f"/v1/inspections/{first.json()['id']}",
                                      headers=auth(key)).json()
            files_before, rows_before = _stored_files(data_dir), row_counts(settings)

            fill(data_dir / "filler")
            for attempt in range(3):
                refused = _inspect(client, key, golden_id, f"while full {attempt}", 80 + attempt)
                assert refused.status_code == 507, refused.text
                assert "storage is full" in _one_line(refused)
                assert refused.headers["Retry-After"]
            refused = _seal(client, key, "FULL-2")
            assert refused.status_code == 507 and "full" in _one_line(refused)
            ready = client.get("/readyz")
            assert ready.status_code == 503 and "full" in ready.json()["detail"]
            # Nothing new is stored, nothing is left half-stored, nothing acknowledged is gone.
            assert _stored_files(data_dir) == files_before
            assert row_counts(settings) == rows_before
            assert client.get(f"/v1/inspections/{first.json()['id']}",
                              headers=auth(key)).json() == acknowledged

            (data_dir / "filler").unlink()
            assert client.get("/readyz").status_code == 200
            after = _inspect(client, key, golden_id, "after space was freed")
            assert after.status_code == 201, after.text
        assert dangling_files(settings) == []
        for name, value in (("SEALCHECK_DATA_DIR", str(data_dir)),
                            ("SEALCHECK_DATABASE_URL", settings.database_url)):
            monkeypatch.setenv(name, value)
        code, out, err = cli("gc", "--older-than", "0s")
        assert code == 0, err
        assert _stored_files(data_dir) == _named_files(settings)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_read_only_disk_answers_503_until_it_is_writable_again(backend, request, tmp_path):
    # The database lives elsewhere (a file system with open files cannot be remounted
    # read-only): the photos' disk alone fails, as a separate data volume does.
    with mounted_tmpfs(tmp_path / "small", "8m") as data_dir:
        database_url = (f"sqlite:///{tmp_path / 'sealcheck.db'}" if backend == "sqlite"
                        else request.getfixturevalue("postgres_schema_url")())
        settings = Settings(data_dir=data_dir, database_url=database_url,
                            max_upload_bytes=MB)
        key = new_key(settings)
        with TestClient(create_app(settings)) as client:
            golden_id = _seal(client, key).json()["id"]
            files_before = _stored_files(data_dir)
            remounted(data_dir, "ro")
            try:
                refused = _inspect(client, key, golden_id, "read-only", 85)
                assert refused.status_code == 503, refused.text
                assert "Read-only file system" in _one_line(refused)
                assert client.get("/readyz").status_code == 503
                listed = client.get("/v1/goldens", headers=auth(key))
                assert listed.status_code == 200  # reading still works
            finally:
                remounted(data_dir, "rw")
            assert _stored_files(data_dir) == files_before
            assert client.get("/readyz").status_code == 200
            assert _inspect(client, key, golden_id, "writable").status_code == 201
        assert dangling_files(settings) == []
        assert _stored_files(data_dir) == _named_files(settings)


def test_photos_written_before_a_failed_commit_are_removed(request, tmp_path):
    """The database's own disk fills (SQLite on a small file system, photos elsewhere): the
    photos and pictures are written, the commit fails, and the request removes its files."""
    with mounted_tmpfs(tmp_path / "db-disk", "4m") as db_dir:
        settings = Settings(data_dir=tmp_path / "data",
                            database_url=f"sqlite:///{db_dir / 'sealcheck.db'}")
        key = new_key(settings)
        with TestClient(create_app(settings)) as client:
            golden_id = _seal(client, key).json()["id"]
            files_before, rows_before = _stored_files(settings.data_dir), row_counts(settings)
            fill(db_dir / "filler")
            refused = _inspect(client, key, golden_id, "commit fails", 70)
            assert refused.status_code == 507, refused.text
            assert "database's storage is full" in _one_line(refused)
            assert client.get("/readyz").status_code == 503
            assert _stored_files(settings.data_dir) == files_before
            assert row_counts(settings) == rows_before
            (db_dir / "filler").unlink()
            assert client.get("/readyz").status_code == 200
            assert _inspect(client, key, golden_id, "commit works", 70).status_code == 201
        assert _stored_files(settings.data_dir) == _named_files(settings)
        assert dangling_files(settings) == []


def test_a_database_that_goes_away_answers_503_until_it_is_back(request, tmp_path):
    """PostgreSQL behind a proxy that cuts every connection: requests answer 503 with one line,
    /readyz is not ready, and both recover when the database is reachable again."""
    url = sa.engine.make_url(request.getfixturevalue("postgres_schema_url")())
    proxy = TcpProxy((url.host, url.port or 5432))
    settings = Settings(data_dir=tmp_path, database_url=url.set(port=proxy.port)
                        .render_as_string(hide_password=False))
    key = new_key(settings)
    try:
        with TestClient(create_app(settings)) as client:
            golden_id = _seal(client, key).json()["id"]
            files_before = _stored_files(tmp_path)
            proxy.cut()
            for refused in (_inspect(client, key, golden_id, "database gone", 75),
                            client.post("/v1/lots", headers=auth(key),
                                        json={"golden_id": golden_id, "lot_size": 50})):
                assert refused.status_code == 503, refused.text
                assert "database is unavailable" in _one_line(refused)
                assert refused.headers["Retry-After"]
            assert client.get("/readyz").status_code == 503
            assert _stored_files(tmp_path) == files_before
            proxy.restore()
            assert client.get("/readyz").status_code == 200
            assert _inspect(client, key, golden_id, "database back", 75).status_code == 201
        assert dangling_files(settings) == []
    finally:
        proxy.close()


def test_a_failed_request_removes_its_new_files_but_not_one_another_upload_reused(tmp_path):
    from service.storage import NewFiles

    blobs = BlobStore(tmp_path)
    blobs.open()
    kept_before = blobs.put(b"stored by an earlier request")
    mine, shared = NewFiles(), NewFiles()
    new = blobs.put(b"only this request's photo", new_files=mine)
    assert blobs.put(b"stored by an earlier request", new_files=mine) == kept_before
    reused = blobs.put(b"a photo another upload sends too", new_files=mine)
    time.sleep(0.01)
    blobs.put(b"a photo another upload sends too", new_files=shared)  # touches it: in use
    assert mine.remove() == 1
    assert not blobs.exists(new) and blobs.exists(kept_before) and blobs.exists(reused)
