"""Exactly once under kill -9: the figure of issue 7, by the real command in subprocesses.

A 200-item job of small photos (a few pairs reused, one missing file) is run once
uninterrupted, then into another RESULTS file killed with SIGKILL at 5 random moments (random
delays, seeded; most during appends) and resumed after each. The final RESULTS must hold every
id exactly once, every line whole, and the same reports as the uninterrupted run, timings
aside. ``python benchmarks/bench_rescore.py --kill-test`` prints the same figure.

A pool worker killed in the middle of a job is replaced, and the items it held are scored
again: every item once, none recorded as an internal error.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from testkit.batch import (
    REPO,
    compare_results,
    kill_and_resume,
    run_job,
    sealcheck_command,
    write_small_job,
)

ITEMS = 200


def test_kill_9_at_five_random_moments_then_resume_gives_every_item_once(tmp_path):
    manifest = write_small_job(tmp_path, ITEMS)
    reference = tmp_path / "reference.jsonl"
    done = run_job(manifest, reference, workers=2)
    assert done.returncode == 0, done.stderr

    resumed = tmp_path / "resumed.jsonl"
    seed = int(os.environ.get("SEALCHECK_TEST_KILL_SEED", "7"))
    moments = kill_and_resume(manifest, resumed, kills=5, seed=seed, workers=2)
    assert len(moments) == 5
    # The job was really interrupted part-way, not killed before it started each time.
    assert any(0 < m["lines_at_kill"] < ITEMS for m in moments), moments

    outcome = compare_results(reference, resumed, ITEMS)
    assert outcome["torn_lines"] == 0, outcome
    assert outcome["items"] == ITEMS and outcome["distinct_ids"] == ITEMS, outcome
    assert outcome["duplicates"] == 0 and outcome["same_ids"], outcome
    assert outcome["identical"], outcome
    # Three of the four pairs are scorable (the fourth names a missing file): a job whose
    # items all failed the same way would also be "identical".
    assert outcome["scored_ok"] == ITEMS * 3 // 4, outcome


def _pool_workers(pid: int) -> list[int]:
    """The pool's worker processes among `pid`'s children (not multiprocessing's tracker)."""
    workers = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if parent == pid and b"spawn_main" in command and b"resource_tracker" not in command:
            workers.append(int(entry.name))
    return workers


def test_a_worker_killed_mid_job_is_replaced_and_its_items_retried(tmp_path):
    manifest = write_small_job(tmp_path, 40)
    out = tmp_path / "results.jsonl"
    process = subprocess.Popen(
        [*sealcheck_command(), "rescore", str(manifest), "--out", str(out), "--workers", "2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=REPO)
    deadline = time.monotonic() + 120
    while (not out.exists() or out.read_bytes().count(b"\n") < 3) and time.monotonic() < deadline:
        time.sleep(0.05)
    victims = _pool_workers(process.pid)
    assert victims, "no pool worker found"
    os.kill(victims[0], signal.SIGKILL)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids)) == 40
    assert [r for r in records if r["status"] == "error" and r["error"]["kind"] != "input"] == []
