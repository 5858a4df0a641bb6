"""What the measurements read of one analysis image: linear colour, SSIM's grey, the defect
model's 8-bit input and the colour cue's smoothed CIELAB, each made once on first use.

The golden's views are made once per golden (:class:`vision.prepare.PreparedGolden`) and kept
for every unit; a unit's are made from its warp into the golden's analysis frame.
"""

from __future__ import annotations

import dataclasses
import functools

import cv2
import numpy as np

from calibration.fit import ColourCorrection
from imaging import color

__all__ = ["SSIM_PREFILTER_SIGMA", "AnalysisViews", "calibrated_views", "raw_views"]

SSIM_PREFILTER_SIGMA = 1.0
"""Analysis pixels; see :attr:`AnalysisViews.grey_for_ssim`."""

COLOUR_CUE_SIGMA = 2.0
"""Both Lab maps of the colour cue are blurred with this sigma (analysis pixels) first, so the
per-pixel CIEDE2000 is computed at half the analysis resolution and interpolated back."""


@dataclasses.dataclass(frozen=True)
class AnalysisViews:
    """What the colour, structure and defect stages read of one analysis image.

    (``cached_property`` writes the instance's ``__dict__`` directly, which a frozen dataclass
    allows; computing one twice in two threads is harmless.)
    """

    linear: np.ndarray  # linear RGB float32 (calibrated or as photographed)
    grey: np.ndarray  # sRGB-encoded luma uint8, for SSIM

    @functools.cached_property
    def grey_for_ssim(self) -> np.ndarray:
        """`grey` low-passed (Gaussian, sigma SSIM_PREFILTER_SIGMA) before SSIM.

        The unit reaches the analysis frame through a perspective warp (bilinear), the golden
        through an area shrink only: texture near the frame's resolution limit (a wood grain)
        survives in one and is half smoothed in the other, and SSIM read that as a structural
        defect on identical products (a bench pair: a 6000 px region at SSIM ~0.4). The same
        mild low-pass on both removes what only one of them resolves. It is the precedent of
        Wang et al.'s own SSIM code, which averages and downsamples images of this size by 3
        before comparing; a 1 cm defect spans tens of analysis pixels and stays.
        """
        return cv2.GaussianBlur(self.grey, (0, 0), SSIM_PREFILTER_SIGMA)

    @functools.cached_property
    def rgb8(self) -> np.ndarray:
        """`linear` encoded as 8-bit sRGB: the defect model's input (calibrated colours when
        the views are calibrated). Made on first use; the golden's is then kept for every unit."""
        return color.linear_to_srgb8(self.linear)

    @functools.cached_property
    def linear_smooth(self) -> np.ndarray:
        """`linear` halved (area filter) and blurred: the local colour in linear light, where
        light adds (:func:`vision.measure.highlights.added_light`)."""
        return _smooth_linear(self.linear)

    @functools.cached_property
    def lab_smooth(self) -> np.ndarray:
        """Blurred CIELAB at half resolution (the defect stage's colour cue): `linear_smooth`
        in CIELAB, made on first use, so its cost is counted where it is needed (the defects
        stage of a unit)."""
        return color.linear_rgb_to_lab(self.linear_smooth)


def _smooth_linear(linear: np.ndarray) -> np.ndarray:
    """A linear analysis image halved (area filter) and blurred: the local colour.

    Halving before the blur is the same low-pass (the area filter adds a 2x2 box, about
    sigma 0.3 analysis pixels, to sigma 2) at a quarter of the cost of what follows.
    """
    h, w = linear.shape[:2]
    half = cv2.resize(linear, ((w + 1) // 2, (h + 1) // 2), interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(half, (0, 0), COLOUR_CUE_SIGMA / 2.0)


def raw_views(rgb: np.ndarray) -> AnalysisViews:
    """The views of an 8-bit sRGB analysis image as photographed."""
    return AnalysisViews(color.srgb8_to_linear(rgb), cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))


def calibrated_views(rgb: np.ndarray, correction: ColourCorrection) -> AnalysisViews:
    """The views of an 8-bit analysis image corrected with its photo's colour card."""
    linear = correction.apply(rgb)
    # SSIM's grey: the calibrated luminance, sRGB-encoded (one channel to encode instead of
    # three). Both photos of a comparison use the same definition, so SSIM stays comparable.
    luminance = cv2.transform(linear, np.array([[0.2126, 0.7152, 0.0722]], np.float32))
    return AnalysisViews(linear, color.linear_to_srgb8(luminance))
