"""The defect network: a small fully convolutional U-Net over a registered golden/unit pair.

Input: the golden and the unit crops, registered and colour-calibrated, as two float tensors
``(N, 3, H, W)`` in [0, 1]. Output: a per-pixel defect logit map ``(N, 1, H, W)``; any H and W
work (the decoder resizes to its skip connections' sizes), which the ONNX export keeps dynamic.

The first layers are fixed, not learned, because they carry invariances that a small network
would otherwise spend most of its capacity and data on:

- a per-channel gain match of the unit to the golden (residual exposure and white balance
  after calibration, and small uniform colour drift, are the colour stage's business);
- 2x2 max and min pooling, so the network runs at half resolution without losing one-pixel
  scratches or pin holes (the max keeps bright thin lines, the min keeps dark ones);
- tolerance envelopes: how far the unit leaves the range of the golden's values in a 5x5-cell
  (about +-4 px) neighbourhood, and the other way round. Misregistration of a few pixels moves
  an edge inside that range, while a missing or added part leaves it. This is the
  neighbourhood-tolerant comparison of classical PCB inspection (the template is dilated and
  eroded before it is compared), as a pair of max-pools. The coarse window hides a small speck
  that lies within 4 px of anything of its colour (a print speck beside a letter), so finer
  windows (3x3 cells, and the cell itself) are given beside it; which one to trust, given
  how the neighbourhood is misregistered, is for the learned part to see;
- a block-matched residual: for every cell, the shift (within one cell) that best matches its
  5x5-cell neighbourhood of the unit to the golden, and the cell's own difference at that
  shift. Misregistered edges leave nothing there while a speck beside them, too small to
  choose the shift, stays whole: it shows what the envelopes hide when the golden has the
  speck's colour anywhere nearby (most of the previous model's misses).

The learned part is a U-Net (Ronneberger, Fischer & Brox 2015, doi:10.1007/978-3-319-24574-4_28)
with few channels and four scales (1/2 to 1/16), sized to run a 1024x768 pair in well under
120 ms on two CPU cores with onnxruntime.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ENVELOPE_CELLS = (5, 3, 1)
"""Tolerance windows of the envelope features, in 2x2 cells (5 cells: about +-4 full pixels).

The first model (v1) had the coarse window only; a checkpoint's config names its windows.
"""

SHIFT_SEARCH = (1, 5)
"""Local shift search of the block-matched residual: radius and patch side, in 2x2 cells.

One cell (2 px) each way: the analysis images are registered to within a pixel or two, and a
radius of 2 cells (covering all of the +-3 px the network tolerates) cost 34% more inference
time against 19% for this one (1024x768, onnxruntime, 2 threads); the envelopes take the rest.
A 5-cell (10 px) patch is large enough that a speck of a few pixels does not choose the shift
itself. ``(0, 0)`` switches the search off (the models before 2026-11-27 afternoon had none).
"""


def shift_offsets(radius: int) -> list[tuple[int, int]]:
    """The searched shifts (dy, dx), nearest first: on a tie (flat or binarised surfaces) the
    smallest shift wins, as torch's, numpy's and ONNX's argmin all return the first minimum."""
    offsets = [(dy, dx) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)]
    return sorted(offsets, key=lambda o: (o[0] ** 2 + o[1] ** 2, o))


DEFAULT_WIDTHS = (16, 24, 32, 48)
"""Channels at 1/2, 1/4, 1/8 and 1/16 of the input resolution."""

GAIN_EPS = 0.02  # keeps the gain match finite on near-black images


def _conv(c_in: int, c_out: int, kernel: int = 3, stride: int = 1, dilation: int = 1) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride, padding=dilation * (kernel // 2),
                  dilation=dilation, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


def _envelope(x: torch.Tensor, cells: int) -> torch.Tensor:
    """Maximum over a `cells` x `cells` window (the cell itself for 1)."""
    return x if cells == 1 else F.max_pool2d(x, cells, 1, cells // 2)


def _block_matched_residual(unit: torch.Tensor, golden: torch.Tensor, radius: int,
                            patch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The unit's difference from the golden where the neighbourhood says the golden lies.

    For every cell, the shift (within +-`radius` cells) that best matches the `patch` x `patch`
    neighbourhood of the unit to the golden (least mean squared difference of the channel sums:
    block matching, as in video motion estimation), and the cell's own RGB difference at that
    shift. An edge moved by misregistration has nothing left at its neighbourhood's shift,
    while a speck beside it, too small to choose the shift, stays whole; the tolerance
    envelopes hide such a speck whenever the golden has its colour anywhere nearby. The second
    output is the root mean squared difference of the best match: where no shift fits (a large
    defect, a distorted neighbourhood) the residual says less.
    """
    height, width = unit.shape[-2:]
    unit_sum, golden_sum = unit.sum(1, keepdim=True), golden.sum(1, keepdim=True)
    offsets = shift_offsets(radius)
    # Every shifted copy of the golden at once: a convolution whose kernel k is one-hot at
    # shift k (in the exported graph one Conv, not a Slice, Sub and Pow per shift and a Concat).
    side = 2 * radius + 1
    one_hot = torch.zeros(len(offsets), 1, side, side, dtype=unit.dtype)
    for k, (dy, dx) in enumerate(offsets):
        one_hot[k, 0, radius + dy, radius + dx] = 1
    shifted = F.conv2d(F.pad(golden_sum, (radius,) * 4, mode="replicate"), one_hot)
    squared = (unit_sum - shifted) ** 2
    # The patch mean (zero padding, fixed divisor) on every second cell: the best shift varies
    # slowly, and this quarters the pooling and the argmin. Separable: 2 x patch adds.
    cost = F.avg_pool2d(squared, (patch, 1), (2, 1), (patch // 2, 0), count_include_pad=True)
    cost = F.avg_pool2d(cost, (1, patch), (1, 2), (0, patch // 2), count_include_pad=True)
    best = cost.argmin(1, keepdim=True)  # N 1 H/2 W/2
    table = torch.tensor(offsets, dtype=unit.dtype)
    # dy, dx and the match's rms error, N 3 H/2 W/2, brought to full size by one Resize.
    per_cell = torch.cat([table[:, 0][best], table[:, 1][best],
                          cost.gather(1, best).clamp_min(0).sqrt()], 1)
    per_pixel = F.interpolate(per_cell, size=(height, width), mode="nearest")
    shift, rms = per_pixel[:, :2], per_pixel[:, 2:]
    # The golden's pixel at each cell's shift, by nearest-neighbour sampling with the border
    # repeated (one GridSample in the exported graph, instead of a select per shift).
    y = torch.arange(height, dtype=unit.dtype)[:, None] + shift[:, 0]
    x = torch.arange(width, dtype=unit.dtype)[None, :] + shift[:, 1]
    grid = torch.stack([2 * x / max(width - 1, 1) - 1, 2 * y / max(height - 1, 1) - 1], -1)
    matched = F.grid_sample(golden, grid, mode="nearest", padding_mode="border",
                            align_corners=True)
    return (unit - matched).abs(), rms


def _up_to(x: torch.Tensor, like: torch.Tensor, mode: str = "nearest") -> torch.Tensor:
    # Nearest inside the decoder (a 3x3 convolution follows and smooths; bilinear Resize costs
    # ~6x more in onnxruntime), bilinear only for the one-channel output map.
    if mode == "nearest":
        return F.interpolate(x, size=like.shape[-2:], mode="nearest")
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)


class DefectNet(nn.Module):
    """Golden + unit (registered) -> defect logits, same height and width."""

    def __init__(self, widths: tuple[int, int, int, int] = DEFAULT_WIDTHS,
                 fine_decoder: bool = False,
                 envelope_cells: tuple[int, ...] = ENVELOPE_CELLS,
                 shift_search: tuple[int, int] = SHIFT_SEARCH) -> None:
        super().__init__()
        w1, w2, w3, w4 = widths
        self.widths = tuple(widths)
        self.envelope_cells = tuple(envelope_cells)
        self.shift_search = tuple(shift_search)
        # golden max/min, unit max/min, then two excesses per envelope window: RGB each; then
        # the block-matched residual (RGB) and how well the best shift matched (one channel)
        n_features = 3 * (4 + 2 * len(self.envelope_cells)) + (4 if self.shift_search[0] else 0)
        self.stem = nn.Sequential(_conv(n_features, w1, kernel=1),
                                  *([_conv(w1, w1)] if fine_decoder else []))
        self.down2 = nn.Sequential(_conv(w1, w2, stride=2), _conv(w2, w2))
        self.down3 = nn.Sequential(_conv(w2, w3, stride=2), _conv(w3, w3))
        self.down4 = nn.Sequential(_conv(w3, w4, stride=2), _conv(w4, w4),
                                   _conv(w4, w4, dilation=2))
        # Decoder: skips are added, not concatenated (as in a feature pyramid network), because
        # at half resolution a concat and a wide resize cost more than the convolutions.
        self.lateral3 = nn.Conv2d(w4, w3, 1)
        self.lateral2 = nn.Conv2d(w3, w2, 1)
        self.lateral1 = nn.Conv2d(w2, w1, 1)
        self.fuse3 = _conv(w3, w3)
        self.fuse2 = _conv(w2, w2)
        self.fuse1 = _conv(w1, w1) if fine_decoder else nn.ReLU()
        self.head = nn.Conv2d(w1, 1, 1)

    def features(self, golden: torch.Tensor, unit: torch.Tensor) -> torch.Tensor:
        """The fixed, invariance-carrying half-resolution features (see the module docstring).

        Minima are carried negated (max of the negated image), which saves a negation per
        pooling in the exported graph; the learned 1x1 convolution that follows absorbs the sign.
        """
        g_hi, g_lo_neg = F.max_pool2d(golden, 2, 2), F.max_pool2d(-golden, 2, 2)
        gain = (golden.mean((2, 3), keepdim=True) + GAIN_EPS) / (
            unit.mean((2, 3), keepdim=True) + GAIN_EPS)
        u_hi, u_lo_neg = F.max_pool2d(unit, 2, 2) * gain, F.max_pool2d(-unit, 2, 2) * gain
        features = [g_hi, g_lo_neg, u_hi, u_lo_neg]
        for k in self.envelope_cells:
            # Brighter than every golden value nearby, or darker than every one (and vice versa).
            features.append(F.relu(u_hi - _envelope(g_hi, k))
                            + F.relu(u_lo_neg - _envelope(g_lo_neg, k)))
            features.append(F.relu(g_hi - _envelope(u_hi, k))
                            + F.relu(g_lo_neg - _envelope(u_lo_neg, k)))
        if self.shift_search[0]:
            # Mid-range of each cell (max and min are already there) as the cell's colour.
            features.extend(_block_matched_residual(0.5 * (u_hi - u_lo_neg),
                                                    0.5 * (g_hi - g_lo_neg), *self.shift_search))
        return torch.cat(features, 1)

    def forward(self, golden: torch.Tensor, unit: torch.Tensor) -> torch.Tensor:
        logits = self.decode(self.features(golden, unit))
        return _up_to(logits, golden, mode="bilinear")

    def decode(self, features: torch.Tensor) -> torch.Tensor:
        """The learned U-Net on the fixed features; logits at half resolution."""
        x1 = self.stem(features)
        x2 = self.down2(x1)
        x3 = self.down3(x2)
        x4 = self.down4(x3)
        y = self.fuse3(x3 + _up_to(self.lateral3(x4), x3))
        y = self.fuse2(x2 + _up_to(self.lateral2(y), x2))
        y = self.fuse1(x1 + _up_to(self.lateral1(y), x1))
        return self.head(y)
