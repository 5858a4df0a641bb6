"""Colour-card detection on hard renders, false cards, and the detector's cost (`make eval`).

- **cards**: renders of testkit/scenes.py with the card small (its patch grid 1-8 % of the
  frame's area), colour casts (a third of the photos without any white balance under tungsten
  to daylight, as an unbalanced machine-vision camera gives; the rest partly balanced), glare
  on 1-3 patches (a near-white highlight over a third of the patch, drawn on the photo), and
  any turn of the phone. A card counts as found when every reported grid corner lies within
  3 % of the grid's width of the true corner, in the right order (so a turned or shifted grid
  is a miss).
- **false cards**: card-less renders (all products and repetitive patterns, phone poses and
  lights) and the real DeepPCB pairs of ../shared/data/deeppcb-val/pairs/ (golden and unit).
- **time**: find_card on the 1024 px copy of the 12 MP bench pairs (bench-out/pairs/, made by
  ``python -m testkit.pairs``), where the card is easy: the fast path's cost.

Usage: python benchmarks/eval_card_renders.py [--cards N] [--bare N] [--seed S]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from calibration.charts import COLORCHECKER_CLASSIC  # noqa: E402
from calibration.detect import find_card  # noqa: E402
from imaging.resample import shrink_to_long_side  # noqa: E402
from testkit import scenes  # noqa: E402
from vision.decode import load_image  # noqa: E402
from vision.frame import ANALYSIS_SIZE  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEEPPCB = ROOT.parent / "shared" / "data" / "deeppcb-val" / "pairs"


def _grid_model_corners() -> np.ndarray:
    chart = COLORCHECKER_CLASSIC
    hw = ((chart.cols - 1) * chart.patch_pitch_mm + chart.patch_size_mm) / 2.0
    hh = ((chart.rows - 1) * chart.patch_pitch_mm + chart.patch_size_mm) / 2.0
    return np.array([[-hw, -hh], [hw, -hh], [hw, hh], [-hw, hh]], np.float32)


def add_glare(photo: np.ndarray, quad: np.ndarray, patches, rng) -> np.ndarray:
    """A near-white specular highlight over about a third of each of `patches`."""
    chart = COLORCHECKER_CLASSIC
    H = cv2.getPerspectiveTransform(_grid_model_corners(), quad.astype(np.float32))
    centres = cv2.perspectiveTransform(chart.patch_centres_mm().reshape(-1, 1, 2), H)
    side = np.linalg.norm(quad[1] - quad[0]) / chart.cols * chart.patch_size_mm \
        / chart.patch_pitch_mm
    out = photo.astype(np.float32)
    for i in patches:
        mask = np.zeros(photo.shape[:2], np.float32)
        offset = rng.uniform(-0.15, 0.15, 2) * side
        axes = (int(side * rng.uniform(0.25, 0.4)), int(side * rng.uniform(0.15, 0.3)))
        cv2.ellipse(mask, tuple(int(v) for v in centres[i, 0] + offset), axes,
                    float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
        mask = cv2.GaussianBlur(mask, (0, 0), max(1.0, side * 0.04))[..., None]
        out = out * (1 - 0.9 * mask) + 250 * 0.9 * mask
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def grid_area_fraction(quad: np.ndarray, shape) -> float:
    return float(cv2.contourArea(quad.astype(np.float32)) / (shape[0] * shape[1]))


def corners_right(found: np.ndarray, truth: np.ndarray, tolerance: float = 0.03) -> bool:
    width = np.linalg.norm(truth[1] - truth[0])
    return bool(np.linalg.norm(found - truth, axis=1).max() <= tolerance * width)


def unbalanced(camera):
    """The same camera without any white balance (gains 1; exposure keeps white unclipped)."""
    trial = dataclasses.replace(camera, white_balance=(1.0, 1.0, 1.0), exposure=1.0)
    white = trial.sensor_matrix() @ np.ones(3)
    return dataclasses.replace(trial, exposure=float(0.85 / white.max()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cards", type=int, default=100)
    parser.add_argument("--bare", type=int, default=200)
    parser.add_argument("--seed", type=int, default=31)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()

    found = visible = 0
    hard_times: list[float] = []
    by_size: dict[str, list[int]] = {}
    for i in range(args.cards):
        camera = scenes.random_lit_camera(rng, scale_range=(0.45, 0.9))
        cast = rng.random() < 1 / 3
        if cast:
            camera = unbalanced(camera)
        product = scenes.PRODUCT_IMAGES[i % len(scenes.PRODUCT_IMAGES)]
        pair = scenes.make_pair(product, golden_camera=camera, seed=900 + i)
        quad = pair.golden_card_quad
        h, w = pair.golden.shape[:2]
        if not ((quad >= 4).all() and (quad[:, 0] < w - 4).all() and (quad[:, 1] < h - 4).all()):
            continue
        glare = rng.choice(24, int(rng.integers(1, 4)), replace=False)
        photo = add_glare(pair.golden, quad, glare, rng)
        visible += 1
        small, _ = shrink_to_long_side(photo, ANALYSIS_SIZE)
        t0 = time.perf_counter()
        card = find_card(small, full_size=(w, h))
        hard_times.append(1000 * (time.perf_counter() - t0))
        ok = card is not None and corners_right(card.corners, quad)
        found += ok
        fraction = grid_area_fraction(quad, photo.shape)
        key = "<2%" if fraction < 0.02 else "2-5%" if fraction < 0.05 else ">=5%"
        by_size.setdefault(key, [0, 0])
        by_size[key][0] += ok
        by_size[key][1] += 1
        if args.verbose and not ok:
            print(f"  miss {i}: grid {100 * fraction:.1f}% of the frame, cast {cast}, "
                  f"glare on {sorted(glare.tolist())}, found {card is not None}", flush=True)

    false_renders = 0
    products = scenes.PRODUCT_IMAGES + scenes.REPETITIVE_PATTERNS
    for i in range(args.bare):
        camera = scenes.random_lit_camera(rng, scale_range=(0.6, 1.3))
        if rng.random() < 1 / 3:
            camera = unbalanced(camera)
        bare = scenes.make_pair(products[i % len(products)], golden_camera=camera,
                                card=False, seed=1300 + i)
        false_renders += find_card(bare.golden) is not None
    deeppcb = sorted(DEEPPCB.glob("*.jpg"))
    false_real = sum(find_card(load_image(p)) is not None for p in deeppcb)

    times = []
    for path in sorted((ROOT / "bench-out" / "pairs").glob("*/*.jpg")):
        photo = load_image(path)
        small, _ = shrink_to_long_side(photo, ANALYSIS_SIZE)
        find_card(small, full_size=(photo.shape[1], photo.shape[0]))  # warm
        runs = []
        for _ in range(5):
            t0 = time.perf_counter()
            find_card(small, full_size=(photo.shape[1], photo.shape[0]))
            runs.append(1000 * (time.perf_counter() - t0))
        times.append(float(np.median(runs)))

    print(f"card eval on renders, seed {args.seed}, {time.perf_counter() - start:.0f} s")
    print(f"  cards found (small, casts, glare on 1-3 patches): {found}/{visible} "
          f"({100 * found / max(visible, 1):.1f}%; target >= 99%); by grid area "
          + ", ".join(f"{k} {v[0]}/{v[1]}" for k, v in sorted(by_size.items())))
    print(f"  false cards: {false_renders}/{args.bare} card-less renders, "
          f"{false_real}/{len(deeppcb)} real DeepPCB photos")
    if hard_times:
        print(f"  find_card on these hard renders (the thorough pass when the fast one fails): "
              f"median {np.median(hard_times):.0f} ms, p90 {np.percentile(hard_times, 90):.0f}, "
              f"max {max(hard_times):.0f}")
    if times:
        print(f"  find_card on the 1024 px copy of the {len(times)} 12 MP bench photos: "
              f"median {np.median(times):.1f} ms (max {max(times):.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
