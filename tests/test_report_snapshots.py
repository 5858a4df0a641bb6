"""Reports of a fixed set of comparisons stay as the snapshot recorded them.

The snapshot (tests/data/report_snapshots.json) holds 49 reports (renders, real DeepPCB pairs as
given and turned, the CLI's and the servers' entry points, with and without a spec), without
timings, and digests of their pictures. A reorganisation of the code must leave every one
identical; a change meant to alter reports rewrites the snapshot on purpose
(``python -m testkit.report_cases --write``) and says why in its commit.
"""

from __future__ import annotations

import json

import pytest

from testkit.report_cases import DEEPPCB, SNAPSHOT, cases, report_digest, run_case

_RECORDED = json.loads(SNAPSHOT.read_text())
_CASES = cases()


def test_the_snapshot_covers_at_least_40_comparisons():
    assert len(_RECORDED) >= 40
    assert sorted(_RECORDED) == sorted(case.name for case in _CASES)


@pytest.mark.parametrize("case", _CASES, ids=[case.name for case in _CASES])
def test_report_is_the_recorded_one(case):
    if case.needs_shared and not DEEPPCB.is_dir():
        pytest.skip(f"{DEEPPCB} is not here (it sits beside the repository on CI)")
    today = report_digest(run_case(case))
    recorded = _RECORDED[case.name]
    differing = sorted(k for k in set(today) | set(recorded) if today.get(k) != recorded.get(k))
    assert not differing, f"{case.name}: {differing} changed: {today} != {recorded}"
