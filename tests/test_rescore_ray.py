"""The Ray engine (Ray Data map_batches, one Scorer per actor) gives the local engine's
reports, on a local Ray instance of 2 CPUs."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import shutil

import pytest

from service.rescore.job import RescoreOptions, rescore_manifest
from testkit.batch import ROWS, write_manifest

if importlib.util.find_spec("ray") is None and not os.environ.get("SEALCHECK_REQUIRE_RAY"):
    pytest.skip("Ray is not installed (pip install 'sealcheck[ray]'; make install does); set "
                "SEALCHECK_REQUIRE_RAY=1 to make this a failure", allow_module_level=True)


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Ray's own


@pytest.fixture(scope="module")
def local_ray():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             logging_level="warning")
    try:
        yield ray
    finally:
        ray.shutdown()


def _comparable(path) -> dict:
    records = {}
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if "report" in record:
            record["report"].pop("timings_ms")
        records[record["id"]] = record
    return records


def test_ray_and_local_engines_give_identical_reports(local_ray, rescore_photos, tmp_path):
    shutil.copytree(rescore_photos, tmp_path / "job")
    manifest = write_manifest(tmp_path / "job", ROWS)
    outs = {}
    for engine in ("local", "ray"):
        outs[engine] = tmp_path / f"{engine}.jsonl"
        summary = rescore_manifest(manifest, outs[engine],
                                   RescoreOptions(workers=2, engine=engine),
                                   stream=io.StringIO())
        assert summary["items"] == len(ROWS)
    local, ray_results = _comparable(outs["local"]), _comparable(outs["ray"])
    assert sorted(local) == sorted(ray_results) == sorted(r[0] for r in ROWS)
    assert [i for i in local if local[i] != ray_results[i]] == []
    assert sum(r["status"] == "ok" for r in local.values()) == 4

    # Resuming with the Ray engine skips what is done, like the local one.
    summary = rescore_manifest(manifest, outs["ray"], RescoreOptions(workers=2, engine="ray"),
                               stream=io.StringIO())
    assert summary["this_run"]["scored"] == 0
