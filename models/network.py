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
  how the neighbourhood is misregistered, is for the learned part to see.

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

DEFAULT_WIDTHS = (16, 24, 32, 48)
"""Channels at 1/2, 1/4, 1/8 and 1/16 of the input resolution."""

_GAIN_EPS = 0.02  # keeps the gain match finite on near-black images


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
                 envelope_cells: tuple[int, ...] = ENVELOPE_CELLS) -> None:
        super().__init__()
        w1, w2, w3, w4 = widths
        self.widths = tuple(widths)
        self.envelope_cells = tuple(envelope_cells)
        # golden max/min, unit max/min, then two excesses per envelope window: RGB each
        n_features = 3 * (4 + 2 * len(self.envelope_cells))
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
        gain = (golden.mean((2, 3), keepdim=True) + _GAIN_EPS) / (
            unit.mean((2, 3), keepdim=True) + _GAIN_EPS)
        u_hi, u_lo_neg = F.max_pool2d(unit, 2, 2) * gain, F.max_pool2d(-unit, 2, 2) * gain
        features = [g_hi, g_lo_neg, u_hi, u_lo_neg]
        for k in self.envelope_cells:
            # Brighter than every golden value nearby, or darker than every one (and vice versa).
            features.append(F.relu(u_hi - _envelope(g_hi, k))
                            + F.relu(u_lo_neg - _envelope(g_lo_neg, k)))
            features.append(F.relu(g_hi - _envelope(u_hi, k))
                            + F.relu(g_lo_neg - _envelope(u_lo_neg, k)))
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
