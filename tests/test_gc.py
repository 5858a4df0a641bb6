"""`sealcheck gc`: files no row names, older than the limit, are removed; nothing else is."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import subprocess
import time

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.db import make_engine
from service.gc import collect_garbage
from service.storage import BlobStore
from testkit.photos import photo_pair
from testkit.server import SEALCHECK
from testkit.service import BACKENDS, auth, dangling_files, new_key, settings_for

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

DAY = 86400


@contextlib.contextmanager
def _sealed(settings):
    """The running app, a key, and a golden sealed from one photo."""
    key = new_key(settings)
    with TestClient(create_app(settings)) as client:
        golden_id = client.post("/v1/goldens", headers=auth(key), data={"name": "g",
                                "sku": "G-1"}, files={"images": ("g.jpg", photo_pair()[0],
                                                                 "image/jpeg")}).json()["id"]
        yield client, key, golden_id


def _age_everything(blobs: BlobStore, seconds: float) -> None:
    past = time.time() - seconds
    for _, path in blobs.files():
        os.utime(path, (past, past))


@pytest.mark.parametrize("backend", BACKENDS)
def test_old_unreferenced_files_go_and_everything_named_or_recent_stays(backend, request,
                                                                        tmp_path):
    settings = settings_for(backend, tmp_path, request)
    _, unit, _ = photo_pair()
    with _sealed(settings) as (client, key, golden_id):
        assert client.post(f"/v1/goldens/{golden_id}/inspections", headers=auth(key),
                           files={"images": ("u.jpg", unit, "image/jpeg")}).status_code == 201
    blobs = BlobStore(settings.data_dir)
    named = {sha for sha, _ in blobs.files()}
    # What a killed upload leaves: files no row names.
    orphans = {blobs.put(f"orphan {i}".encode()) for i in range(3)}
    _age_everything(blobs, 2 * DAY)
    fresh = blobs.put(b"an upload in flight")  # written just now, its row not committed yet
    engine = make_engine(settings.database_url)
    try:
        dry = collect_garbage(engine, blobs, dt.timedelta(hours=1), dry_run=True)
        assert (dry.removed, dry.recent, dry.kept) == (3, 1, len(named))
        assert {sha for sha, _ in blobs.files()} == named | orphans | {fresh}
        done = collect_garbage(engine, blobs, dt.timedelta(hours=1))
    finally:
        engine.dispose()
    assert (done.removed, done.recent, done.kept) == (3, 1, len(named))
    assert done.removed_bytes == sum(len(f"orphan {i}") for i in range(3))
    assert {sha for sha, _ in blobs.files()} == named | {fresh}
    assert dangling_files(settings) == []


def test_an_old_file_reused_by_a_new_upload_is_not_collected(tmp_path):
    blobs = BlobStore(tmp_path)
    blobs.open()
    sha = blobs.put(b"same bytes")
    _age_everything(blobs, 2 * DAY)
    # A new upload of the same bytes finds the file and touches it before its row commits.
    assert blobs.put(b"same bytes") == sha
    assert time.time() - blobs.path(sha).stat().st_mtime < 60


def test_cli_gc_reports_and_refuses_a_bad_age(tmp_path):
    env = {**os.environ, "SEALCHECK_DATA_DIR": str(tmp_path)}
    env.pop("SEALCHECK_DATABASE_URL", None)
    blobs = BlobStore(tmp_path)
    blobs.open()
    blobs.put(b"left by a crash")
    _age_everything(blobs, 2 * DAY)
    done = subprocess.run([SEALCHECK, "gc", "--older-than", "1d"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("removed 1 unreferenced file(s), 15 bytes")
    assert list(blobs.files()) == []
    for bad in ("soon", "-1h", "5y", "h"):
        refused = subprocess.run([SEALCHECK, "gc", "--older-than", bad], env=env,
                                 capture_output=True, text=True, timeout=120)
        assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
        assert "--older-than" in refused.stderr and "Traceback" not in refused.stderr


def test_a_photo_s_reencoding_and_thumbnail_go_with_it_and_stay_while_it_is_named(request,
                                                                                  tmp_path):
    settings = settings_for("sqlite", tmp_path, request)
    with _sealed(settings) as (client, key, golden_id):
        assert client.get(f"/v1/goldens/{golden_id}/images/0",
                          headers=auth(key)).status_code == 200
    blobs = BlobStore(settings.data_dir)
    named = {path for _, path in blobs.derived_files()}
    assert {p.name.split(".", 1)[1] for p in named} == {"display.jpg", "thumb.webp"}
    # A killed upload's photo that was downloaded before (its re-encoding made), and a
    # re-encoding whose photo an earlier collector removed.
    orphan = blobs.put(b"orphan photo")
    orphan_derived = blobs.put_derived(orphan, "display.jpg", b"its re-encoding")
    stray = blobs.put_derived("ab" * 32, "display.png", b"a re-encoding of nothing")
    _age_everything(blobs, 2 * DAY)
    engine = make_engine(settings.database_url)
    try:
        dry = collect_garbage(engine, blobs, dt.timedelta(hours=1), dry_run=True)
        assert (dry.removed, dry.removed_derived) == (1, 2) and orphan_derived.exists()
        done = collect_garbage(engine, blobs, dt.timedelta(hours=1))
    finally:
        engine.dispose()
    assert (done.removed, done.removed_derived) == (1, 2)
    assert done.removed_bytes == len(b"orphan photo") + len(b"its re-encoding") + len(
        b"a re-encoding of nothing")
    assert not orphan_derived.exists() and not stray.exists()
    assert {path for _, path in blobs.derived_files()} == named
