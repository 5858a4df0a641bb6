"""Contract fuzzing: schemathesis generates requests from the service's own OpenAPI schema and
sends them to a real `sealcheck serve` (uvicorn) on loopback, on SQLite and on PostgreSQL
(whose refusals differ: no NUL in text). For every operation: no
server error (5xx; the busy 503 of a full queue would be allowed, and never happens here with
one request at a time), and every answer with a documented status matches its schema. Both of
schemathesis' modes run: positive (requests the schema allows) and negative (requests it
forbids, which must be refused with a 4xx, not crash).

Requests carry a valid key; path ids are the ids of a real golden, inspection and lot for
about half of the examples (so the fuzzer reaches past the 404s), random otherwise. The
number of examples per operation and mode is bounded (SEALCHECK_FUZZ_EXAMPLES, default 12) to
keep `make test` quick; `SEALCHECK_FUZZ_EXAMPLES=300 pytest tests/test_schemathesis.py` runs a
long campaign.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from testkit.server import SEALCHECK, free_port
from testkit.service import BACKENDS, auth, new_key, server_env, settings_for

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

EXAMPLES = int(os.environ.get("SEALCHECK_FUZZ_EXAMPLES", "12"))


@pytest.fixture(scope="module", params=BACKENDS)
def server(tmp_path_factory, request):
    data_dir = tmp_path_factory.mktemp(f"fuzz-{request.param}")
    config = settings_for(request.param, data_dir, request)
    key = new_key(config)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with open(data_dir / "server.log", "ab") as log:
        process = subprocess.Popen([SEALCHECK, "serve", "--port", str(port)],
                                   env=server_env(config), stdout=log,
                                   stderr=subprocess.STDOUT, cwd=data_dir)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, \
                (data_dir / "server.log").read_text()[-3000:]
            time.sleep(0.2)
        ids = _seed(base, key)
        yield {"base": base, "key": key, "ids": ids, "log": data_dir / "server.log"}
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _seed(base: str, key: str) -> dict[str, str]:
    """A golden, an inspection of it and a lot, for the fuzzer's path ids."""
    from testkit.photos import corpus_photos, jpeg

    golden, unit, _, roi = corpus_photos()
    sealed = httpx.post(f"{base}/v1/goldens", headers=auth(key), timeout=120,
                        data={"name": "fuzz", "sku": "FUZZ", "spec": json.dumps({"roi": roi})},
                        files={"images": ("g.jpg", jpeg(golden), "image/jpeg")})
    assert sealed.status_code == 201, sealed.text
    golden_id = sealed.json()["id"]
    lot = httpx.post(f"{base}/v1/lots", headers=auth(key), timeout=60,
                     json={"golden_id": golden_id, "lot_size": 1000})
    assert lot.status_code == 201, lot.text
    inspected = httpx.post(f"{base}/v1/goldens/{golden_id}/inspections", headers=auth(key),
                           timeout=120, files={"images": ("u.jpg", jpeg(unit), "image/jpeg")})
    assert inspected.status_code == 201, inspected.text
    return {"golden_id": golden_id, "inspection_id": inspected.json()["id"],
            "lot_id": lot.json()["id"]}


def test_no_server_errors_and_answers_match_the_schema(server):
    # The operations are walked here rather than through schemathesis' pytest plugin, whose
    # fixture-based parametrisation does not run under pytest 9.
    api_schema = schemathesis.openapi.from_url(f"{server['base']}/openapi.json")
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 17, [op.path for op in operations]
    failures: list[str] = []
    examples = 0

    runs = [(operation, mode) for operation in operations
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)]
    for operation, mode in runs:
        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck), phases=[Phase.generate])
        def fuzz(case) -> None:
            nonlocal examples
            examples += 1
            for name, real in server["ids"].items():
                # Real ids for about half of the examples, so the fuzzer gets past the 404s.
                value = (case.path_parameters or {}).get(name)
                if value is not None and len(str(value)) % 2 == 0:
                    case.path_parameters[name] = real
            case.call_and_validate(base_url=server["base"], headers=auth(server["key"]),
                                   timeout=120,
                                   checks=[not_a_server_error, response_schema_conformance])

        try:
            fuzz()
        except Unsatisfiable:
            # No parameters to get wrong (health checks, metrics): no negative case exists.
            assert mode is GenerationMode.NEGATIVE, operation.path
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.method.upper()} {operation.path} ({mode.value}): "
                            f"{str(exc).strip()[:1500]}")
    print(f"schemathesis: {len(operations)} operations x 2 modes, {examples} requests, "
          f"{len(failures)} failing operations")
    assert failures == [], "\n\n".join(failures)
    log = server["log"].read_text()
    assert "Traceback" not in log and "internal error" not in log, log[-3000:]
