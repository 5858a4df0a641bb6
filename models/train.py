"""Train the defect network from scratch on CPU, on synthetic pairs (:mod:`models.synth`).

The schedule is set in wall-clock minutes, not epochs: the learning rate follows a cosine from
the start to the end of the time budget, so a run of any length ends annealed, and a checkpoint
written on the way (every few minutes, ``last.pt``) is a usable model.

Data: a pool of samples is generated first, in worker processes, then reused with
augmentations that keep the truth (flips, quarter turns, swapping golden and unit, permuting
the colour channels), because generating a sample costs more than a training step on it.

Usage::

    python -m models.train --minutes 90                 # full run -> models/runs/full/
    python -m models.train --quick --out /tmp/q         # CI smoke: about a minute
    python -m models.export models/runs/full/last.pt    # -> models/defect_model.onnx
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
RUNS = REPO / "models" / "runs"


def _generate_chunk(args: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from models.synth import make_sample

    start, stop, size = args
    goldens, units, masks = [], [], []
    for index in range(start, stop):
        sample = make_sample("train", index, size=size)
        goldens.append(sample.golden)
        units.append(sample.unit)
        masks.append(sample.mask)
    return np.stack(goldens), np.stack(units), np.stack(masks)


def generate_pool(count: int, size: int, workers: int, first_index: int = 0
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`count` training samples (uint8 golden, uint8 unit, bool mask), in worker processes."""
    chunk = 64
    jobs = [(first_index + i, first_index + min(i + chunk, count), size)
            for i in range(0, count, chunk)]
    if workers <= 1:
        parts = [_generate_chunk(job) for job in jobs]
    else:
        context = multiprocessing.get_context("spawn")  # no fork of a threaded torch
        with context.Pool(workers) as pool:
            parts = pool.map(_generate_chunk, jobs)
    return tuple(np.concatenate([p[k] for p in parts]) for k in range(3))


def _augment(golden, unit, mask, rng: np.random.Generator):
    """Flips, quarter turns, golden/unit swap and channel order: the truth does not change."""
    k = int(rng.integers(4))
    golden, unit, mask = (np.rot90(a, k, axes=(1, 2)) for a in (golden, unit, mask))
    if rng.random() < 0.5:
        golden, unit, mask = (a[:, :, ::-1] for a in (golden, unit, mask))
    if rng.random() < 0.5:  # a missing part seen from the other side is an added part
        golden, unit = unit, golden
    order = rng.permutation(3)
    return golden[..., order], unit[..., order], mask


def features_numpy(golden: np.ndarray, unit: np.ndarray,
                   envelope_cells: tuple[int, ...] | None = None,
                   shift_search: tuple[int, int] | None = None) -> np.ndarray:
    """:meth:`DefectNet.features` for uint8 NHWC batches of even size, with OpenCV.

    Same numbers as the torch version (a test checks), several times faster on CPU, where
    torch's max pooling is slow; training calls :meth:`DefectNet.decode` on these.
    """
    import cv2

    from models.network import ENVELOPE_CELLS, GAIN_EPS, SHIFT_SEARCH

    envelope_cells = ENVELOPE_CELLS if envelope_cells is None else envelope_cells
    shift_search = SHIFT_SEARCH if shift_search is None else shift_search

    g = golden.astype(np.float32) / 255
    u = unit.astype(np.float32) / 255
    def cells(x: np.ndarray, reduce) -> np.ndarray:  # 2x2 cells; strided slices beat reshape
        return reduce(reduce(x[:, 0::2, 0::2], x[:, 1::2, 0::2]),
                      reduce(x[:, 0::2, 1::2], x[:, 1::2, 1::2]))

    g_hi, g_lo_neg = cells(g, np.maximum), -cells(g, np.minimum)
    gain = ((g.mean(axis=(1, 2)) + GAIN_EPS) / (u.mean(axis=(1, 2)) + GAIN_EPS))[:, None, None]
    u_hi = cells(u, np.maximum) * gain
    u_lo_neg = -cells(u, np.minimum) * gain
    def envelope(x: np.ndarray, k: int) -> np.ndarray:  # max over the window; the border never wins
        kernel = np.ones((k, k), np.uint8)
        return x if k == 1 else np.stack([cv2.dilate(image, kernel) for image in x])

    features = [g_hi, g_lo_neg, u_hi, u_lo_neg]
    for k in envelope_cells:
        features.append(np.maximum(u_hi - envelope(g_hi, k), 0)
                        + np.maximum(u_lo_neg - envelope(g_lo_neg, k), 0))
        features.append(np.maximum(g_hi - envelope(u_hi, k), 0)
                        + np.maximum(g_lo_neg - envelope(u_lo_neg, k), 0))
    if shift_search[0]:
        features.extend(_block_matched_residual(0.5 * (u_hi - u_lo_neg), 0.5 * (g_hi - g_lo_neg),
                                                *shift_search))
    stacked = np.concatenate(features, axis=3)
    return np.ascontiguousarray(stacked.transpose(0, 3, 1, 2))


def _block_matched_residual(unit: np.ndarray, golden: np.ndarray, radius: int, patch: int
                            ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`models.network._block_matched_residual` for NHWC batches.

    One shift at a time with a running minimum (numpy's argmin over a leading axis of shifts
    is slow), with the batch as the channels of OpenCV's box filter.
    """
    import cv2

    from models.network import shift_offsets

    count, height, width = unit.shape[:3]
    unit_sum = np.ascontiguousarray(unit.sum(axis=3).transpose(1, 2, 0))  # H W N
    padded = np.pad(golden.sum(axis=3).transpose(1, 2, 0), ((radius, radius), (radius, radius),
                                                            (0, 0)), mode="edge")
    offsets = shift_offsets(radius)
    best = np.zeros(((height + 1) // 2, (width + 1) // 2, count), np.intp)
    best_cost = None
    for k, (dy, dx) in enumerate(offsets):
        squared = np.square(unit_sum - padded[radius + dy:radius + dy + height,
                                              radius + dx:radius + dx + width])
        # Mean over the patch with zero padding, as torch's avg_pool2d with count_include_pad,
        # on every second cell.
        cost = cv2.boxFilter(squared, -1, (patch, patch), normalize=True,
                             borderType=cv2.BORDER_CONSTANT).reshape(squared.shape)[::2, ::2]
        if best_cost is None:
            best_cost = cost
            continue
        better = cost < best_cost  # strictly: the first (smallest) shift wins a tie
        best[better] = k
        np.minimum(best_cost, cost, out=best_cost)
    best = best.repeat(2, axis=0).repeat(2, axis=1)[:height, :width].transpose(2, 0, 1)  # N H W
    shift_y = np.array([dy for dy, _ in offsets])[best]
    shift_x = np.array([dx for _, dx in offsets])[best]
    n, y, x = np.ogrid[:count, :height, :width]
    # The border repeated, as grid_sample's padding_mode="border".
    matched = golden[n, np.clip(y + shift_y, 0, height - 1), np.clip(x + shift_x, 0, width - 1)]
    residual = np.abs(unit - matched)
    rms = np.sqrt(np.maximum(best_cost, 0)).repeat(2, axis=0).repeat(2, axis=1)[:height, :width]
    rms = rms.transpose(2, 0, 1)[..., None]
    return residual, rms


SMALL_DEFECT_CELLS = 32
"""Defects smaller than this many label cells (2x2 px each) weigh more in the focal term."""
SMALL_DEFECT_MAX_WEIGHT = 3.0


def small_defect_weights(mask_cells: np.ndarray, reference_cells: int = SMALL_DEFECT_CELLS,
                         max_weight: float = SMALL_DEFECT_MAX_WEIGHT) -> np.ndarray:
    """Per-cell loss weights (N, H, W) float32: sqrt(reference / area) on a defect's cells.

    Recall is counted per defect, the pixel loss per pixel: a 16 px speck has four label cells
    and weighs next to nothing beside a missing part's hundreds, while it counts as much in the
    recall. Specks of 12-30 px were found 56% of the time by the model trained without this
    against 96% for 300-1000 px (``benchmarks/eval_defect_model.py --split train
    --first-index 200000 --breakdown``: 1000 unseen pairs of the training products).
    The square root and the cap keep a speck from outweighing the clean cells around it, which
    would trade the false-region figure for it. Background and large defects weigh 1.
    """
    import cv2

    weights = np.ones(mask_cells.shape, np.float32)
    for i, mask in enumerate(mask_cells):
        if not mask.any():
            continue
        n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8),
                                                               connectivity=8)
        area = stats[:, cv2.CC_STAT_AREA].astype(np.float32)
        per_label = np.clip(np.sqrt(reference_cells / np.maximum(area, 1)), 1.0, max_weight)
        per_label[0] = 1.0  # the background
        weights[i] = per_label[labels]
    return weights


def dice_focal_loss(logits, target, gamma: float = 2.0, weight=None):
    """Focal loss (Lin et al. 2017, doi:10.1109/ICCV.2017.324; as in DRAEM) + soft Dice.

    The Dice term is half over the whole batch and half the mean over the pairs that have a
    defect: over the batch alone, a pair whose only defect is a 20 px speck weighs next to
    nothing beside a pair with a missing part, and small specks were most of the misses.
    `weight` (same shape as `target`) scales the focal term per cell
    (:func:`small_defect_weights`).
    """
    import torch
    import torch.nn.functional as F

    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p = torch.sigmoid(logits)
    p_t = p * target + (1 - p) * (1 - target)
    focal_per_cell = (1 - p_t) ** gamma * bce
    focal = (focal_per_cell if weight is None else focal_per_cell * weight).mean()
    inter = (p * target).sum()
    dice = 1 - (2 * inter + 1) / (p.sum() + target.sum() + 1)
    per_pair_inter = (p * target).sum((1, 2, 3))
    per_pair_dice = 1 - (2 * per_pair_inter + 1) / (p.sum((1, 2, 3)) + target.sum((1, 2, 3)) + 1)
    defective = target.sum((1, 2, 3)) > 0
    pair_dice = per_pair_dice[defective].mean() if bool(defective.any()) else dice
    return 5.0 * focal + 0.5 * dice + 0.5 * pair_dice


def _pool_cache(args: argparse.Namespace) -> Path:
    """The cached pool's file: a pure function of its size, its count and the generator's code
    (a hash of ``models/synth.py``, so that a changed generator never reuses an old pool)."""
    import hashlib

    code = hashlib.sha256((REPO / "models" / "synth.py").read_bytes()).hexdigest()[:8]
    return RUNS / f"pool-{args.pool}-{args.size}-{code}.npz"


def pool_only(args: argparse.Namespace) -> None:
    """Generate and cache the pool, without training (lets generation run ahead)."""
    cache = _pool_cache(args)
    golden, unit, mask = generate_pool(args.pool, args.size, args.workers)
    RUNS.mkdir(parents=True, exist_ok=True)
    np.savez(cache.with_suffix(".tmp.npz"), golden=golden, unit=unit, mask=mask)
    os.replace(cache.with_suffix(".tmp.npz"), cache)
    print(f"wrote {cache}", flush=True)


def train(args: argparse.Namespace) -> Path:
    import torch

    from models.network import DefectNet

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    cache = _pool_cache(args)
    if cache.exists() and not args.quick:
        print(f"loading {cache} ...", flush=True)
        with np.load(cache) as data:
            golden, unit, mask = data["golden"], data["unit"], data["mask"]
    else:
        print(f"generating {args.pool} training pairs ({args.size} px) ...", flush=True)
        golden, unit, mask = generate_pool(args.pool, args.size, args.workers)
        if not args.quick:
            RUNS.mkdir(parents=True, exist_ok=True)
            np.savez(cache.with_suffix(".tmp.npz"), golden=golden, unit=unit, mask=mask)
            os.replace(cache.with_suffix(".tmp.npz"), cache)
    gen_s = time.perf_counter() - started
    print(f"  done in {gen_s:.0f} s; {mask.any(axis=(1, 2)).mean():.0%} with a defect",
          flush=True)

    model = DefectNet(tuple(args.widths))
    config = {"widths": list(args.widths), "envelope_cells": list(model.envelope_cells),
              "shift_search": list(model.shift_search),
              "small_defect_cells": SMALL_DEFECT_CELLS,
              "small_defect_max_weight": SMALL_DEFECT_MAX_WEIGHT,
              "size": args.size, "pool": args.pool,
              "batch": args.batch, "minutes": args.minutes, "lr": args.lr, "seed": args.seed}
    optimiser = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    rng = np.random.default_rng(args.seed)
    budget_s = args.minutes * 60.0
    train_start = time.perf_counter()
    last_save = train_start
    step, losses = 0, []
    log = open(out / "train.log", "a")

    def save(tag: str) -> None:
        state = {"model": model.state_dict(), "config": config, "step": step,
                 "train_minutes": (time.perf_counter() - train_start) / 60,
                 "generate_minutes": gen_s / 60}
        torch.save(state, out / f"{tag}.pt.tmp")
        os.replace(out / f"{tag}.pt.tmp", out / f"{tag}.pt")

    model.train()
    while True:
        elapsed = time.perf_counter() - train_start
        if elapsed >= budget_s:
            break
        fraction = elapsed / budget_s
        warmup = min(1.0, (step + 1) / 100)
        lr = args.lr * warmup * 0.5 * (1 + math.cos(math.pi * fraction))
        for group in optimiser.param_groups:
            group["lr"] = lr
        batch = rng.integers(0, len(mask), args.batch)
        g, u, m = _augment(golden[batch], unit[batch], mask[batch], rng)
        x = torch.from_numpy(features_numpy(g, u, model.envelope_cells, model.shift_search))
        # The labels at the logits' half resolution: a cell is defective if any pixel is.
        m = np.ascontiguousarray(m).reshape(len(m), args.size // 2, 2, args.size // 2, 2)
        m = m.max(axis=(2, 4))
        weight = torch.from_numpy(small_defect_weights(m))[:, None]
        m = torch.from_numpy(m).float()[:, None]
        loss = dice_focal_loss(model.decode(x), m, weight=weight)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
        step += 1
        if step % 50 == 0:
            line = (f"step {step} {elapsed / 60:.1f} min lr {lr:.2e} "
                    f"loss {np.mean(losses[-50:]):.4f}")
            print(line, flush=True)
            log.write(line + "\n")
            log.flush()
        if time.perf_counter() - last_save > args.checkpoint_minutes * 60:
            save("last")
            last_save = time.perf_counter()
    save("last")
    (out / "config.json").write_text(json.dumps(
        {**config, "steps": step, "train_minutes": (time.perf_counter() - train_start) / 60,
         "generate_minutes": gen_s / 60, "first_loss": float(np.mean(losses[:5])),
         "final_loss": float(np.mean(losses[-5:]))},
        indent=2) + "\n")
    print(f"trained {step} steps in {(time.perf_counter() - train_start) / 60:.1f} min; "
          f"checkpoint {out / 'last.pt'}", flush=True)
    return out / "last.pt"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(RUNS / "full"))
    parser.add_argument("--minutes", type=float, default=90.0, help="training time budget")
    parser.add_argument("--pool", type=int, default=24000, help="generated training pairs")
    parser.add_argument("--size", type=int, default=160, help="crop size, px")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--widths", type=int, nargs=4, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="processes generating the pool")
    parser.add_argument("--checkpoint-minutes", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pool-only", action="store_true", help="generate the pool, then stop")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: 256 pairs of 96 px, 45 s of training")
    args = parser.parse_args(argv)
    if args.quick:
        args.pool, args.size, args.minutes, args.batch = 256, 96, 0.75, 8
    if args.widths is None:
        from models.network import DEFAULT_WIDTHS

        args.widths = list(DEFAULT_WIDTHS)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.pool_only:
        pool_only(args)
    else:
        train(args)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main())
