"""Colour-card calibration figures on synthetic photos with known truth (`make eval`).

Every photo is a render of testkit/scenes.py under a random light and camera
(`random_lit_camera`: tungsten to daylight, partial auto white balance, sensor crosstalk, sRGB
or gamma 1.9-2.5 tone curve, exposure, vignetting, noise, JPEG) and, for units, a hand-held
pose (any rotation, tilt up to 25 degrees, zoom 0.7-1.2 so the card usually stays in frame).

Figures:
- detection: cards found in photos where the card is fully visible; false cards in photos
  without one (all products, including the repetitive patterns);
- chart residual: mean CIEDE2000 of the fitted chart, per photo;
- absolute colour: CIEDE2000 between each photo's reported ROI colour and the printed truth;
- drift: |reported - true| Delta-E00 on defect-free pairs whose two photos differ in light and
  camera, calibrated and (for contrast) with calibration switched off;
- scale: reported px/mm against the truth at the card; a unit 1 % wider than the golden.

Usage: python benchmarks/eval_calibration.py [--pairs N] [--seed S]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from calibration.detect import find_card  # noqa: E402
from calibration.fit import calibrate_photo  # noqa: E402
from imaging.color import ciede2000  # noqa: E402
from testkit.scenes import (  # noqa: E402
    CARD_WIDTH_MM,
    PRODUCT_IMAGES,
    REPETITIVE_PATTERNS,
    lab_shift,
    make_pair,
    random_lit_camera,
)
from vision.compare import compare  # noqa: E402
from vision.prepare import prepare_golden  # noqa: E402
from vision.spec import parse_spec  # noqa: E402

# Products that register reliably (the colour wheel has too little texture, see README).
_PRODUCTS = tuple(p for p in PRODUCT_IMAGES if p != "colorwheel")


def _fully_visible(quad: np.ndarray, shape: tuple[int, ...], margin: float = 4.0) -> bool:
    h, w = shape[:2]
    return bool((quad[:, 0] >= margin).all() and (quad[:, 1] >= margin).all()
                and (quad[:, 0] <= w - 1 - margin).all() and (quad[:, 1] <= h - 1 - margin).all())


def _pct(values, q) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=40)
    parser.add_argument("--seed", type=int, default=23)
    parser.add_argument("--verbose", action="store_true", help="print each miss and outlier")
    args = parser.parse_args(argv)

    def outlier(what: str, value: float, limit: float, pair, detail: str = "") -> None:
        if args.verbose and value > limit:
            print(f"  outlier {what} {value:.3f} > {limit}: {pair.description} "
                  f"{detail}", flush=True)
    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()

    # Detection, chart residual and absolute colour, per photo.
    visible = found = false_cards = no_card_photos = 0
    residuals, absolute, ppm_errors = [], [], []
    for i in range(args.pairs):
        camera = random_lit_camera(rng, scale_range=(0.7, 1.2))
        pair = make_pair(_PRODUCTS[i % len(_PRODUCTS)], golden_camera=camera, seed=100 + i)
        if _fully_visible(pair.golden_card_quad, pair.golden.shape):
            visible += 1
            card = find_card(pair.golden)
            if card is not None:
                found += 1
                correction, _ = calibrate_photo(pair.golden, card)
                if correction is not None:
                    residuals.append(correction.residual_mean)
                ppm_errors.append(abs(card.px_per_mm(CARD_WIDTH_MM) / pair.golden_px_per_mm - 1))
                outlier("px/mm", ppm_errors[-1], 0.01, pair,
                        f"photo {i} method {card.method} ecc {card.ecc} fit {card.fit_error}")
        products = PRODUCT_IMAGES + REPETITIVE_PATTERNS
        bare = make_pair(products[i % len(products)], golden_camera=camera, card=False,
                         seed=300 + i)
        no_card_photos += 1
        false_cards += find_card(bare.golden) is not None

    # Pairs: drift, absolute colour, px/mm, calibrated vs not.
    errors, raw_errors, inconclusive = [], [], 0
    covered, uncertainties, undecided = [], [], 0
    for i in range(args.pairs):
        golden_camera = random_lit_camera(rng, pose=False)
        unit_camera = random_lit_camera(rng, scale_range=(0.7, 1.2))
        drift = lab_shift(*rng.uniform(-2.5, 2.5, 3))
        pair = make_pair(_PRODUCTS[i % len(_PRODUCTS)], golden_camera=golden_camera,
                         unit_camera=unit_camera, drift=drift, seed=500 + i)
        spec = parse_spec({"roi": list(pair.roi), "chart": {"width_mm": CARD_WIDTH_MM}})
        golden = prepare_golden(pair.golden)
        report = compare(golden, pair.unit, spec, render_images=False).report
        if report.color.delta_e00 is None:
            inconclusive += 1
            continue
        errors.append(abs(report.color.delta_e00 - pair.true_delta_e00))
        if report.color.uncertainty_e00 is not None:
            covered.append(errors[-1] <= report.color.uncertainty_e00)
            uncertainties.append(report.color.uncertainty_e00)
        undecided += report.verdict == "inconclusive"
        absolute.append(float(ciede2000(np.array(report.color.golden_lab), pair.golden_lab)))
        absolute.append(float(ciede2000(np.array(report.color.unit_lab), pair.unit_lab)))
        outlier("drift error", errors[-1], 0.75, pair, f"pair {i}")
        outlier("absolute golden", absolute[-2], 2.0, pair,
                f"pair {i} vignetting {golden_camera.vignetting:.2f}")
        outlier("absolute unit", absolute[-1], 2.0, pair,
                f"pair {i} vignetting {unit_camera.vignetting:.2f}")
        for name, side, truth in (("golden", report.calibration.golden, pair.golden_px_per_mm),
                                  ("unit", report.calibration.unit, pair.unit_px_per_mm)):
            if side.px_per_mm is not None:
                ppm_errors.append(abs(side.px_per_mm / truth - 1))
                outlier("px/mm", ppm_errors[-1], 0.01, pair,
                        f"pair {i} {name} method {side.method} conf {side.confidence}")
        raw = compare(golden, pair.unit, spec, render_images=False, calibrate=False).report
        if raw.color.delta_e00 is not None:
            raw_errors.append(abs(raw.color.delta_e00 - pair.true_delta_e00))

    # Dimensions: the same product, and one 1 % wider (3 mm on 300 mm).
    dimension_ok = dimension_n = 0
    stretch_errors = []
    for i in range(max(4, args.pairs // 4)):
        golden_camera = random_lit_camera(rng, pose=False)
        unit_camera = random_lit_camera(rng, scale_range=(0.7, 1.2))
        for stretch in (1.0, 1.01):
            pair = make_pair(_PRODUCTS[i % len(_PRODUCTS)], golden_camera=golden_camera,
                             unit_camera=unit_camera, unit_stretch=(stretch, 1.0),
                             seed=700 + i)
            spec = parse_spec({"roi": list(pair.roi), "tolerances": {"dimension_mm": 1.5},
                               "chart": {"width_mm": CARD_WIDTH_MM}})
            report = compare(pair.golden, pair.unit, spec, render_images=False).report
            if report.dimensions is None:
                continue
            dimension_n += 1
            truth_mm = (stretch - 1.0) * report.dimensions.golden_width_mm
            stretch_errors.append(abs(report.dimensions.delta_width_mm - truth_mm))
            outlier("width error mm", stretch_errors[-1], 1.0, pair,
                    f"dimension pair {i} stretch {stretch} registration "
                    f"{report.registration.method} rms {report.registration.rms_px}")
            too_big = any("Size differs" in r for r in report.reasons)
            dimension_ok += too_big == (stretch > 1.0)

    within = np.mean(np.array(errors) <= 0.75) if errors else 0.0
    print(f"calibration eval, {args.pairs} photos/pairs, seed {args.seed}, "
          f"{time.perf_counter() - start:.0f} s")
    print(f"  card found (fully visible):   {found}/{visible}")
    print(f"  false cards (no card):        {false_cards}/{no_card_photos}")
    print(f"  chart residual mean dE00:     median {_pct(residuals, 50):.2f}, "
          f"max {max(residuals, default=float('nan')):.2f} (target <= 1.5)")
    print(f"  absolute ROI colour dE00:     median {_pct(absolute, 50):.2f}, "
          f"max {max(absolute, default=float('nan')):.2f}, within 2.0: "
          f"{np.mean(np.array(absolute) <= 2.0):.0%}")
    print(f"  drift |reported - true|:      median {_pct(errors, 50):.2f}, "
          f"p90 {_pct(errors, 90):.2f}, within 0.75: {within:.0%} of {len(errors)} "
          f"measured; {inconclusive} inconclusive of {args.pairs} (target >= 90%)")
    print(f"  colour uncertainty_e00:       median {_pct(uncertainties, 50):.2f}, covers "
          f"|reported - true| on {np.mean(covered) if covered else float('nan'):.0%} of "
          f"{len(covered)}; verdict inconclusive on {undecided} measured pairs")
    print(f"  drift, calibration off:       median {_pct(raw_errors, 50):.2f}, "
          f"max {max(raw_errors, default=float('nan')):.2f}")
    print(f"  px/mm error:                  median {100 * _pct(ppm_errors, 50):.2f}%, "
          f"max {100 * max(ppm_errors, default=float('nan')):.2f}% (target <= 1%)")
    print(f"  1% wider unit:                judged right {dimension_ok}/{dimension_n} "
          f"(tolerance 1.5 mm; 1% = 3 mm), width error median "
          f"{_pct(stretch_errors, 50):.2f} mm, max {max(stretch_errors, default=0):.2f} mm")
    return 0


if __name__ == "__main__":
    sys.exit(main())
