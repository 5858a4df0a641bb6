"""Find the colour card in a photo: where its patch grid is, which way round, how sure.

Three steps, each checking the one before:

1. **Locate**, a cascade that stops at the first good card. The fast pass: OpenCV's
   `cv2.mcc` on a 640 px copy with few threshold windows (an easy card costs only this). Then
   the thorough pass, only when the fast one found no good card: `cv2.mcc` with OpenCV's own
   settings on the whole detection copy (small cards, ~2 % of the frame, that the 640 px copy
   loses). Last, a locator of our own (:func:`calibration.grid.locate_patch_grid`) looks for
   a grid of uniform quadrilaterals on a dark frame. Each gives only a rough quadrilateral:
   `cv2.mcc` boxes are often off by 2-3 % of the card.
2. **Orient.** The rough quadrilateral is read in all eight ways it can map onto the 4 x 6 grid
   (four rotations, and mirrored for a photo taken through a mirror or a selfie camera). Each
   reading samples 24 patch colours; the one a 3x3 colour matrix maps best onto the chart's
   reference colours is the card's orientation. A wrong reading puts greys where the reference
   has saturated colours, which no colour matrix can fix, so the margin is large.
3. **Refine.** The chart model (patches at their reference luminance on a black frame) is
   aligned to the photo by ECC (Evangelidis & Psarakis 2008) with a full homography, which
   fits the patch grid's edges to a fraction of a pixel, as millimetres from the card need.

A detection is accepted only when the final colour fit and the ECC correlation both say the grid
is a colour chart: a colourful product or a tiled floor does not pass, so a photo without a card
gives ``None`` rather than a false card. The colour fit allows for what real cards show: glare
or shadow on a few patches (a least-trimmed-squares fit leaves the worst four out), a strong
colour cast and a tone curve other than sRGB (the best of a few decodings); a wrong reading of
the grid misses most patches, so neither rescues it.

OpenCV 5 trap (see ../shared/guides/opencv5.md): `process(image, 1)` takes the number of charts,
not the chart type, and a new detector's chart type must be set explicitly.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools

import cv2
import numpy as np

from calibration.charts import COLORCHECKER_CLASSIC, Chart, chart_srgb
from calibration.grid import locate_patch_grid
from imaging.color import srgb_to_linear
from imaging.geometry import homography_jacobian
from imaging.resample import shrink_to_long_side

__all__ = ["CardDetection", "find_card", "sample_patch_grid"]

_DETECTION_SIZE = 1024  # long side of the copy the card is refined on; corners mapped back
# cv2.mcc runs on a smaller copy still: its cost is mostly adaptive thresholding at several
# window sizes, and it first enlarges anything below `minImageSize` (default 1000 px), so a
# 640 px copy with that floor lowered costs a quarter of the 1024 px run. Measured on the
# synthetic renders: the same cards found at 640 as at 1024 (30 of 30), but 23 of 30 at 512.
_MCC_SIZE = 640
_MCC_MIN_IMAGE_SIZE = 400
# Its adaptive thresholds: every 32 px of window size from 23 to 151 px (5 passes) instead of
# OpenCV's every 16 (9 passes). A 640 px copy holds the card at ~60-250 px, its patches at
# ~10-40: windows 32 px apart still span a patch and its neighbours at every card size. On
# the 80 photos of eval_calibration.py's detection part (seed 23; 40 with a card), with the
# bilinear copy below too: cv2.mcc finds the same 38 of 40 cards (the fallback the other
# two), no card among the 40 without, corners within 0.33 px (median 0.05) of before after
# refinement; cv2.mcc's share 7.1 -> 4.0 ms per photo.
_MCC_THRESHOLD_WINDOW_STEP = 32
# Acceptance: relative RMS error of the orientation colour fit (linear RGB, relative to the
# reference's RMS) and the ECC correlation of the chart model with the photo. True cards on
# the synthetic renders reach < 0.06 and > 0.9; the best wrong readings and non-cards > 0.3.
_MAX_FIT_ERROR = 0.2
_FIT_TRIM = 4  # patches the orientation fit may leave out (glare, shadow, clipping)
# Decodings the orientation fit tries (the best counts): the sRGB curve, and plain powers for
# cameras with another tone curve. Under a strong cast one channel sits low on the curve,
# where the wrong decoding bends it most, and a right grid's error can reach 0.3.
_TONE_CURVES = (srgb_to_linear, *(lambda x, g=g: x**g for g in (1.6, 1.9, 2.2, 2.5, 2.8)))
_GOOD_FIT_ERROR = 0.1  # a plain fit this good needs no robust one (true cards < 0.06)
_MIN_ECC = 0.6
# A candidate whose refined grid correlates less than this may have converged onto a wrong
# alignment (one column off, say): the other locator's candidates are tried too, and the best
# kept. Cards that are in view reach 0.95-0.99.
_GOOD_ECC = 0.9
_TEMPLATE_MARGIN_MM = 2.0  # of black frame around the patch grid in the ECC template


@dataclasses.dataclass(frozen=True)
class CardDetection:
    """A colour card in a photo, in the photo's full-resolution (oriented) pixels.

    ``homography`` maps chart-model millimetres (the full-size chart of
    :mod:`calibration.charts`, origin at the patch grid's centre, x along the card's long side
    with the first patch at the top left) to photo pixels; everything else derives from it.
    """

    chart: Chart
    homography: np.ndarray  # (3, 3) chart-model mm -> photo px
    confidence: float  # 0-1
    method: str  # "mcc" or "grid" (the fallback)
    fit_error: float  # relative RMS of the 3x3 colour fit used to orient the card
    ecc: float  # correlation of the aligned chart model with the photo

    @property
    def corners(self) -> np.ndarray:
        """(4, 2) outer corners of the patch grid: the card's top-left, top-right,
        bottom-right and bottom-left (top left is the "dark skin" patch's corner)."""
        return _project(self.homography, _grid_corners_mm(self.chart))

    def patch_centres(self) -> np.ndarray:
        """(n_patches, 2) patch centres in photo pixels, in the chart's reading order."""
        return _project(self.homography, self.chart.patch_centres_mm())

    def outline(self) -> np.ndarray:
        """(4, 2) the card's outline including its frame, photo pixels."""
        w, h = self.chart.size_mm
        card = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]])
        return _project(self.homography, card)

    def mask(self, shape: tuple[int, int], *, scale: float = 1.0) -> np.ndarray:
        """Boolean mask of the card (with frame) in an image of `shape` at `scale` x full size."""
        mask = np.zeros(shape, np.uint8)
        cv2.fillConvexPoly(mask, np.round(self.outline() * scale).astype(np.int32), 1)
        return mask.astype(bool)

    def px_per_mm(self, card_width_mm: float) -> float:
        """Photo pixels per millimetre at the card's centre, for a card `card_width_mm` wide.

        The square root of the homography's local area scale at the grid centre, so a tilted
        card gives the mean of its two directions there. Millimetres of the real card are the
        model's scaled by ``card_width_mm / chart width``: charts are sold in several sizes
        with the same layout.
        """
        real_per_model = card_width_mm / self.chart.size_mm[0]
        J = homography_jacobian(self.homography, np.zeros(2))  # at the grid centre
        return float(np.sqrt(abs(np.linalg.det(J))) / real_per_model)

    def reliable(self) -> bool:
        return self.fit_error <= _MAX_FIT_ERROR and self.ecc >= _MIN_ECC


def _project(H: np.ndarray, points: np.ndarray) -> np.ndarray:
    return cv2.perspectiveTransform(np.asarray(points, np.float64).reshape(-1, 1, 2),
                                    H).reshape(-1, 2)


def _grid_half_extent_mm(chart: Chart) -> tuple[float, float]:
    half_w = ((chart.cols - 1) * chart.patch_pitch_mm + chart.patch_size_mm) / 2.0
    half_h = ((chart.rows - 1) * chart.patch_pitch_mm + chart.patch_size_mm) / 2.0
    return half_w, half_h


def _grid_corners_mm(chart: Chart) -> np.ndarray:
    hw, hh = _grid_half_extent_mm(chart)
    return np.array([[-hw, -hh], [hw, -hh], [hw, hh], [-hw, hh]])


def find_card(rgb: np.ndarray, *, detection_size: int = _DETECTION_SIZE,
              full_size: tuple[int, int] | None = None,
              chart: Chart = COLORCHECKER_CLASSIC,
              locators: tuple[str, ...] = ("mcc", "grid")) -> CardDetection | None:
    """Locate, orient and refine a ColorChecker Classic 24 in an RGB photo; None if none.

    Parameters
    ----------
    rgb : (H, W, 3) uint8 ndarray
        The photo, RGB, EXIF-oriented.
    detection_size : int, optional
        Long side of the downscaled copy the detector runs on.
    full_size : (width, height), optional
        When `rgb` is itself a downscaled copy of a photo (e.g. an analysis copy already made),
        the photo's size: the detection is then returned in the photo's pixels.
    chart : Chart, optional
        The chart to look for; only 4 x 6 charts can be located by `cv2.mcc` (MCC24).
    locators : tuple of {"mcc", "grid"}, optional
        Which locators to try, in order: `cv2.mcc`, then the fallback. Both by default; one
        alone to test or compare them.
    """
    h, w = rgb.shape[:2]
    full_w, full_h = full_size or (w, h)
    small, _ = shrink_to_long_side(rgb, detection_size)
    to_small = np.diag([small.shape[1] / full_w, small.shape[0] / full_h, 1.0])

    unknown = set(locators) - {"mcc", "grid"}
    if unknown:
        raise ValueError(f"unknown locator(s) {sorted(unknown)}; use 'mcc' and/or 'grid'")
    passes = []
    if "mcc" in locators:
        passes += [_mcc_candidates(small, fast=True), _mcc_candidates(small, fast=False)]
    if "grid" in locators:
        passes.append(_grid_candidates(small))
    best: CardDetection | None = None
    for method, quad in itertools.chain.from_iterable(passes):
        found = _orient_and_refine(small, quad, chart, method)
        if found is not None and (best is None or found.confidence > best.confidence):
            best = found
        if best is not None and best.ecc >= _GOOD_ECC and best.reliable():
            break  # good enough: skip the remaining candidates
    if best is None or not best.reliable():
        return None
    H_full = np.linalg.inv(to_small) @ best.homography
    return dataclasses.replace(best, homography=H_full / H_full[2, 2])


def _mcc_candidates(small: np.ndarray, *, fast: bool):
    """`cv2.mcc`'s quadrilateral: the fast pass, or the thorough one (run only when reached)."""
    quad = _locate_with_mcc(small, fast=fast)
    if quad is not None:
        yield "mcc", quad


def _grid_candidates(small: np.ndarray):
    """The fallback's quadrilaterals, computed only when no earlier candidate was accepted."""
    for quad in locate_patch_grid(small):
        yield "grid", quad


def _locate_with_mcc(small: np.ndarray, *, fast: bool = True) -> np.ndarray | None:
    """The card's rough quadrilateral from `cv2.mcc`, in `small`'s pixels; None if not found.

    `fast`: on a 640 px copy with threshold windows every 32 px; otherwise on `small` itself
    with OpenCV's default parameters (the thorough pass, for small cards the copy loses).
    """
    h, w = small.shape[:2]
    scale = min(1.0, _MCC_SIZE / max(h, w)) if fast else 1.0
    # Bilinear, not the area filter: the box only seeds the refinement (_refine_ecc), and
    # OpenCV's area filter at a fractional factor (1008 -> 640 px) costs 3 ms, bilinear 0.3.
    tiny = (cv2.resize(small, (round(w * scale), round(h * scale)),
                       interpolation=cv2.INTER_LINEAR) if scale < 1.0 else small)
    scale = tiny.shape[1] / w
    detector = cv2.mcc.CCheckerDetector_create()
    detector.setColorChartType(cv2.mcc.MCC24)
    if fast:
        params = detector.getDetectionParams()
        params.minImageSize = _MCC_MIN_IMAGE_SIZE
        params.adaptiveThreshWinSizeStep = _MCC_THRESHOLD_WINDOW_STEP
        detector.setDetectionParams(params)
    try:
        if not detector.process(cv2.cvtColor(tiny, cv2.COLOR_RGB2BGR), 1):
            return None
    except cv2.error:
        # Seen on a strongly tilted card at 640 px: an assertion inside the detector's
        # fitting. The fallback locator then gets its turn.
        return None
    checker = detector.getBestColorChecker()
    return np.asarray(checker.getBox(), np.float64).reshape(4, 2) / scale


# --------------------------------------------------------------------------------------------
# Orientation and refinement

def _reference_linear(chart: Chart) -> np.ndarray:
    return srgb_to_linear(chart_srgb(chart))


def sample_patch_grid(image: np.ndarray, H: np.ndarray, chart: Chart, half_mm: float,
                      points: int, *, border: int = cv2.BORDER_REPLICATE
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Bilinear samples on a `points` x `points` grid within +/- `half_mm` of each patch centre.

    Returns the values, (n_patches, points**2, 3) float64, and where they were taken in
    `image` (chart-model mm through `H`), (n_patches * points**2, 2) float32. Points outside
    the image take `border` (OpenCV's border mode; BORDER_CONSTANT gives black).
    """
    offsets = np.linspace(-half_mm, half_mm, points)
    ox, oy = np.meshgrid(offsets, offsets)
    local = np.stack([ox.ravel(), oy.ravel()], axis=1)
    model = (chart.patch_centres_mm()[:, None, :] + local[None, :, :]).reshape(-1, 2)
    xy = _project(H, model).astype(np.float32)
    values = cv2.remap(image, xy[:, 0].reshape(1, -1), xy[:, 1].reshape(1, -1),
                       cv2.INTER_LINEAR, borderMode=border, borderValue=(0, 0, 0))
    return values.reshape(chart.n_patches, len(local), 3).astype(np.float64), xy


def _sample_centres(image: np.ndarray, H: np.ndarray, chart: Chart,
                    half_mm: float) -> np.ndarray:
    """Median RGB (uint8 scale, float) of a small square around each patch centre."""
    values, _ = sample_patch_grid(image, H, chart, half_mm, 5)
    return np.median(values, axis=1)


def _colour_fit_error(samples_rgb8: np.ndarray, reference_linear: np.ndarray, *,
                      robust: bool = True) -> float:
    """Relative RMS error of the best 3x3 matrix from sampled (decoded) to reference.

    Plain: sRGB-decoded, all patches. `robust`: also trimmed, the :data:`_FIT_TRIM` patches
    the fit misses most (glare, a shadow, a clipped patch) left out and the matrix fitted
    again on the rest, and the best of :data:`_TONE_CURVES`. A wrong reading of the grid
    misses most of the 24 patches, so neither rescues it.
    """
    plain = _trimmed_fit_error(srgb_to_linear(samples_rgb8 / 255.0), reference_linear, trim=0)
    if not robust or plain <= _GOOD_FIT_ERROR:
        return plain
    best = plain
    for decode in _TONE_CURVES:
        best = min(best, _trimmed_fit_error(decode(samples_rgb8 / 255.0), reference_linear))
        if best <= _GOOD_FIT_ERROR:
            break
    return float(best)


@functools.cache
def _lts_subsets(n: int) -> np.ndarray:
    """64 random six-patch subsets of `n` (a fixed seed: a detection repeats exactly)."""
    rng = np.random.default_rng(24)
    return np.stack([rng.choice(n, 6, replace=False) for _ in range(64)])


def _trimmed_fit_error(camera: np.ndarray, reference_linear: np.ndarray, *,
                       trim: int = _FIT_TRIM) -> float:
    """Relative RMS error of a 3x3 fit on all but the `trim` patches it misses most.

    Least trimmed squares (Rousseeuw & Van Driessen 2006, FAST-LTS): fits to random
    six-patch subsets (and to all patches) each propose the patches to keep; the best
    proposal is refined by refitting on what it keeps. Refitting from the all-patch fit
    alone fails when glare pulls that fit so far that the wrong patches look worst.
    """
    if not trim:
        matrix, *_ = np.linalg.lstsq(camera, reference_linear, rcond=None)
        residual = camera @ matrix - reference_linear
        return float(np.sqrt(np.mean(residual**2)) / np.sqrt(np.mean(reference_linear**2)))
    n = len(camera)
    starts = [np.arange(n)[None], _lts_subsets(n)]
    best_cost, keep = np.inf, np.ones(n, bool)
    for rows in starts:
        A, B = camera[rows], reference_linear[rows]  # (k, m, 3)
        gram = A.transpose(0, 2, 1) @ A + 1e-9 * np.eye(3)
        matrices = np.linalg.solve(gram, A.transpose(0, 2, 1) @ B)  # (k, 3, 3)
        miss = np.linalg.norm(camera[None] @ matrices - reference_linear[None], axis=2)
        kept = np.sort(miss, axis=1)[:, :n - trim]
        cost = np.sum(kept**2, axis=1)
        i = int(np.argmin(cost))
        if cost[i] < best_cost:
            best_cost, keep = cost[i], miss[i] <= kept[i, -1]
    for _ in range(2):  # concentration steps
        matrix, *_ = np.linalg.lstsq(camera[keep], reference_linear[keep], rcond=None)
        miss = np.linalg.norm(camera @ matrix - reference_linear, axis=1)
        keep = miss <= np.sort(miss)[n - trim - 1]
    residual = camera[keep] @ matrix - reference_linear[keep]
    return float(np.sqrt(np.mean(residual**2)) / np.sqrt(np.mean(reference_linear[keep]**2)))


def _orientation_homographies(quad: np.ndarray, chart: Chart):
    """The eight ways a quadrilateral can be the patch grid (4 rotations x mirrored)."""
    model = _grid_corners_mm(chart).astype(np.float32)
    for mirrored in (False, True):
        order = quad[::-1] if mirrored else quad
        for shift in range(4):
            corners = np.roll(order, shift, axis=0).astype(np.float32)
            yield cv2.getPerspectiveTransform(model, corners)


def _orient_and_refine(small: np.ndarray, quad: np.ndarray, chart: Chart,
                       method: str) -> CardDetection | None:
    reference = _reference_linear(chart)
    quarter = chart.patch_size_mm / 4.0
    readings = [(_sample_centres(small, H, chart, quarter), H)
                for H in _orientation_homographies(quad, chart)]
    # The plain fit first: on a well-lit card one reading fits at once. Otherwise (glare, a
    # cast, another tone curve) the robust fit decides, for every reading alike.
    scored = [(_colour_fit_error(samples, reference, robust=False), H)
              for samples, H in readings]
    fit_error, H = min(scored, key=lambda item: item[0])
    if fit_error > _GOOD_FIT_ERROR:
        scored = [(_colour_fit_error(samples, reference), H) for samples, H in readings]
        fit_error, H = min(scored, key=lambda item: item[0])
    if fit_error > 2 * _MAX_FIT_ERROR:  # not a chart in any orientation: skip the refinement
        return None
    H, ecc = _refine_ecc(small, H, chart)
    fit_error = _colour_fit_error(_sample_centres(small, H, chart, quarter), reference)
    # Confidence: both checks, each mapped to 0-1 (1 at a perfect fit).
    confidence = float(np.clip(1.0 - fit_error / (2 * _MAX_FIT_ERROR), 0, 1)
                       * np.clip((ecc - 0.3) / 0.7, 0, 1))
    return CardDetection(chart=chart, homography=H, confidence=round(confidence, 4),
                         method=method, fit_error=round(fit_error, 4), ecc=round(ecc, 4))


def _coverage(lo: float, hi: float, n: int) -> np.ndarray:
    """Fraction of each pixel (centres at 0..n-1, each spanning +/- 0.5) inside [lo, hi]."""
    left = np.arange(n) - 0.5
    return np.clip(np.minimum(left + 1.0, hi) - np.maximum(left, lo), 0.0, 1.0)


def _nonzero_span(values: np.ndarray) -> tuple[int, int]:
    """(first, last + 1) index of the nonzero `values`; (0, 0) when there are none."""
    nonzero = np.flatnonzero(values)
    return (int(nonzero[0]), int(nonzero[-1]) + 1) if len(nonzero) else (0, 0)


def _chart_template(chart: Chart, px_per_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """The chart model as an image (expected luminance, sRGB-encoded) and model mm -> template px.

    Patches at their reference luminance, gaps and frame dark, extending
    :data:`_TEMPLATE_MARGIN_MM` beyond the grid (all card, whatever lies around it). Patch
    edges are anti-aliased by exact area coverage: a template rounded to whole pixels would
    pull the fit by up to half a template pixel, which is 1 % of the card's scale when
    millimetres are extrapolated from the card to the product.
    """
    hw, hh = _grid_half_extent_mm(chart)
    hw, hh = hw + _TEMPLATE_MARGIN_MM, hh + _TEMPLATE_MARGIN_MM
    size = (int(np.ceil(2 * hw * px_per_mm)), int(np.ceil(2 * hh * px_per_mm)))
    T = np.array([[px_per_mm, 0, hw * px_per_mm], [0, px_per_mm, hh * px_per_mm], [0, 0, 1.0]])
    frame = 0.08  # a dark frame, not black
    template = np.full((size[1], size[0]), frame, np.float32)
    luma = chart_srgb(chart) @ np.array([0.299, 0.587, 0.114])
    half = chart.patch_size_mm / 2.0
    for value, (cx, cy) in zip(luma, chart.patch_centres_mm(), strict=True):
        x0, x1 = (cx - half + hw) * px_per_mm, (cx + half + hw) * px_per_mm
        y0, y1 = (cy - half + hh) * px_per_mm, (cy + half + hh) * px_per_mm
        rows, cols = _coverage(y0, y1, size[1]), _coverage(x0, x1, size[0])
        # Only the patch's own box: coverage is 0 elsewhere (adding 0 changes nothing).
        (r0, r1), (c0, c1) = _nonzero_span(rows), _nonzero_span(cols)
        cover = np.outer(rows[r0:r1], cols[c0:c1])
        template[r0:r1, c0:c1] += (cover * (value - frame)).astype(np.float32)
    return template, T


def _refine_ecc(small: np.ndarray, H: np.ndarray, chart: Chart) -> tuple[np.ndarray, float]:
    """Align the chart model to the photo (ECC, homography); returns (H, correlation).

    Coarse to fine: a first pass at a third of the resolution, on a blurred copy, pulls in a
    rough grid that is off by up to half a patch (`cv2.mcc` boxes can be); the fine pass
    then fits the patch edges.
    """
    grid_px = _project(H, _grid_corners_mm(chart))
    width_px = np.linalg.norm(grid_px[1] - grid_px[0])
    hw, _ = _grid_half_extent_mm(chart)
    # Template at about the card's size in the photo, but at least 2 px per patch gap (4 mm).
    fine = float(np.clip(width_px / (2 * hw), 0.5, 3.0))
    # ECC reads only the card and what it may slide over: work on that crop (the grey copy,
    # the blur and ECC's image gradients then cost the card's area, not the photo's). The
    # margin of a whole card width is twice the worst start the coarse pass must pull in.
    margin = width_px + 8
    x0, y0 = np.maximum(np.floor(grid_px.min(axis=0) - margin), 0).astype(int)
    x1, y1 = np.ceil(grid_px.max(axis=0) + margin).astype(int)
    to_crop = np.array([[1.0, 0.0, -x0], [0.0, 1.0, -y0], [0.0, 0.0, 1.0]])
    H = to_crop @ H
    grey = cv2.cvtColor(small[y0:y1, x0:x1], cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    ecc = -1.0
    for px_per_mm in (fine / 3.0, fine):
        template, T = _chart_template(chart, px_per_mm)
        # The coarse pass samples the photo sparsely: low-pass it first (no aliasing).
        source = grey if px_per_mm == fine else cv2.GaussianBlur(grey, (0, 0), 1.2)
        warp = (H @ np.linalg.inv(T)).astype(np.float32)
        criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 1e-4)
        try:
            ecc, warp = cv2.findTransformECC(template, source, warp, cv2.MOTION_HOMOGRAPHY,
                                             criteria, None, 3)
        except cv2.error:  # did not converge: keep the grid so far, scored by correlation
            warped = cv2.warpPerspective(source, warp, template.shape[::-1],
                                         flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
            ecc = float(np.corrcoef(template.ravel(), warped.ravel())[0, 1])
            continue
        H = warp.astype(np.float64) @ T
        H /= H[2, 2]
    H = np.linalg.inv(to_crop) @ H
    return H / H[2, 2], float(ecc)
