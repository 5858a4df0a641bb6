"""A fixed set of comparisons whose reports must not change when the code is only reorganised.

Each case is a pair of photos and a way of comparing them (the CLI's path: JPEG bytes, reduced
decode and ``compare_side_by_side``; or arrays through ``compare``), with or without a spec.
:func:`report_digest` keeps everything of a report but its timings and the library versions, and
a fingerprint of the pictures a person looks at (defect map, overlay, aligned unit).

The snapshot (``tests/data/report_snapshots.json``) was written by the code before a
behaviour-preserving change; ``tests/test_report_snapshots.py`` compares today's reports with
it. A change that is *meant* to alter reports rewrites the snapshot on purpose::

    python -m testkit.report_cases --write

and says in its commit why the reports moved.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from testkit.photos import jpeg

REPO = Path(__file__).resolve().parents[1]
SNAPSHOT = REPO / "tests" / "data" / "report_snapshots.json"
DEEPPCB = REPO.parent / "shared" / "data" / "deeppcb-val" / "pairs"


@dataclasses.dataclass(frozen=True)
class Case:
    """One comparison: `photos()` gives (golden, unit) RGB arrays, `how` how to compare them."""

    name: str
    photos: Callable[[], tuple[np.ndarray, np.ndarray]]
    how: str = "cli"  # "cli", "cli-out" or "array": see run_case
    spec: dict | None = None
    options: dict = dataclasses.field(default_factory=dict)
    needs_shared: bool = False


def _render(product: str, *, seed: int, size: tuple[int, int] = (1344, 1008),
            px_per_mm: float = 3.0, **pair_options):
    def make() -> tuple[np.ndarray, np.ndarray]:
        from testkit.scenes import Camera, random_phone_camera  # noqa: PLC0415
        from testkit.scenes import make_pair as _make_pair

        golden_camera = Camera(width=size[0], height=size[1])
        unit_camera = pair_options.pop("unit_camera", None)
        if unit_camera == "phone":
            unit_camera = random_phone_camera(np.random.default_rng(seed), base=golden_camera)
        pair = _make_pair(product, golden_camera=golden_camera, unit_camera=unit_camera,
                          px_per_mm=px_per_mm, seed=seed, **pair_options)
        return pair.golden, pair.unit

    return make


def _deeppcb(stem: str):
    def load() -> tuple[np.ndarray, np.ndarray]:
        def read(path: Path) -> np.ndarray:
            bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if bgr is None:
                raise FileNotFoundError(path)
            return np.ascontiguousarray(bgr[..., ::-1])

        return read(DEEPPCB / f"{stem}_golden.jpg"), read(DEEPPCB / f"{stem}_unit.jpg")

    return load


def _deeppcb_turned(stem: str, degrees: float, scale: float):
    """A DeepPCB unit turned and scaled about its centre onto a canvas of its own background."""
    def load() -> tuple[np.ndarray, np.ndarray]:
        golden, unit = _deeppcb(stem)()
        h, w = unit.shape[:2]
        M = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, scale)
        background = tuple(int(v) for v in np.median(unit.reshape(-1, 3), axis=0))
        turned = cv2.warpAffine(unit, M, (w, h), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=background)
        return golden, turned

    return load


def _shift_colour(make, delta: tuple[float, float, float]):
    def shifted() -> tuple[np.ndarray, np.ndarray]:
        from testkit.scenes import lab_shift  # noqa: PLC0415

        golden, unit = make()
        drift = lab_shift(*delta)
        return golden, drift(unit)

    return shifted


_DEEPPCB_STEMS = ("00041001", "00041006", "13000004", "13000099", "20085000", "20085150",
                  "44000062", "50600000", "77000001", "92000001")


def cases() -> list[Case]:
    """The fixed comparisons (>= 40): renders at 1344 x 1008, 2016 x 1512 and 4032 x 3024 (the
    bench size, decoded reduced), DeepPCB pairs as given and turned, through the CLI's and the
    servers' entry points, with and without a spec."""
    renders = [
        Case("render-astronaut-phone", _render("astronaut", seed=0, unit_camera="phone")),
        Case("render-coffee-phone", _render("coffee", seed=1, unit_camera="phone")),
        Case("render-chelsea-phone", _render("chelsea", seed=2, unit_camera="phone")),
        Case("render-rocket-phone", _render("rocket", seed=3, unit_camera="phone")),
        Case("render-ihc-phone", _render("immunohistochemistry", seed=4, unit_camera="phone")),
        Case("render-hubble-phone", _render("hubble_deep_field", seed=5, unit_camera="phone")),
        Case("render-retina-phone", _render("retina", seed=6, unit_camera="phone")),
        Case("render-colorwheel-phone", _render("colorwheel", seed=7, unit_camera="phone")),
        Case("render-circuit-phone", _render("circuit", seed=8, unit_camera="phone")),
        Case("render-weave-phone", _render("weave", seed=9, unit_camera="phone")),
        Case("render-astronaut-hole", _render("astronaut", seed=10, unit_camera="phone",
                                              defects=(("hole", 10.0),))),
        Case("render-coffee-scratch", _render("coffee", seed=11, unit_camera="phone",
                                              defects=(("scratch", 10.0),))),
        Case("render-chelsea-stain", _render("chelsea", seed=12, defects=(("stain", 10.0),))),
        Case("render-rocket-foreign", _render("rocket", seed=13, defects=(("foreign", 8.0),))),
        Case("render-retina-missing", _render("retina", seed=14, defects=(("missing", 12.0),))),
        Case("render-astronaut-two-defects",
             _render("astronaut", seed=15, unit_camera="phone",
                     defects=(("scratch", 6.0), ("stain", 8.0)))),
        Case("render-chelsea-other-product",
             _render("chelsea", seed=16, unit_product="coffee")),
        Case("render-coffee-no-card", _render("coffee", seed=17, card=False)),
        Case("render-astronaut-same-setup", _render("astronaut", seed=18, same_setup=True)),
        Case("render-rocket-wider", _render("rocket", seed=19, unit_stretch=(1.02, 1.0)),
             spec={"chart": {"width_mm": 209.55}, "tolerances": {"dimension_mm": 2.0}}),
        Case("render-astronaut-12mp", _render("astronaut", seed=20, size=(4032, 3024),
                                              px_per_mm=8.0, unit_camera="phone")),
        Case("render-coffee-2mp-hole", _render("coffee", seed=21, size=(2016, 1512),
                                               px_per_mm=4.0, unit_camera="phone",
                                               defects=(("hole", 10.0),))),
    ]
    drifted = [
        Case("render-chelsea-darker", _shift_colour(_render("chelsea", seed=22), (-4.0, 0, 0))),
        Case("render-coffee-bluer", _shift_colour(_render("coffee", seed=23), (0, 0, -3.0))),
    ]
    arrays = [
        Case("array-astronaut-roi", _render("astronaut", seed=24, unit_camera="phone"),
             how="array", spec={"roi": [500, 400, 900, 700]}),
        Case("array-hubble-uncalibrated", _render("hubble_deep_field", seed=25),
             how="array", options={"calibrate": False}),
        Case("array-retina-maps-only", _render("retina", seed=26, defects=(("stain", 10.0),)),
             how="array", options={"use_defect_model": False}),
        Case("array-coffee-strict", _render("coffee", seed=27, unit_camera="phone"),
             how="array", spec={"tolerances": {"delta_e00": 0.5, "ssim_min": 0.98,
                                               "max_defects": 0}}),
        Case("array-chelsea-no-pictures", _render("chelsea", seed=28), how="array",
             options={"render_images": False}),
        Case("array-colorwheel-threads", _render("colorwheel", seed=29, unit_camera="phone"),
             how="array", options={"threads": 2}),
    ]
    pcb = [Case(f"deeppcb-{stem}", _deeppcb(stem), needs_shared=True)
           for stem in _DEEPPCB_STEMS]
    pcb += [
        Case("deeppcb-00041001-array", _deeppcb("00041001"), how="array", needs_shared=True),
        Case("deeppcb-13000099-roi", _deeppcb("13000099"), how="array",
             spec={"roi": [0, 0, 640, 640]}, needs_shared=True),
        Case("deeppcb-20085150-turned-10", _deeppcb_turned("20085150", 10.0, 1.0),
             needs_shared=True),
        Case("deeppcb-44000062-turned-90", _deeppcb_turned("44000062", 90.0, 1.0),
             needs_shared=True),
        Case("deeppcb-50600000-scaled", _deeppcb_turned("50600000", -5.0, 1.1),
             needs_shared=True),
        Case("deeppcb-other-board", lambda: (_deeppcb("00041001")()[0],
                                             _deeppcb("92000001")()[1]), needs_shared=True),
    ]
    pictures = [
        Case("pictures-astronaut-hole", _render("astronaut", seed=30, unit_camera="phone",
                                                defects=(("hole", 10.0),)), how="cli-out"),
        Case("pictures-coffee-stain", _render("coffee", seed=31, unit_camera="phone",
                                              defects=(("stain", 10.0),)), how="cli-out"),
        Case("pictures-other-product", _render("rocket", seed=32, unit_product="retina"),
             how="cli-out"),
    ]
    return renders + drifted + arrays + pictures + pcb


def run_case(case: Case):
    """The comparison of `case`, made as its entry point makes it.

    ``how``: "cli" is ``sealcheck compare`` without ``--out`` (JPEG bytes decoded reduced,
    ``compare_side_by_side`` without pictures); "cli-out" is the same with ``--out`` (full
    decode, pictures); "array" is ``compare`` on the decoded arrays (servers, batch).
    """
    from vision.compare import compare, compare_side_by_side  # noqa: PLC0415
    from vision.load import load_pair  # noqa: PLC0415
    from vision.spec import Spec  # noqa: PLC0415

    spec = Spec.model_validate(case.spec) if case.spec else None
    golden, unit = case.photos()
    if case.how == "array":
        return compare(golden, unit, spec, **case.options)
    for_report = case.how == "cli"
    (g, g_size), (u, u_size) = load_pair(jpeg(golden), jpeg(unit), for_report=for_report)
    return compare_side_by_side(g, u, spec, golden_photo_size=g_size, unit_photo_size=u_size,
                                render_images=not for_report, **case.options)


# A picture's fingerprint: its exact digest, and the means of an 8 x 8 grid of blocks (each
# channel, 0.1 grey level steps). The digest alone is too strict across machines: a homography
# whose last bits differ between CPUs (OpenCV's and NumPy's SIMD paths) rounds a few warped
# pixels the other way (seen 2026-12-07: an Intel Xeon against the EPYC that recorded the
# snapshot). A block mean moves by ~1/20000 of a level per such pixel; an outline drawn
# around a 150 px region, or a region coloured in the defect map, moves its block's mean by
# a level or more. tests/test_report_snapshots.py takes the digest, or the means within
# BLOCK_MEAN_TOLERANCE.
PICTURE_GRID = 8
BLOCK_MEAN_TOLERANCE = 0.3


def picture_fingerprint(image: np.ndarray | None) -> str | None:
    """``"<sha256[:16]>:<shape>:<block means>"`` of a picture, or None (see above)."""
    if image is None:
        return None
    image = np.ascontiguousarray(image)
    digest = hashlib.sha256(image.tobytes()).hexdigest()[:16]
    means = cv2.resize(image.astype(np.float32), (PICTURE_GRID, PICTURE_GRID),
                       interpolation=cv2.INTER_AREA)
    blocks = " ".join(f"{value:.1f}" for value in means.ravel())
    return f"{digest}:{'x'.join(map(str, image.shape))}:{blocks}"


def same_picture(today: str | None, recorded: str | None) -> bool:
    """The same digest, or the same shape and every block mean within the tolerance."""
    if today is None or recorded is None or today == recorded:
        return today == recorded
    today_parts, recorded_parts = today.split(":"), recorded.split(":")
    if len(today_parts) != 3 or len(recorded_parts) != 3 or today_parts[1] != recorded_parts[1]:
        return False
    difference = np.abs(np.array(today_parts[2].split(), float)
                        - np.array(recorded_parts[2].split(), float))
    return bool(difference.max() <= BLOCK_MEAN_TOLERANCE)


def report_digest(comparison) -> dict:
    """The report without timings and library versions, and digests of its pictures."""
    report = comparison.report.model_dump(mode="json")
    report.pop("timings_ms", None)
    versions = report.pop("versions", {}) or {}
    report["model_version"] = versions.get("model")
    report["pictures"] = {
        "defect_map": picture_fingerprint(comparison.defect_map),
        "overlay": picture_fingerprint(comparison.overlay),
        "aligned_unit": picture_fingerprint(comparison.aligned_unit),
    }
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true",
                        help="rewrite the cases run in tests/data/report_snapshots.json with "
                        "today's reports (the others are kept)")
    parser.add_argument("--only", help="run the cases whose name contains this")
    args = parser.parse_args(argv)
    results = {}
    for case in cases():
        if args.only and args.only not in case.name:
            continue
        if case.needs_shared and not DEEPPCB.is_dir():
            print(f"skip {case.name}: {DEEPPCB} is not here", file=sys.stderr)
            continue
        digest = report_digest(run_case(case))
        results[case.name] = digest
        print(f"{case.name}: {digest['verdict']} ({len(digest['defects']['regions'])} regions)")
    if args.write:
        # Only the cases run are replaced: `--only X --write` (or a checkout without the shared
        # data) must not drop the other cases' snapshots. Cases that no longer exist go.
        names = {case.name for case in cases()}
        kept = json.loads(SNAPSHOT.read_text()) if SNAPSHOT.is_file() else {}
        snapshot = {name: digest for name, digest in kept.items() if name in names}
        snapshot.update(results)
        SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
        SNAPSHOT.write_text(json.dumps(snapshot, indent=1, sort_keys=True) + "\n")
        print(f"wrote {len(results)} of {len(snapshot)} reports to {SNAPSHOT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
