"""End to end on domain-randomised renders (issue 23, item 5): renders that do not flatter us.

Pairs from :mod:`testkit.randomised` (flat prints, textureless moulded parts, bent metal with
highlights, fabric, circuit boards; plain, textured and cluttered tables; directional light
and cast shadows, glare, lens distortion and blur, perspective up to 35 degrees, exposure and
white-balance errors, JPEG quality 60-95; ~1 MP), compared as ``sealcheck compare GOLDEN UNIT``
compares them: both JPEGs decoded by ``vision.load.load_pair``, ``compare_side_by_side`` with
no spec (``--roi``: the spec a user would write, a box drawn loosely around the product).

Two splits, chosen by seed: ``tune`` (for choosing thresholds) and ``report`` (for quoting
figures; choose nothing on it). Figures, by product kind and overall:

- registration: the mean distance between the product's four corners on the golden and the
  same corners taken into the unit by the truth and back by the reported homography; within
  1 px, within 2 px, registered but more than 4 px off ("wrong"), not registered;
- verdicts right: ``pass`` for an identical unit; ``fail`` with a region on the defect (IoU >=
  0.1 or either box's centre inside the other, as ``eval_real.py``) for a defect; for a
  colour drift, ``fail`` when its true Delta-E00 exceeds the default tolerance (2.0), else
  ``pass`` (drifts are drawn well away from it: 0.4-1.0 or 3.5-7.0); never on a registration
  more than 4 px off;
- regions per clean (identical) pair.

Usage::

    python benchmarks/eval_randomised.py [--pairs 60] [--split report|tune|both] [--roi]
        [--photo-size 1152x864] [--json FILE] [--save DIR]
    python benchmarks/eval_randomised.py --summarise FILE   # the tables of a --json file
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from testkit.metrics import match_boxes  # noqa: E402
from testkit.randomised import (  # noqa: E402
    PHOTO_SIZE,
    PRODUCT_KINDS,
    RandomisedPair,
    randomised_pair,
)
from vision.compare import compare_side_by_side  # noqa: E402
from vision.load import load_pair  # noqa: E402
from vision.spec import Spec  # noqa: E402

SPLIT_SEEDS = {"tune": 0, "report": 1}
WRONG_PX = 4.0  # registered, yet this far off at the product's corners: wrong
CASE_CYCLE = ("identical", "defect", "drift", "identical", "defect")
ROI_MARGIN = 0.08  # --roi: a box drawn this much (of the product's size) outside it


@dataclasses.dataclass
class Outcome:
    index: int
    kind: str
    background: str
    case: str
    card: bool
    light_changed: bool
    unit_tilt_deg: float
    defect: str | None
    true_delta_e00: float
    expected: str
    verdict: str
    right: bool
    registered: bool
    corner_error_px: float | None  # None: not registered
    method: str
    regions: int
    region_on_defect: bool | None
    delta_e00: float | None
    reason: str  # the report's first reason
    seconds: float


def _corner_error(pair: RandomisedPair, homography) -> float:
    """Mean distance (golden px) of the product's corners: golden -> unit (truth) -> golden
    (the reported unit -> golden homography)."""
    in_unit = pair.golden_to_unit(pair.product_quad).reshape(-1, 1, 2)
    back = cv2.perspectiveTransform(in_unit, np.asarray(homography, np.float64)).reshape(-1, 2)
    return float(np.linalg.norm(back - pair.product_quad, axis=1).mean())


def _user_roi(pair: RandomisedPair) -> tuple[int, int, int, int]:
    """The box a user draws around the product on the golden: its outline plus a margin."""
    x0, y0 = pair.product_quad.min(axis=0)
    x1, y1 = pair.product_quad.max(axis=0)
    mx, my = (x1 - x0) * ROI_MARGIN, (y1 - y0) * ROI_MARGIN
    h, w = pair.golden.shape[:2]
    x0, y0 = max(0, int(x0 - mx)), max(0, int(y0 - my))
    return x0, y0, int(min(w, x1 + mx)) - x0, int(min(h, y1 + my)) - y0


def run_pair(index: int, split: str, *, roi: bool, save: Path | None,
             photo_size: tuple[int, int] = PHOTO_SIZE) -> Outcome:
    # Kinds in turn, and each kind through the cases in turn (2 identical, 2 defects, 1 drift
    # in 5); the rest (background, card, light, camera, defect) drawn from the seed.
    pair = randomised_pair([SPLIT_SEEDS[split], 23, index],
                           kind=PRODUCT_KINDS[index % len(PRODUCT_KINDS)],
                           case=CASE_CYCLE[index // len(PRODUCT_KINDS) % len(CASE_CYCLE)],
                           photo_size=photo_size)
    spec = Spec(roi=_user_roi(pair)) if roi else None
    start = time.perf_counter()
    (golden, golden_size), (unit, unit_size) = load_pair(pair.golden_jpeg, pair.unit_jpeg)
    comparison = compare_side_by_side(golden, unit, spec, golden_photo_size=golden_size,
                                      unit_photo_size=unit_size, render_images=save is not None)
    seconds = time.perf_counter() - start
    report = comparison.report
    error = (_corner_error(pair, report.registration.homography)
             if report.registration.ok else None)
    expected = pair.expected_verdict(report.spec.tolerances.delta_e00)
    on_defect = None
    if pair.case == "defect":
        boxes = [tuple(r.bbox) for r in report.defects.regions]
        on_defect = bool(match_boxes(boxes, [pair.defect_box()], rule="on_defect"))
    # A verdict reached on a wrong registration is right only by accident.
    right = (report.verdict == expected and on_defect is not False
             and (error is None or error <= WRONG_PX))
    camera = pair.unit_shot.camera
    outcome = Outcome(
        index, pair.kind, pair.background, pair.case, pair.card, pair.light_changed,
        round(camera.tilt_deg, 1), pair.defect_kind, round(pair.true_delta_e00, 2), expected,
        report.verdict, right, report.registration.ok, error, report.registration.method,
        len(report.defects.regions), on_defect, report.color.delta_e00,
        report.reasons[0] if report.reasons else "", seconds)
    if save is not None and not right:
        _save(save / f"{split}-{index:03d}-{pair.kind}-{pair.case}", pair, comparison, outcome)
    return outcome


def _save(directory: Path, pair: RandomisedPair, comparison, outcome: Outcome) -> None:
    """The photos, the report, the overlay and the truth of a pair judged wrongly."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "golden.jpg").write_bytes(pair.golden_jpeg)
    (directory / "unit.jpg").write_bytes(pair.unit_jpeg)
    (directory / "report.json").write_text(comparison.report.model_dump_json(indent=2))
    cv2.imwrite(str(directory / "overlay.png"), comparison.overlay[..., ::-1])
    truth = {"outcome": dataclasses.asdict(outcome), "defect_box": pair.defect_box(),
             "product_quad": pair.product_quad.tolist(),
             "homography_golden_to_unit": pair.homography_golden_to_unit.tolist(),
             "unit_camera": dataclasses.asdict(pair.unit_shot.camera),
             "unit_light": dataclasses.asdict(pair.unit_shot.light),
             "golden_light": dataclasses.asdict(pair.golden_shot.light)}
    (directory / "truth.json").write_text(json.dumps(truth, indent=2, default=str) + "\n")


def failure_mode(o: Outcome) -> str | None:
    """Why a pair was judged wrongly, from its outcome and the report's first reason."""
    if o.right:
        return None
    if not o.registered:
        return "not registered"
    if o.corner_error_px > WRONG_PX:
        return "registered wrongly"
    if o.reason.startswith("Colour cannot be decided"):
        return "colour undecided"
    if o.reason.startswith("Colour cannot be measured under a reflection"):
        return "colour under a reflection"
    if o.reason.startswith("Colour drift"):
        return "colour drift not there" if o.expected == "pass" else "other"
    if o.case == "defect":
        return "defect missed" if o.verdict == "pass" else "region beside the defect"
    if o.expected == "pass" and o.regions:
        return "false regions"
    if o.case == "drift":
        return "drift missed"
    return "other"


def summarise(outcomes: list[Outcome]) -> dict:
    errors = [o.corner_error_px for o in outcomes if o.registered]
    clean = [o for o in outcomes if o.case == "identical"]
    return {
        "pairs": len(outcomes),
        "within_1px": sum(e <= 1.0 for e in errors),
        "within_2px": sum(e <= 2.0 for e in errors),
        "wrong": sum(e > WRONG_PX for e in errors),
        "not_registered": sum(not o.registered for o in outcomes),
        "corner_error_median_px": statistics.median(errors) if errors else None,
        "right": sum(o.right for o in outcomes),
        "inconclusive": sum(o.verdict == "inconclusive" for o in outcomes),
        "regions_per_clean_pair": (sum(o.regions for o in clean) / len(clean)) if clean else None,
        "clean_pairs": len(clean),
    }


def _table(groups: dict[str, dict]) -> str:
    lines = ["| set | pairs | within 1 px | within 2 px | wrong (> 4 px) | not registered | "
             "median error px | verdicts right | inconclusive | regions per clean pair |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, s in groups.items():
        n = max(1, s["pairs"])
        median = s["corner_error_median_px"]
        clean = s["regions_per_clean_pair"]
        clean = "-" if clean is None else f"{clean:.2f} ({s['clean_pairs']})"
        lines.append(
            f"| {name} | {s['pairs']} | {s['within_1px']} ({s['within_1px'] / n:.0%}) | "
            f"{s['within_2px']} ({s['within_2px'] / n:.0%}) | {s['wrong']} | "
            f"{s['not_registered']} | {'-' if median is None else f'{median:.2f}'} | "
            f"{s['right']} ({s['right'] / n:.0%}) | {s['inconclusive']} | "
            f"{clean} |")
    return "\n".join(lines)


def report_split(outcomes: list[Outcome]) -> str:
    groups = {"all": summarise(outcomes)}
    for attribute, values in (("kind", PRODUCT_KINDS), ("case", ("identical", "defect", "drift")),
                              ("background", ("plain", "textured", "cluttered"))):
        for value in values:
            chosen = [o for o in outcomes if getattr(o, attribute) == value]
            if chosen:
                groups[f"{attribute}: {value}"] = summarise(chosen)
    for card in (True, False):
        chosen = [o for o in outcomes if o.card == card]
        if chosen:
            groups["card, other light" if card else "no card, same light"] = summarise(chosen)
    wrong = [o for o in outcomes if not o.right]
    modes = sorted({failure_mode(o) for o in wrong})
    lines = [_table(groups), "", "| failure mode | " + " | ".join(PRODUCT_KINDS) + " | all |",
             "|---|" + "---|" * (len(PRODUCT_KINDS) + 1)]
    for mode in modes:
        counts = [sum(failure_mode(o) == mode and o.kind == kind for o in wrong)
                  for kind in PRODUCT_KINDS]
        lines.append(f"| {mode} | " + " | ".join(map(str, counts)) + f" | {sum(counts)} |")
    lines += ["", f"judged wrongly ({len(wrong)}):"]
    for o in wrong:
        error = "-" if o.corner_error_px is None else f"{o.corner_error_px:.2f}"
        detail = o.defect or (f"true dE {o.true_delta_e00}, measured {o.delta_e00}"
                              if o.case == "drift" else "")
        lines.append(f"  #{o.index:03d} {o.kind:8s} {o.background:9s} {o.case:9s} {detail:28s} "
                     f"card={'y' if o.card else 'n'} tilt {o.unit_tilt_deg:4.1f}: expected "
                     f"{o.expected}, got {o.verdict} (registration {o.method}, error {error} px, "
                     f"{o.regions} regions, on defect {o.region_on_defect}) [{failure_mode(o)}]: "
                     f"{o.reason[:120]}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=60, help="pairs per split (default 60)")
    parser.add_argument("--split", choices=("report", "tune", "both"), default="report",
                        help="'tune' to choose thresholds, 'report' to quote (default)")
    parser.add_argument("--roi", action="store_true",
                        help="judge with a spec holding a box drawn loosely around the product")
    parser.add_argument("--json", type=Path, help="also write every outcome and the figures here")
    parser.add_argument("--save", type=Path,
                        help="write the photos, report, overlay and truth of wrong pairs here")
    parser.add_argument("--photo-size", default=f"{PHOTO_SIZE[0]}x{PHOTO_SIZE[1]}",
                        help="photo width x height (default %(default)s; the table is drawn "
                        "at 3 px/mm, so above ~1700 px wide it is enlarged, not sharper)")
    parser.add_argument("--summarise", type=Path, metavar="JSON",
                        help="print the tables of an earlier run's --json file; run nothing")
    args = parser.parse_args(argv)
    if args.summarise:
        for split, data in json.loads(args.summarise.read_text()).items():
            print(f"\nRandomised renders, split '{split}' ({len(data['pairs'])} pairs):\n")
            print(report_split([Outcome(**o) for o in data["pairs"]]))
        return 0
    try:
        photo_size = tuple(int(v) for v in args.photo_size.lower().split("x"))
        assert len(photo_size) == 2 and min(photo_size) >= 320
    except (ValueError, AssertionError):
        parser.error(f"--photo-size {args.photo_size!r}: give WIDTHxHEIGHT, e.g. 1152x864")
    splits = ("tune", "report") if args.split == "both" else (args.split,)
    start = time.perf_counter()
    results: dict[str, list[Outcome]] = {}
    for split in splits:
        results[split] = []
        for i in range(args.pairs):
            results[split].append(run_pair(i, split, roi=args.roi, save=args.save,
                                           photo_size=photo_size))
            if (i + 1) % 10 == 0:
                print(f"  {split}: {i + 1}/{args.pairs} pairs", file=sys.stderr, flush=True)
    spec = "a box drawn around the product" if args.roi else "no spec"
    for split, outcomes in results.items():
        print(f"\nRandomised renders, split '{split}' ({len(outcomes)} pairs), "
              f"`sealcheck compare` with {spec}:\n")
        print(report_split(outcomes))
    seconds = [o.seconds for outcomes in results.values() for o in outcomes]
    print(f"\n({time.perf_counter() - start:.0f} s; compare median "
          f"{statistics.median(seconds):.2f} s per pair)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(
            {split: {"summary": summarise(outcomes),
                     "pairs": [dataclasses.asdict(o) for o in outcomes]}
             for split, outcomes in results.items()}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
