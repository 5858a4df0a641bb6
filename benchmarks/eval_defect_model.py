"""Figures of the ONNX defect model (`make eval`): held-out synthetic pairs and real DeepPCB pairs.

Held-out synthetic pairs come from :mod:`models.synth`'s "heldout" split: products the training
never saw (the scikit-image photographs ``coffee`` and ``rocket``, and procedural circuits and
text from a disjoint seed range), half of them with defects. Every pair differs in light,
camera and colour drift (residual after calibration) and is misregistered by up to 3 px.

- pixel AUROC over all pixels of all pairs;
- region recall: a true defect (a connected component of the truth mask, pieces closer than
  5 px joined, at least the smallest region's area) is found when one reported region's box
  covers at least a third of its pixels
  (the rule of ``benchmarks/eval_verdicts.py``); false regions per defect-free pair;
- image AUROC of :func:`vision.defect_model.image_score` between defective and defect-free pairs.

Held-out phone-photo pairs (``testkit/scenes.py``, the held-out products only): another
camera pose and a small colour drift, registered with the true homography; see
:func:`evaluate_scenes`. Reported, no target of its own.

DeepPCB (../shared/data/deeppcb-val, 200 real template/test pairs, validation only, never
trained on): the pairs are aligned by the dataset's authors and go to the model as they are.
A reported region counts as a detection when its box has IoU > 0.33 with a ground-truth box,
one to one, class-agnostic (Tang et al. 2019, doi:10.48550/arXiv.1902.06197). DeepPCB's boxes
are drawn with a margin around the defect (median 34 x 33 px, none under 20 px); the model's
boxes are tight, so they are also scored grown to at least ``--min-box`` px a side about their
centre, the box convention of the dataset. Both figures are printed.

Usage: python benchmarks/eval_defect_model.py [--pairs 1000] [--size 320] [--threshold 0.5]
       [--min-area 12] [--join-gap 4] [--deeppcb DIR] [--model FILE] [--skip-synthetic]
       [--skip-scenes] [--skip-deeppcb] [--breakdown]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from models.synth import HELDOUT_PHOTOS, make_sample  # noqa: E402
from vision._regions import label_joined  # noqa: E402
from vision.defect_model import (  # noqa: E402
    DEFAULT_THRESHOLD,
    JOIN_GAP_PX,
    find_regions,
    image_score,
    model_version,
    predict_defect_map,
)

DEEPPCB = REPO.parent / "shared" / "data" / "deeppcb-val"


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with midranks for ties)."""
    scores = np.asarray(scores, np.float64).ravel()
    labels = np.asarray(labels, bool).ravel()
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(len(scores), np.float64)
    # Midranks: tied scores share the mean of their ranks.
    boundaries = np.flatnonzero(np.diff(sorted_scores)) + 1
    starts = np.concatenate([[0], boundaries])
    stops = np.concatenate([boundaries, [len(scores)]])
    midranks = (starts + stops + 1) / 2.0
    ranks[order] = np.repeat(midranks, stops - starts)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def true_defects(mask: np.ndarray, min_area_px: int) -> list[np.ndarray]:
    """The truth mask's defects: connected components, pieces closer than 5 px joined.

    Pieces smaller than the smallest reportable region (`min_area_px`) are not counted: a
    Perlin mask leaves a few specks of a handful of pixels beside its blob.
    """
    # The truth's own rule, a gap of up to 4 px: not the runtime's JOIN_GAP_PX, which may move.
    n, labels = label_joined(mask, join_gap_px=4)
    defects = [labels == k for k in range(1, n)]
    return [d for d in defects if d.sum() >= min_area_px]


def box_covers(bbox: tuple[int, int, int, int], defect: np.ndarray) -> bool:
    x, y, w, h = bbox
    return defect[y:y + h, x:x + w].sum() >= defect.sum() / 3


def evaluate_synthetic(args: argparse.Namespace) -> dict:
    pixel_scores, pixel_labels = [], []
    image_scores, image_labels = [], []
    thresholds = sorted({args.threshold, *args.sweep})
    found = dict.fromkeys(thresholds, 0)
    false_on_clean = dict.fromkeys(thresholds, 0)
    false_on_defective = dict.fromkeys(thresholds, 0)
    total = clean_pairs = ambiguous = 0
    # (order, size group, label) -> [found, defects], at args.threshold
    breakdown: dict[tuple[int, int, str], list[int]] = {}
    for index in range(args.pairs):
        sample = make_sample(args.split, args.first_index + index, size=args.size,
                             defect_probability=0.5, same_look_probability=0.0)
        prob = predict_defect_map(sample.golden, sample.unit, model=args.model)
        # Subsample pixels: 1000 pairs of 320^2 would be 100 M scores; every 4th row and column
        # keeps the estimate's error far below the figure's last digit.
        pixel_scores.append(prob[::4, ::4].ravel())
        pixel_labels.append(sample.mask[::4, ::4].ravel())
        defects = true_defects(sample.mask, args.min_area)
        defective = bool(defects)
        if sample.mask.any() and not defective:
            ambiguous += 1  # only specks below the smallest region: neither clean nor defective
            continue
        image_scores.append(image_score(prob))
        image_labels.append(defective)
        total += len(defects)
        clean_pairs += not defective
        for threshold in thresholds:
            regions = find_regions(prob, threshold=threshold, min_area_px=args.min_area,
                                   grow_threshold=min(args.grow or threshold / 2, threshold),
                                   join_gap_px=args.join_gap)
            if not defective:
                false_on_clean[threshold] += len(regions)
                continue
            hits = [any(box_covers(r.bbox, d) for r in regions) for d in defects]
            found[threshold] += sum(hits)
            if threshold == args.threshold:
                _tally(breakdown, sample, defects, hits)
            false_on_defective[threshold] += sum(
                not sample.mask[r.bbox[1]:r.bbox[1] + r.bbox[3], r.bbox[0]:r.bbox[0] + r.bbox[2]]
                .any() for r in regions)
    sweep = {t: (found[t] / max(total, 1), false_on_clean[t] / max(clean_pairs, 1),
                 false_on_defective[t]) for t in thresholds}
    recall, false_clean, false_defective = sweep[args.threshold]
    return {
        "pairs": args.pairs,
        "defective_pairs": args.pairs - clean_pairs - ambiguous,
        "ambiguous_pairs": ambiguous,
        "clean_pairs": clean_pairs,
        "pixel_auroc": auroc(np.concatenate(pixel_scores), np.concatenate(pixel_labels)),
        "defects": total,
        "recall": recall,
        "false_per_clean_pair": false_clean,
        "false_on_defective_pairs": false_defective,
        "image_auroc": auroc(np.array(image_scores), np.array(image_labels)),
        "sweep": sweep,
        "breakdown": {label: tally for (_, _, label), tally in sorted(breakdown.items())},
    }


_AREA_GROUPS = (30, 60, 120, 300, 1000)


def _tally(breakdown: dict[tuple[int, int, str], list[int]], sample, defects: list[np.ndarray],
           hits: list[bool]) -> None:
    """Recall by defect area, by kind (pairs with one kind of defect) and by product look."""
    binarised = len(np.unique(sample.golden)) <= 2
    kinds = sorted(set(sample.kinds))
    for defect, hit in zip(defects, hits, strict=True):
        # Keys sort as printed: area groups smallest first, then the look, then the kinds.
        size = int(np.searchsorted(_AREA_GROUPS, int(defect.sum()), side="right"))
        groups = [(0, size, f"area < {_AREA_GROUPS[size]} px" if size < len(_AREA_GROUPS)
                   else f"area >= {_AREA_GROUPS[-1]} px"),
                  (1, 0, "binarised scan" if binarised else "photo or colour art")]
        if len(kinds) == 1:
            groups.append((2, 0, f"kind {kinds[0]}"))
        for group in groups:
            tally = breakdown.setdefault(group, [0, 0])
            tally[0] += hit
            tally[1] += 1


def evaluate_scenes(args: argparse.Namespace) -> dict:
    """Phone-photo pairs from testkit/scenes.py, registered with the true homography.

    The held-out products photographed by a frontal golden camera and a hand-held unit camera
    (another pose, same light: the colour stage is not emulated here), a small uniform colour
    drift on the unit, and either no defect or one 10 mm scenes.py defect (a 1 cm defect on
    the 30 cm product). The unit is warped onto the golden at the analysis resolution (long
    side 1024) and the product's box is compared, as the pipeline will do.
    """
    from testkit.scenes import (
        DEFECT_KINDS,
        lab_shift,
        make_pair,
        random_phone_camera,
    )

    rng = np.random.default_rng(args.seed)
    per_kind: dict[str, list[bool]] = {}
    false_on_clean, clean_pairs = 0, 0
    scores, labels = [], []
    seed = 1000
    for product in HELDOUT_PHOTOS:
        for _ in range(args.scene_repeats):
            for kind in (None, *DEFECT_KINDS):
                camera = random_phone_camera(rng, light=False, max_tilt_deg=15,
                                             scale_range=(0.85, 1.2))
                drift = lab_shift(*rng.uniform(-1.0, 1.0, 3))
                pair = make_pair(product, unit_camera=camera, drift=drift,
                                 defects=((kind, 10.0),) if kind else (),
                                 seed=seed)
                seed += 1
                golden, unit, mask, valid = _analysis_crop(pair)
                prob = predict_defect_map(golden, unit, valid=valid, model=args.model)
                regions = find_regions(prob, threshold=args.threshold, min_area_px=args.min_area,
                                   grow_threshold=args.grow, join_gap_px=args.join_gap)
                scores.append(image_score(prob))
                labels.append(bool(mask.any()))
                if kind is None:
                    clean_pairs += 1
                    false_on_clean += len(regions)
                elif mask.any():
                    per_kind.setdefault(kind, []).append(
                        any(box_covers(r.bbox, mask) for r in regions))
    found = [hit for hits in per_kind.values() for hit in hits]
    return {
        "pairs": len(scores),
        "recall": float(np.mean(found)) if found else float("nan"),
        "per_kind": {k: f"{sum(v)}/{len(v)}" for k, v in per_kind.items()},
        "false_per_clean_pair": false_on_clean / max(clean_pairs, 1),
        "image_auroc": auroc(np.array(scores), np.array(labels)),
    }


def _analysis_crop(pair):
    """Golden, unit warped onto it, truth and footprint, in the product box at long side 1024."""
    gh, gw = pair.golden.shape[:2]
    s = 1024 / max(gh, gw)
    size = (int(round(gw * s)), int(round(gh * s)))
    scale = np.diag([s, s, 1.0])
    H = scale @ pair.homography_unit_to_golden @ np.diag([1 / s, 1 / s, 1.0])
    golden = cv2.resize(pair.golden, size, interpolation=cv2.INTER_AREA)
    unit_small = cv2.resize(pair.unit, (int(round(pair.unit.shape[1] * s)),
                                        int(round(pair.unit.shape[0] * s))),
                            interpolation=cv2.INTER_AREA)
    unit = cv2.warpPerspective(unit_small, H, size, flags=cv2.INTER_LINEAR)
    valid = cv2.warpPerspective(np.ones(unit_small.shape[:2], np.uint8), H, size,
                                flags=cv2.INTER_NEAREST) > 0
    mask = cv2.resize(pair.golden_defect_mask.astype(np.uint8), size,
                      interpolation=cv2.INTER_NEAREST) > 0
    x, y, w, h = (int(round(v * s)) for v in pair.roi)
    box = (slice(y, y + h), slice(x, x + w))
    return (np.ascontiguousarray(golden[box]), np.ascontiguousarray(unit[box]), mask[box],
            valid[box])


def _read_boxes(path: Path) -> np.ndarray:
    rows = [line.split()[:4] for line in path.read_text().splitlines() if line.strip()]
    return np.array(rows, np.float64).reshape(-1, 4)  # x1 y1 x2 y2


def _grow(box: np.ndarray, min_side: float) -> np.ndarray:
    x1, y1, x2, y2 = box
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    w, h = max(x2 - x1, min_side), max(y2 - y1, min_side)
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def match(predicted: list[np.ndarray], truth: np.ndarray, min_iou: float = 0.33) -> int:
    """True positives: greedy one-to-one matching by IoU, best pairs first."""
    candidates = sorted(((_iou(p, t), i, j) for i, p in enumerate(predicted)
                         for j, t in enumerate(truth)), reverse=True)
    used_p, used_t, hits = set(), set(), 0
    for iou, i, j in candidates:
        if iou <= min_iou:
            break
        if i not in used_p and j not in used_t:
            used_p.add(i)
            used_t.add(j)
            hits += 1
    return hits


def evaluate_deeppcb(args: argparse.Namespace) -> dict | None:
    pairs = sorted((Path(args.deeppcb) / "pairs").glob("*_golden.jpg"))
    if not pairs:
        return None
    counts = {"tight": [0, 0], "grown": [0, 0]}  # [true positives, predictions]
    n_truth = 0
    for golden_path in pairs:
        stem = golden_path.name.replace("_golden.jpg", "")
        golden = cv2.imread(str(golden_path), cv2.IMREAD_COLOR)[..., ::-1]
        unit = cv2.imread(str(golden_path.with_name(f"{stem}_unit.jpg")), cv2.IMREAD_COLOR)
        unit = unit[..., ::-1]
        truth = _read_boxes(golden_path.with_name(f"{stem}.txt"))
        n_truth += len(truth)
        prob = predict_defect_map(np.ascontiguousarray(golden), np.ascontiguousarray(unit),
                                  model=args.model)
        regions = find_regions(prob, threshold=args.threshold, min_area_px=args.min_area,
                                   grow_threshold=args.grow, join_gap_px=args.join_gap)
        tight = [np.array([r.bbox[0], r.bbox[1], r.bbox[0] + r.bbox[2], r.bbox[1] + r.bbox[3]],
                          np.float64) for r in regions]
        for name, boxes in (("tight", tight), ("grown", [_grow(b, args.min_box) for b in tight])):
            counts[name][0] += match(boxes, truth)
            counts[name][1] += len(boxes)
    result = {"pairs": len(pairs), "defects": n_truth}
    for name, (tp, n_pred) in counts.items():
        precision = tp / max(n_pred, 1)
        recall = tp / max(n_truth, 1)
        f = 2 * precision * recall / max(precision + recall, 1e-12)
        result[name] = {"precision": precision, "recall": recall, "f": f, "predicted": n_pred}
    return result


def _met(value: float, target: float, higher: bool = True) -> str:
    ok = value >= target if higher else value <= target
    return "met" if ok else "NOT MET"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    # 1000 pairs (~580 defects): with 200 (~130) the recall's standard error was 0.027, as
    # large as the distance to its target, and the figure moved by that between seeds.
    parser.add_argument("--pairs", type=int, default=1000, help="held-out synthetic pairs")
    parser.add_argument("--size", type=int, default=320, help="synthetic pair side, px")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    parser.add_argument("--min-area", type=int, default=12, help="smallest region, px")
    parser.add_argument("--join-gap", type=int, default=JOIN_GAP_PX,
                        help="region pieces at most this many px apart are one region")
    parser.add_argument("--grow", type=float, default=None,
                        help="regions extend over pixels above this (default: threshold / 2)")
    parser.add_argument("--sweep", type=float, nargs="*", default=[],
                        help="also print synthetic recall and false regions at these thresholds")
    parser.add_argument("--min-box", type=float, default=32.0,
                        help="DeepPCB: grow predicted boxes to at least this side, px")
    parser.add_argument("--deeppcb", default=str(DEEPPCB))
    parser.add_argument("--model", type=Path, default=None, help="an exported .onnx file")
    parser.add_argument("--split", default="heldout", choices=("heldout", "train"),
                        help="synthetic split; 'train' with --first-index past the training "
                        "pool gives unseen pairs of the training products, for choosing the "
                        "threshold without looking at the held-out figures")
    parser.add_argument("--first-index", type=int, default=0)
    parser.add_argument("--scene-repeats", type=int, default=1,
                        help="scenes.py phone pairs: repeats per held-out product and case")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--breakdown", action="store_true",
                        help="print the synthetic recall by defect area, kind and product look")
    parser.add_argument("--skip-synthetic", action="store_true")
    parser.add_argument("--skip-scenes", action="store_true")
    parser.add_argument("--skip-deeppcb", action="store_true")
    args = parser.parse_args(argv)

    print(f"model: {model_version(args.model)}; threshold {args.threshold}, "
          f"min area {args.min_area} px, pieces up to {args.join_gap} px apart joined")
    if not args.skip_synthetic:
        start = time.perf_counter()
        s = evaluate_synthetic(args)
        print(f"\n{args.split} synthetic: {s['pairs']} pairs of {args.size} px "
              f"({s['defective_pairs']} defective, {s['clean_pairs']} defect-free, "
              f"{s['ambiguous_pairs']} with specks only; "
              f"{time.perf_counter() - start:.0f} s)")
        print(f"  pixel AUROC           {s['pixel_auroc']:.4f}   target >= 0.98: "
              f"{_met(s['pixel_auroc'], 0.98)}")
        print(f"  region recall         {s['recall']:.3f}    ({s['defects']} defects) "
              f"target >= 0.90: {_met(s['recall'], 0.90)}")
        print(f"  false regions / defect-free pair {s['false_per_clean_pair']:.3f}   "
              f"target <= 0.2: {_met(s['false_per_clean_pair'], 0.2, higher=False)}")
        print(f"  (regions off the defects on defective pairs: {s['false_on_defective_pairs']})")
        print(f"  image AUROC           {s['image_auroc']:.4f}   target >= 0.97: "
              f"{_met(s['image_auroc'], 0.97)}")
        if args.breakdown:
            for group, (hit, count) in s["breakdown"].items():
                print(f"  recall, {group:22s} {hit / count:.3f} ({hit} of {count})")
        if args.sweep:
            for threshold, (recall, false_clean, false_defective) in s["sweep"].items():
                print(f"  threshold {threshold:.2f}: recall {recall:.3f}, false regions per "
                      f"defect-free pair {false_clean:.3f}, off-defect regions on defective "
                      f"pairs {false_defective}")
    if not args.skip_scenes:
        start = time.perf_counter()
        c = evaluate_scenes(args)
        print(f"\nheld-out phone-photo pairs (scenes.py, true homography): {c['pairs']} pairs "
              f"({time.perf_counter() - start:.0f} s)")
        print(f"  10 mm defects found   {c['recall']:.3f}   by kind: "
              + ", ".join(f"{k} {v}" for k, v in c["per_kind"].items()))
        print(f"  false regions / defect-free pair {c['false_per_clean_pair']:.3f}")
        print(f"  image AUROC           {c['image_auroc']:.4f}")
    if not args.skip_deeppcb:
        start = time.perf_counter()
        d = evaluate_deeppcb(args)
        if d is None:
            print(f"\nDeepPCB: no pairs found in {args.deeppcb}; skipped")
        else:
            print(f"\nDeepPCB validation (real): {d['pairs']} pairs, {d['defects']} defects, "
                  f"IoU > 0.33, class-agnostic ({time.perf_counter() - start:.0f} s)")
            for name, label in (("tight", "tight boxes"),
                                ("grown", f"boxes grown to >= {args.min_box:g} px")):
                r = d[name]
                print(f"  {label:24s} F {r['f']:.3f}  precision {r['precision']:.3f}  "
                      f"recall {r['recall']:.3f}  ({r['predicted']} regions)  "
                      f"target F >= 0.85: {_met(r['f'], 0.85)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
