"""`sealcheck rescore --from-db` and stored goldens in a manifest, on SQLite and PostgreSQL.

Inspections are made through the HTTP API (TestClient), then re-scored by the command in
process; each new report must land in inspection_reports as version 2, the original report
untouched, and a second run must add nothing.
"""

from __future__ import annotations

import io
import json
import uuid

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from service.app import create_app
from service.cli import main
from service.db import InspectionReport, make_engine, make_sessionmaker
from service.rescore.job import RescoreOptions, rescore_manifest, scoring_version_here
from service.rescore.stored import store_report_version
from testkit.photos import photo_pair
from testkit.service import BACKENDS, auth, new_key, settings_for

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module", params=BACKENDS)
def stored(request, tmp_path_factory):
    """A sealed golden (ROI spec) with two inspections: an identical unit and a stained one."""
    data_dir = tmp_path_factory.mktemp(f"rescore-db-{request.param}")
    settings = settings_for(request.param, data_dir, request)
    key = new_key(settings)
    golden_bytes, _, roi = photo_pair()
    with TestClient(create_app(settings)) as api:
        response = api.post("/v1/goldens", headers=auth(key), data={
            "spec": json.dumps({"roi": roi}), "name": "mug", "sku": f"MUG-{uuid.uuid4().hex[:6]}"},
            files={"images": ("golden.jpg", golden_bytes, "image/jpeg")})
        assert response.status_code == 201, response.text
        golden_id = response.json()["id"]
        inspections = {}
        for label, defect in (("good", None), ("stained", "stain")):
            unit = photo_pair(defect)[1]
            response = api.post(f"/v1/goldens/{golden_id}/inspections", headers=auth(key),
                                files={"images": ("unit.jpg", unit, "image/jpeg")})
            assert response.status_code == 201, response.text
            inspections[label] = response.json()
    return settings, golden_id, inspections


@pytest.fixture
def env(stored, monkeypatch):
    settings = stored[0]
    monkeypatch.setenv("SEALCHECK_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("SEALCHECK_DATA_DIR", str(settings.data_dir))
    return settings


def _versions(settings) -> list[InspectionReport]:
    engine = make_engine(settings.database_url)
    try:
        with make_sessionmaker(engine)() as session:
            return list(session.scalars(sa.select(InspectionReport)
                                        .order_by(InspectionReport.inspection_seq,
                                                  InspectionReport.version)))
    finally:
        engine.dispose()


def _original_reports(settings) -> dict[str, dict]:
    engine = make_engine(settings.database_url)
    try:
        with engine.connect() as connection:
            return {row[0]: row[1] for row in connection.execute(
                sa.text("SELECT id, report FROM inspections"))}
    finally:
        engine.dispose()


def test_from_db_stores_each_new_report_as_a_new_version(stored, env, capfd):
    settings, golden_id, inspections = stored
    before = _original_reports(settings)
    # Filters that select nothing store nothing.
    assert main(["rescore", "--from-db", "--since", "2999-01-01", "--workers", "1"]) == 0
    assert "0 stored inspection(s) selected" in capfd.readouterr().err
    assert main(["rescore", "--from-db", "--golden", str(uuid.uuid4())]) == 2
    assert "no stored golden has this id" in capfd.readouterr().err

    assert main(["rescore", "--from-db", "--golden", golden_id, "--since", "2020-01-01",
                 "--workers", "2"]) == 0
    err = capfd.readouterr().err
    assert "2 new report version(s) stored" in err, err
    versions = _versions(settings)
    assert [v.version for v in versions] == [2, 2]
    assert {v.scoring_version for v in versions} == {scoring_version_here()}
    by_verdict = {v.verdict for v in versions}
    assert by_verdict == {"pass", "fail"}, by_verdict  # identical unit, stained unit
    for version in versions:
        assert version.report["verdict"] == version.verdict
        assert version.score == version.report["score"]
        assert version.created_at.tzinfo is not None
    assert _original_reports(settings) == before  # version 1 stays as it was

    # Same scoring again: nothing to do, nothing added.
    assert main(["rescore", "--from-db", "--workers", "1"]) == 0
    assert "2 already re-scored" in capfd.readouterr().err
    assert len(_versions(settings)) == 2


def test_report_versions_number_on_and_never_repeat_a_scoring(stored, env):
    settings = stored[0]
    engine = make_engine(settings.database_url)
    try:
        sessions = make_sessionmaker(engine)
        with engine.connect() as connection:
            seq = connection.execute(sa.text("SELECT min(seq) FROM inspections")).scalar_one()
        report = {"verdict": "pass", "score": 99.0}
        assert store_report_version(sessions, seq, "a later model", report) >= 2
        again = store_report_version(sessions, seq, "a later model", report)
        assert again is None
        numbers = [v.version for v in _versions(settings) if v.inspection_seq == seq]
        assert numbers == sorted(set(numbers)) and numbers[0] >= 2
    finally:
        engine.dispose()


def test_manifest_may_name_a_stored_golden(stored, env, tmp_path):
    settings, golden_id, _ = stored
    (tmp_path / "unit.jpg").write_bytes(photo_pair()[1])
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"id": "u1", "golden": golden_id, "unit": "unit.jpg"}) + "\n"
                        + json.dumps({"id": "u2", "golden": str(uuid.uuid4()),
                                      "unit": "unit.jpg"}) + "\n")

    def open_database():
        from service.storage import BlobStore

        return make_engine(settings.database_url), BlobStore(settings.data_dir)

    out = tmp_path / "r.jsonl"
    rescore_manifest(manifest, out, RescoreOptions(workers=1), open_database=open_database,
                     stream=io.StringIO())
    records = {r["id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert records["u1"]["status"] == "ok"
    assert records["u1"]["report"]["verdict"] == "pass"
    assert records["u1"]["report"]["spec"]["roi"] is not None  # the spec it was sealed with
    assert "no stored golden has this id" in records["u2"]["error"]["message"]
