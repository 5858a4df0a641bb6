"""Pictures a person can point at: the golden photo with what changed marked on it, the
defect likelihood as a map, and the unit aligned onto the golden.

One path draws them for everyone (:func:`draw_pictures`): the CLI's ``--out`` at the photo's
size, the service at the analysis size it stores, both from what the comparison keeps
(:class:`PictureSources`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Literal

import cv2
import numpy as np

from imaging.geometry import resized_frame
from vision.frame import resize_mask
from vision.register import warp_to_golden
from vision.report import DefectRegion

__all__ = ["PictureSources", "Pictures", "aligned_unit", "dimmed", "draw_pictures",
           "heat_rgba", "overlay"]

_SEVERITY_RGB = {"critical": (220, 20, 60), "major": (255, 140, 0), "minor": (255, 215, 0)}
_LABEL_INK = {"critical": (255, 255, 255), "major": (0, 0, 0), "minor": (0, 0, 0)}
_ROI_RGB = (30, 144, 255)
# Sizes as shares of the picture's long side, so that a picture shown ~360 px wide on a phone
# still reads: digits ~16 px high (1/22), lines ~2 px (1/200).
_LABEL_HEIGHT = 1 / 22
_LINE_WIDTH = 1 / 200
_HERSHEY_DIGIT_PX = 22  # height of a digit of FONT_HERSHEY_SIMPLEX at scale 1


def dimmed(image: np.ndarray, amount: float = 0.5) -> np.ndarray:
    """The image faded towards grey: what is shown where nothing could be compared."""
    grey = np.full_like(image, 128)
    return cv2.addWeighted(image, 1.0 - amount, grey, amount, 0.0)


def heat_rgba(defect_map: np.ndarray) -> np.ndarray:
    """The defect likelihood (uint8, 0-255) as a see-through layer: clear below 0.25,
    yellow to red and more opaque as it rises, red and 85% opaque from 0.6 (0.5 is the
    candidate threshold). One colouring for the overlay and the report page's heat layer."""
    likelihood = defect_map.astype(np.float32) / 255.0
    ramp = np.clip((likelihood - 0.25) / 0.35, 0.0, 1.0)
    rgba = np.empty(defect_map.shape + (4,), np.uint8)
    rgba[..., 0] = 255
    rgba[..., 1] = np.round(230 * (1.0 - ramp)).astype(np.uint8)
    rgba[..., 2] = 0
    rgba[..., 3] = np.round(255 * 0.85 * np.sqrt(ramp)).astype(np.uint8)
    return rgba


def overlay(
    golden: np.ndarray,
    defect_map: np.ndarray,
    regions: Sequence[DefectRegion],
    roi: tuple[int, int, int, int] | None,
    compared: np.ndarray,
    scale: float = 1.0,
) -> np.ndarray:
    """The golden photo with the defect heat, numbered region boxes and the compared ROI.

    Parameters
    ----------
    golden : (H, W, 3) uint8 ndarray
        Golden photo, RGB.
    defect_map : (H, W) uint8 ndarray
        Defect likelihood 0-255 in golden pixels.
    regions : sequence of DefectRegion
        Boxes to draw, numbered in order (the report's order).
    roi : (x, y, w, h) or None
        The compared region, outlined in blue.
    compared : (H, W) bool ndarray
        Pixels that were compared; the rest is faded so nobody reads meaning into it.
    scale : float, optional
        Picture pixels per golden photo pixel, when `golden` is a smaller copy of the photo
        (a reduced decode, the service's stored pictures): the boxes of `regions` and `roi`
        are in the photo's pixels, as the report gives them.
    """
    out = np.where(compared[..., None], golden, dimmed(golden)).astype(np.uint8)
    # Only likelihoods near the candidate threshold and above are tinted, so the picture stays
    # readable: faint evidence everywhere would hide the real findings.
    heat = heat_rgba(defect_map)
    alpha = heat[..., 3:].astype(np.float32) / 255.0
    out = (out * (1 - alpha) + heat[..., :3] * alpha + 0.5).astype(np.uint8)
    long_side = max(golden.shape[:2])
    thickness = max(2, round(long_side * _LINE_WIDTH))
    def in_picture(box: tuple[int, int, int, int]) -> tuple[int, ...]:
        return tuple(box) if scale == 1.0 else tuple(round(v * scale) for v in box)

    if roi is not None:
        x, y, w, h = in_picture(roi)
        cv2.rectangle(out, (x, y), (x + w - 1, y + h - 1), _ROI_RGB, thickness)
    for number, region in enumerate(regions, start=1):
        x, y, w, h = in_picture(region.bbox)
        pad = 2 * thickness
        colour = _SEVERITY_RGB[region.severity]
        cv2.rectangle(out, (x - pad, y - pad), (x + w + pad, y + h + pad), colour, thickness)
        _label(out, str(number), (x - pad, y - pad), colour, _LABEL_INK[region.severity],
               long_side)
    return out


def _label(out: np.ndarray, text: str, corner: tuple[int, int], fill, ink,
           long_side: int) -> None:
    """`text` on a filled tag of colour `fill`, above the box corner (below it at the top
    edge), kept inside the picture: legible on any background."""
    font_scale = long_side * _LABEL_HEIGHT / _HERSHEY_DIGIT_PX
    weight = max(1, round(2 * font_scale))
    (tw, th), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, weight)
    margin = max(2, th // 4)
    tag_w, tag_h = tw + 2 * margin, th + baseline + margin
    height, width = out.shape[:2]
    x0 = min(max(0, corner[0]), max(0, width - tag_w))
    y0 = corner[1] - tag_h if corner[1] - tag_h >= 0 else corner[1]
    y0 = min(max(0, y0), max(0, height - tag_h))
    cv2.rectangle(out, (x0, y0), (x0 + tag_w, y0 + tag_h), fill, cv2.FILLED)
    cv2.putText(out, text, (x0 + margin, y0 + margin + th), cv2.FONT_HERSHEY_SIMPLEX,
                font_scale, ink, weight, cv2.LINE_AA)


@dataclasses.dataclass(frozen=True)
class PictureSources:
    """What a comparison's pictures are drawn from (every comparison keeps one)."""

    golden: np.ndarray  # the golden array, RGB uint8 (the photo or a reduced decode of it)
    golden_scale: float  # golden array pixels per golden photo pixel
    golden_analysis: np.ndarray  # the golden at the analysis size, RGB uint8
    analysis_scale: float  # analysis pixels per golden photo pixel
    unit: np.ndarray  # the unit array, RGB uint8
    unit_scale: float  # unit array pixels per unit photo pixel
    homography: np.ndarray | None  # unit photo pixels -> golden photo pixels; None: unregistered
    likelihood: np.ndarray | None = None  # defect likelihood 0-1, analysis frame; None: unmeasured
    region: np.ndarray | None = None  # bool, analysis frame: the compared pixels


@dataclasses.dataclass(frozen=True)
class Pictures:
    defect_map: np.ndarray  # uint8 0-255 defect likelihood on the background's pixels
    overlay: np.ndarray | None  # RGB uint8: the background with what changed marked on it
    aligned_unit: np.ndarray | None  # RGB uint8: the unit resampled onto the background


_ALIGNED_OUTSIDE = 128  # grey where the unit photo does not reach


def draw_pictures(sources: PictureSources, regions: Sequence[DefectRegion],
                  roi: tuple[int, int, int, int] | None, *, at: Literal["photo", "analysis"],
                  with_overlay: bool = True, with_aligned: bool = True) -> Pictures:
    """The pictures of a comparison on the golden array ("photo": the CLI's ``--out``) or on
    its analysis copy ("analysis": what the service stores).

    `regions` and `roi` are the report's (golden photo pixels). The defect map is always
    drawn; the overlay and the aligned unit when asked. Where nothing was measured the
    overlay is the dimmed golden and the map is empty.
    """
    background, scale = _background(sources, at)
    ih, iw = background.shape[:2]
    marked = None
    if sources.likelihood is None or sources.region is None:
        defect_map = np.zeros((ih, iw), np.uint8)
        if with_overlay:
            marked = dimmed(background)
    else:
        defect_map = cv2.resize((sources.likelihood * 255 + 0.5).astype(np.uint8), (iw, ih),
                                interpolation=cv2.INTER_LINEAR)
        if with_overlay:
            marked = overlay(background, defect_map, regions, roi,
                             resize_mask(sources.region, (iw, ih)), scale=scale)
    return Pictures(defect_map, marked,
                    aligned_unit(sources, at=at) if with_aligned else None)


def aligned_unit(sources: PictureSources, *, at: Literal["photo", "analysis"]
                 ) -> np.ndarray | None:
    """The unit resampled onto the golden's pixels ("photo" or "analysis" size, as
    :func:`draw_pictures`), mid-grey outside the unit photo; None when not registered.

    The unit is first halved (Gaussian pyramid) until the warp minifies by at most 2x, so it
    does not alias: ~35 ms for a 12 MP unit against ~190 ms for one area-filtered resize.
    """
    if sources.homography is None:
        return None
    background, scale = _background(sources, at)
    unit = sources.unit
    to_picture = resized_frame(scale) @ sources.homography @ resized_frame(1 / sources.unit_scale)
    zoom = float(np.sqrt(abs(np.linalg.det(to_picture[:2, :2]))))  # picture px per unit px
    while zoom < 0.5 and min(unit.shape[:2]) >= 32:
        unit = cv2.pyrDown(unit)  # output pixel i sits on input pixel 2i
        to_picture = to_picture @ np.diag([2.0, 2.0, 1.0])
        zoom *= 2.0
    aligned, valid = warp_to_golden(unit, to_picture, background.shape[:2])
    aligned[~valid] = _ALIGNED_OUTSIDE
    return aligned


def _background(sources: PictureSources, at: str) -> tuple[np.ndarray, float]:
    if at == "photo":
        return sources.golden, sources.golden_scale
    if at == "analysis":
        return sources.golden_analysis, sources.analysis_scale
    raise ValueError(f'at must be "photo" or "analysis", got {at!r}')
