"""Driving ``sealcheck rescore`` as a user does (the real command, in subprocesses): small jobs,
kill -9 and resume, and reading RESULTS; plus the small job the rescore tests run in process.

Shared by tests/test_rescore*.py and benchmarks/bench_rescore.py.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def sealcheck_command() -> list[str]:
    script = Path(sys.executable).with_name("sealcheck")
    return [str(script)] if script.exists() else [sys.executable, "-m", "service.cli"]


def clean_env() -> dict[str, str]:
    """This environment without its SEALCHECK_* settings: the command runs on its defaults."""
    return {k: v for k, v in os.environ.items() if not k.startswith("SEALCHECK_")}


# --------------------------------------------------------------------------------------------
# Reading RESULTS


def comparable(record: dict) -> dict:
    """A result without what legitimately differs between two runs: stage timings."""
    record = json.loads(json.dumps(record))
    if isinstance(record.get("report"), dict):
        record["report"].pop("timings_ms", None)
    return record


def read_results(path: Path) -> tuple[list[dict], int]:
    """(records, torn lines): every line must be a whole JSON object."""
    records, torn = [], 0
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        torn += 1
    for line in data.splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            torn += 1
    return records, torn


# --------------------------------------------------------------------------------------------
# The kill -9 figure


def write_small_job(directory: Path, items: int = 200) -> Path:
    """A manifest of `items` rows cycling through a few small pairs (fast to score): an
    identical unit, a unit with a hole, another product, and one missing file (an error)."""
    import cv2

    from testkit.scenes import Camera, make_pair

    directory.mkdir(parents=True, exist_ok=True)
    camera = Camera(width=320, height=240)  # ~0.2 s per item: 200 items stay quick
    pairs = {
        "same": make_pair("astronaut", golden_camera=camera, px_per_mm=1.2, seed=3),
        "hole": make_pair("astronaut", golden_camera=camera, px_per_mm=1.2, seed=3,
                          defects=(("hole", 40.0),)),
        "coffee": make_pair("coffee", golden_camera=camera, px_per_mm=1.2, seed=4),
    }
    files = []
    for name, pair in pairs.items():
        for role, rgb in (("golden", pair.golden), ("unit", pair.unit)):
            path = directory / f"{name}_{role}.jpg"
            cv2.imwrite(str(path), rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
        files.append((f"{name}_golden.jpg", f"{name}_unit.jpg"))
    files.append(("same_golden.jpg", "no_such_unit.jpg"))
    manifest = directory / "manifest.csv"
    lines = ["id,golden,unit"]
    lines += [f"item-{i:04d},{files[i % len(files)][0]},{files[i % len(files)][1]}"
              for i in range(items)]
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def run_job(manifest: Path, out: Path, workers: int = 2, timeout: float = 600
            ) -> subprocess.CompletedProcess:
    return subprocess.run([*sealcheck_command(), "rescore", str(manifest), "--out", str(out),
                           "--workers", str(workers)], capture_output=True, text=True,
                          env=clean_env(), cwd=REPO, timeout=timeout)


def line_count(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def kill_and_resume(manifest: Path, out: Path, *, kills: int = 5, seed: int = 7,
                    workers: int = 2) -> list[dict]:
    """Start the job and SIGKILL it at a random moment, `kills` times (each start resumes the
    last), then let it finish. Returns what happened at each kill.

    One kill in five comes during start-up (0.2-2 s in: reading RESULTS, spawning the pool);
    the others while results are written, spread over the whole job: once RESULTS reaches a
    random line count (sorted random points over the job), plus a random 0-0.5 s, so they
    land between appends, in the middle of items, or in an append.
    """
    rng = random.Random(seed)
    total = sum(1 for line in manifest.read_text().splitlines()[1:] if line.strip())
    points = sorted(rng.sample(range(1, total), kills))
    moments = []
    for number in range(kills):
        before = line_count(out)
        process = subprocess.Popen(
            [*sealcheck_command(), "rescore", str(manifest), "--out", str(out), "--workers",
             str(workers)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=clean_env(),
            cwd=REPO)
        start = time.monotonic()
        if rng.random() < 0.2:
            phase = "start-up"
            time.sleep(rng.uniform(0.2, 2.0))
        else:
            phase = "scoring"
            target = max(points[number], before + 1)
            while (line_count(out) < target and process.poll() is None
                   and time.monotonic() - start < 300):
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 0.5))
        process.send_signal(signal.SIGKILL)
        process.wait()
        after = out.read_bytes() if out.exists() else b""
        moments.append({"phase": phase, "after_s": round(time.monotonic() - start, 2),
                        "lines_before": before, "lines_at_kill": after.count(b"\n"),
                        "torn_tail": bool(after) and not after.endswith(b"\n")})
    final = run_job(manifest, out, workers)
    if final.returncode != 0:
        raise AssertionError(f"the final resume exited {final.returncode}:\n{final.stderr}")
    return moments


def compare_results(reference: Path, resumed: Path, items: int) -> dict:
    ref, ref_torn = read_results(reference)
    got, torn = read_results(resumed)
    ids = [r["id"] for r in got]
    by_id = {r["id"]: comparable(r) for r in got}
    ref_by_id = {r["id"]: comparable(r) for r in ref}
    return {
        "items": len(got), "expected": items, "distinct_ids": len(set(ids)),
        "scored_ok": sum(r.get("status") == "ok" for r in got),
        "duplicates": len(ids) - len(set(ids)), "torn_lines": torn + ref_torn,
        "same_ids": set(by_id) == set(ref_by_id),
        "identical": by_id == ref_by_id,
        "differing_ids": sorted(i for i in by_id if by_id[i] != ref_by_id.get(i))[:5],
    }


# --------------------------------------------------------------------------------------------
# The rescore tests' job (in process)


def write_rescore_photos(directory: Path) -> Path:
    """Write into `directory` golden/unit pairs (identical content, a 40 mm hole), a spec, a
    spec with an unknown tolerance and a corrupt file: what :data:`ROWS` names."""
    import cv2

    from testkit.scenes import Camera, make_pair

    camera = Camera(width=320, height=240)
    pairs = {
        "same": make_pair("astronaut", golden_camera=camera, px_per_mm=1.2, seed=3),
        "hole": make_pair("astronaut", golden_camera=camera, px_per_mm=1.2, seed=3,
                          defects=(("hole", 40.0),)),
    }
    for name, pair in pairs.items():
        for role, rgb in (("golden", pair.golden), ("unit", pair.unit)):
            cv2.imwrite(str(directory / f"{name}_{role}.jpg"), rgb[..., ::-1])
    (directory / "spec.yaml").write_text("tolerances:\n  delta_e00: 3.0\n")
    (directory / "bad_spec.yaml").write_text("tolerances:\n  delta_e: 3.0\n")
    (directory / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 40)
    return directory


def write_manifest(directory: Path, rows: list[tuple[str, ...]], name: str = "manifest.csv"
                   ) -> Path:
    path = directory / name
    header = ["id", "golden", "unit", "spec"][:len(rows[0])]
    path.write_text("\n".join(",".join(r) for r in [tuple(header), *rows]) + "\n")
    return path


ROWS = [  # id, golden, unit, spec
    ("same-1", "same_golden.jpg", "same_unit.jpg", ""),
    ("hole-1", "same_golden.jpg", "hole_unit.jpg", ""),
    ("same-2", "same_golden.jpg", "same_unit.jpg", "spec.yaml"),
    ("missing", "same_golden.jpg", "no_such.jpg", ""),
    ("corrupt", "same_golden.jpg", "corrupt.jpg", ""),
    ("bad-spec", "same_golden.jpg", "same_unit.jpg", "bad_spec.yaml"),
    ("hole-2", "hole_golden.jpg", "hole_unit.jpg", ""),
]
