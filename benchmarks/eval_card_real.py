"""Colour-card detection and calibration on real photos (`make eval`).

The photos are ../shared/data/colorchecker-photos/ (20 phone photos, MIT; see its README). No
corner truth comes with them, so a detection is checked independently of sealcheck's own fit:

- **re-fit check**: the 24 patches are re-sampled at the reported grid (median of each patch's
  inner third, full-resolution photo), decoded with the sRGB curve and fitted to the chart's
  published colours by a plain 3x3 matrix (least squares, linear RGB). The residual is the mean
  CIEDE2000 of that fit. The same fit is made for the 7 other ways the grid could be read (turned,
  mirrored): a right grid fits far better than any of them; a grid off by a patch or turned
  fits badly. A grid counts as right when its residual is below ``RIGHT_GRID_E00`` and at most
  half the best other reading's.
- **LOO**: the calibration's own leave-one-patch-out mean CIEDE2000 (what it reports); the
  model column says "+light" where a plane of light over the card was fitted with it.
- **nested LOO**: the same figure for the whole procedure: for each usable patch, the tone
  curve, the candidate choice (by its own inner LOO) and the light's slopes are all refitted
  without it (:func:`nested_loo`). The reported LOO chooses the candidate on the very errors it
  reports, so it is optimistic; this one is not. "at centre" predicts the left-out patch with
  the chosen plane of light removed at its place (as the reported LOO does); "in place" with
  the light left in (what a product beside the card gets).
- **time**: find_card on the photo as the pipeline gives it (the 1024 px analysis copy).
- **sheet**: the white sheet around the card (a band 8-25 mm beyond the card's outline,
  chart-model millimetres through the card's homography; the sheet's ArUco markers are
  outside it). Its colour is compared between photos of the same set-up, as photographed and
  calibrated with each photo's card. Pairs: every two photos of the same card size (the ten
  full-size photos with each other, the mini photos with each other: the same sheet, card and
  room; hand-held again), both with a card found and calibrated. "calibrated" is each photo
  corrected with its card; "policy" is what the report does (vision.calibrate.card_agreement:
  calibrated only where the card's own patches near the sheet's colour agree better between
  the photos calibrated than as photographed, else as photographed). Also: how often the
  policy's difference lies within the uncertainty the report gives it.

Splits (``--split``): the photos in name order alternate between "tune" (the 1st, 3rd, ...)
and "report"; each holds 9 cards and one photo without a card. Choices are made on "tune".

Usage: python benchmarks/eval_card_real.py [--photos DIR] [--split tune|report|all]
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from calibration.detect import find_card, sample_patch_grid  # noqa: E402
from calibration.fit import (  # noqa: E402
    calibrate_photo,
    chart_linear_reference,
    fit_correction,
)
from imaging.color import ciede2000, linear_rgb_to_lab, srgb_to_linear  # noqa: E402
from imaging.resample import shrink_to_long_side  # noqa: E402
from vision.calibrate import PhotoCalibration, card_agreement  # noqa: E402
from vision.decode import load_image  # noqa: E402
from vision.frame import ANALYSIS_SIZE  # noqa: E402

PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "colorchecker-photos"
RIGHT_GRID_E00 = 6.0  # a right grid's plain 3x3 fit; wrong readings give 15-30


def refit_residual(rgb: np.ndarray, H: np.ndarray, chart) -> float:
    """Mean CIEDE2000 of a plain 3x3 fit of the patches sampled at `H` to the reference."""
    values, _ = sample_patch_grid(rgb, H, chart, chart.patch_size_mm / 6.0, 7,
                                  border=cv2.BORDER_CONSTANT)
    camera = srgb_to_linear(np.median(values, axis=1) / 255.0)
    reference = chart_linear_reference(chart)
    matrix, *_ = np.linalg.lstsq(camera, reference, rcond=None)
    return float(np.mean(ciede2000(linear_rgb_to_lab(camera @ matrix),
                                   linear_rgb_to_lab(reference))))


def nested_loo(samples, chart) -> tuple[float, float]:
    """Mean CIEDE2000 of each usable patch predicted by the whole calibration fitted without
    it: (at the card's centre, in place); see the module's notes."""
    reference_lab = linear_rgb_to_lab(chart_linear_reference(chart))
    centre, in_place = [], []
    for i in np.flatnonzero(samples.usable):
        usable = samples.usable.copy()
        usable[i] = False
        correction = fit_correction(dataclasses.replace(samples, usable=usable), chart)
        if correction is None:
            continue
        camera = correction.linearise(samples.rgb8[i][None])
        light = 1.0 if correction.light_slopes is None else float(np.exp(
            chart.patch_centres_mm()[i] / 100.0 @ np.array(correction.light_slopes)))
        for errors, linear in ((centre, camera / light), (in_place, camera)):
            predicted = np.asarray(correction.apply_to_linear(linear)[0], np.float64)
            errors.append(float(ciede2000(linear_rgb_to_lab(predicted), reference_lab[i])))
    return float(np.mean(centre)), float(np.mean(in_place))


def other_readings(H: np.ndarray, chart):
    """The grid read the 7 other ways: chart-model symmetries of the 4 x 6 rectangle."""
    hw = ((chart.cols - 1) * chart.patch_pitch_mm + chart.patch_size_mm) / 2.0
    hh = ((chart.rows - 1) * chart.patch_pitch_mm + chart.patch_size_mm) / 2.0
    model = np.array([[-hw, -hh], [hw, -hh], [hw, hh], [-hw, hh]], np.float32)
    image = cv2.perspectiveTransform(model.reshape(-1, 1, 2).astype(np.float64),
                                     H).reshape(4, 2).astype(np.float32)
    for mirrored in (False, True):
        order = image[::-1] if mirrored else image
        for shift in range(4):
            if not mirrored and shift == 0:
                continue
            yield cv2.getPerspectiveTransform(model, np.roll(order, shift, axis=0))


def sheet_codes(rgb: np.ndarray, card) -> np.ndarray | None:
    """Median 8-bit RGB of the band 8-25 mm around the card."""
    w, h = card.chart.size_mm
    mask = np.zeros(rgb.shape[:2], np.uint8)
    for grow, value in ((25.0, 1), (8.0, 0)):
        outline = np.array([[-w / 2 - grow, -h / 2 - grow], [w / 2 + grow, -h / 2 - grow],
                            [w / 2 + grow, h / 2 + grow], [-w / 2 - grow, h / 2 + grow]])
        px = cv2.perspectiveTransform(outline.reshape(-1, 1, 2), card.homography)
        cv2.fillConvexPoly(mask, np.round(px.reshape(-1, 2)).astype(np.int32), value)
    pixels = rgb[mask.astype(bool)]
    if len(pixels) < 100:
        return None
    pixels = pixels[(pixels < 250).all(axis=1)]
    return np.median(pixels.astype(np.float64), axis=0)


def sheet_lab(codes: np.ndarray, correction) -> np.ndarray:
    """The sheet's CIELAB, as photographed (`correction` None) or calibrated."""
    if correction is None:
        linear = srgb_to_linear(codes / 255.0)
    else:
        linear = correction.apply_to_linear(correction.linearise(codes)[None])[0]
    return linear_rgb_to_lab(np.asarray(linear, np.float64))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", type=Path, default=PHOTOS)
    parser.add_argument("--split", choices=("tune", "report", "all"), default="all")
    args = parser.parse_args(argv)
    paths = sorted(args.photos.glob("*.jpg"))
    if args.split != "all":
        paths = paths[(0 if args.split == "tune" else 1)::2]
    if not paths:
        print(f"no photos in {args.photos}", file=sys.stderr)
        return 2
    print(f"{'photo':32s} {'found':>5s} {'method':>6s} {'refit':>6s} {'other':>6s} "
          f"{'grid':>5s} {'LOO':>5s} {'nLOO':>5s} {'nLOOp':>5s} {'model':>42s} {'ms':>6s}")
    found = right = 0
    loos, nested, times, sheets = [], [], [], {}
    for path in paths:
        rgb = load_image(path)
        small, _ = shrink_to_long_side(rgb, ANALYSIS_SIZE)
        start = time.perf_counter()
        card = find_card(small, full_size=(rgb.shape[1], rgb.shape[0]))
        times.append(1000 * (time.perf_counter() - start))
        if card is None:
            print(f"{path.name:32s} {'no':>5s} {'':>6s} {'':>6s} {'':>6s} {'':>5s} {'':>5s} "
                  f"{'':>5s} {'':>5s} {'':>42s} {times[-1]:6.0f}")
            continue
        found += 1
        refit = refit_residual(rgb, card.homography, card.chart)
        other = min(refit_residual(rgb, H, card.chart)
                    for H in other_readings(card.homography, card.chart))
        ok = refit < RIGHT_GRID_E00 and refit <= 0.5 * other
        right += ok
        correction, samples = calibrate_photo(rgb, card)
        loo = correction.loo_delta_e00_mean if correction is not None else float("nan")
        model = "" if correction is None else (
            f"{correction.tone_curve}/{correction.model}"
            + ("+light" if correction.light_slopes is not None else ""))
        nested_centre = nested_in_place = float("nan")
        if correction is not None:
            loos.append(loo)
            nested_centre, nested_in_place = nested_loo(samples, card.chart)
            nested.append((nested_centre, nested_in_place))
            group = "mini" if "mini" in path.name else "full"
            codes = sheet_codes(rgb, card)
            if codes is not None:
                sheets[path.name] = (group, codes, PhotoCalibration(card, correction, samples))
        print(f"{path.name:32s} {'yes':>5s} {card.method:>6s} {refit:6.2f} {other:6.2f} "
              f"{'ok' if ok else 'WRONG':>5s} {loo:5.2f} {nested_centre:5.2f} "
              f"{nested_in_place:5.2f} {model:>42s} {times[-1]:6.0f}")

    raw_d, cal_d, policy_d, worse, policy_worse, covered, uncertainty = [], [], [], [], [], 0, []
    for (a, (ga, sa, ka)), (b, (gb, sb, kb)) in itertools.combinations(sheets.items(), 2):
        if ga != gb:
            continue
        ca = sheet_lab(sa, ka.correction)
        raw_d.append(float(ciede2000(sheet_lab(sa, None), sheet_lab(sb, None))))
        cal_d.append(float(ciede2000(ca, sheet_lab(sb, kb.correction))))
        agreement = card_agreement(ka, kb, ca)
        helps = agreement.calibration_helps
        policy_d.append(cal_d[-1] if helps else raw_d[-1])
        uncertainty.append(agreement.uncertainty_e00 if helps else agreement.as_photographed)
        covered += policy_d[-1] <= uncertainty[-1]
        if cal_d[-1] > raw_d[-1] + 0.3:
            worse.append(f"{a}/{b} {cal_d[-1]:.2f}>{raw_d[-1]:.2f}")
        if policy_d[-1] > raw_d[-1] + 0.3:
            policy_worse.append(f"{a}/{b} {policy_d[-1]:.2f}>{raw_d[-1]:.2f} (card "
                                f"{agreement.calibrated:.2f} vs {agreement.as_photographed:.2f})")
    n = len(paths)
    print(f"summary: card found {found}/{n}, grid right by the re-fit check {right}/{found}, "
          f"LOO dE00 median {np.median(loos) if loos else float('nan'):.2f} "
          f"(max {max(loos, default=float('nan')):.2f}), detection ms median "
          f"{np.median(times):.0f} (max {max(times):.0f})")
    if nested:
        print(f"nested LOO (the whole procedure refitted without each patch) dE00 median: at "
              f"the card's centre {np.median([c for c, _ in nested]):.2f}, in place "
              f"{np.median([p for _, p in nested]):.2f}")
    if raw_d:
        print(f"sheet around the card, {len(raw_d)} same-set-up pairs: dE00 as photographed "
              f"median {np.median(raw_d):.2f} (max {max(raw_d):.2f}), calibrated median "
              f"{np.median(cal_d):.2f} (max {max(cal_d):.2f}); calibrated > photographed + 0.3 "
              f"in {len(worse)}: {', '.join(worse[:8])}{' ...' if len(worse) > 8 else ''}")
        print(f"  policy (calibrated where the card says it helps): median "
              f"{np.median(policy_d):.2f} (max {max(policy_d):.2f}), calibrated on "
              f"{len(raw_d) - sum(p == r for p, r in zip(policy_d, raw_d, strict=True))}; "
              f"> photographed + 0.3 in {len(policy_worse)}: {', '.join(policy_worse[:8])}"
              f"{' ...' if len(policy_worse) > 8 else ''}")
        print(f"  the report's color.uncertainty_e00 for these pairs: median "
              f"{np.median(uncertainty):.2f}; the policy's difference lies within it in "
              f"{covered} of {len(cal_d)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
