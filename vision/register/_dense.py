"""Dense registration: a rotation-invariant candidate for subjects whose features mismatch, and
ECC's polish of any candidate, each verified tile by tile (steps 6b and 10 of the method).

Binarised circuit boards, fabrics and other repetitive subjects defeat descriptor matching:
every feature has look-alikes, so a turned board gives too few consistent matches, or a
consistent wrong set. The whole image still says how it is turned and where it lies:

1. Fourier-Mellin (Reddy & Chatterji 1996): the magnitude of the Fourier transform ignores
   the shift; resampled to log-polar coordinates, a rotation and a zoom of the photo become a
   shift, which phase correlation finds. The magnitude is symmetric, and a Manhattan layout
   (a circuit, a weave, a label's text) makes it nearly four-fold symmetric, so the angle's
   four quarter turns are each a candidate.
2. For each, the unit is turned and zoomed accordingly and phase correlation (Kuglin & Hines
   1975) finds the shift; the candidate with the best high-pass alignment score goes on.
3. ECC (Evangelidis & Psarakis 2008) fits the full homography coarse to fine on the greys.
4. :func:`tile_correlation` decides: the high-passed photos must correlate on most tiles of a
   4 x 4 grid (the median), not just over the whole overlap that ECC maximised, so a partial
   lock (one corner of a repetitive board, a colour card) does not pass.
5. :func:`final_fit`: whatever registered a flat subject (features, templates or the steps
   above), ECC once more at the working resolution, nearly unblurred, over the golden's
   interior only (see there).

References
----------
Reddy, B. S., & Chatterji, B. N. (1996). An FFT-based technique for translation, rotation,
and scale-invariant image registration. IEEE TIP 5(8), 1266-1271. doi:10.1109/83.506761
"""

from __future__ import annotations

import cv2
import numpy as np

from vision.register._checks import highpass, median_tile_ncc, ncc, plausible, valid_pixels
from vision.register._features import GoldenFeatures
from vision.register._silhouette import product_mask

_ANALYSIS_SIZE = 256  # long side of the larger photo's copy for the Fourier-Mellin estimate
_ANGLE_BINS = 720  # log-polar rows over 360 degrees (half of them used)
_RADIUS_BINS = 512  # log-polar columns (log radius)
_MAX_RADIUS = 0.5  # of the spectrum's side
_FM_PEAKS = 4  # candidate (angle, zoom) pairs taken from the Fourier-Mellin estimate
_ZOOMS = (0.85, 0.9, 0.95, 1.0, 1.05, 1.1, 1.15)
_FINE_ZOOMS = (0.98, 0.99, 1.0, 1.01, 1.02)
_FINE_ANGLES = (-0.5, 0.0, 0.5)  # degrees; the log-polar rows are half a degree apart
_DENSE_KEEP = 2  # the best-correlating hypotheses that ECC polishes
_MIN_RADIUS = 4.0  # spectrum samples nearer the centre than this (analysis pixels) are dropped
# (downscale factor, iterations, Gaussian aperture), coarse to fine
ECC_LEVELS = ((4, 50, 5), (2, 30, 5), (1, 15, 5))
DENSE_MIN_SCORE = 0.5  # tile_correlation a dense registration must reach
# The final fit (:func:`final_fit`): ECC at the working resolution, Gaussian aperture 1 (none):
# the aperture-5 blur of the levels above let a binarised board's fit settle 1-2 px off where
# its edges are few (DeepPCB, the tune half); without blur the same fit stays within 0.5 px.
_FINAL_LEVELS = ((1, 50, 1),)
# The golden's border strip left out of the final fit, as a fraction of its long side: where
# the two photos' framings differ (a scan cropped a few pixels elsewhere, a unit photographed
# on a plain background), the golden's outermost pixels face what lies beyond the unit's
# subject, and ECC pulls the whole fit towards it (DeepPCB turned boards on a canvas of their
# background, tune half: 3.5-5.7 px off at the corners with the strip, 0.5-0.7 without it).
_FINAL_MARGIN = 0.025
# The final fit polishes; it does not search: a fit that moves a corner further than this
# (of the golden's long side) is no polish of the registration it started from.
_FINAL_MAX_MOVE = 0.02


def ecc_fit(template: np.ndarray, template_mask: np.ndarray, unit: np.ndarray,
            unit_valid: np.ndarray, warp: np.ndarray, iterations: int, blur: int,
            motion: int = cv2.MOTION_HOMOGRAPHY) -> tuple[float, np.ndarray] | None:
    """One ECC (Evangelidis & Psarakis 2008) fit: (correlation, 3x3 warp) or None. `warp`
    (3x3) maps template pixels to unit pixels; `motion` is cv2.MOTION_HOMOGRAPHY or
    cv2.MOTION_AFFINE."""
    affine = motion == cv2.MOTION_AFFINE
    start = (warp[:2] if affine else warp).astype(np.float32)
    try:
        # OpenCV 5: findTransformECC's mask is the *input's*; the template's goes here.
        rho, fitted = cv2.findTransformECCWithMask(
            template, unit, template_mask, unit_valid, start, motion,
            (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, iterations, 1e-5), blur)
    except cv2.error:  # diverged: the images do not correlate under any nearby warp
        return None
    fitted = fitted.astype(np.float64)
    return float(rho), np.vstack([fitted, [0.0, 0.0, 1.0]]) if affine else fitted


def ecc_levels(template: np.ndarray, template_mask: np.ndarray, unit: np.ndarray,
               unit_valid: np.ndarray, levels: tuple[tuple[int, int, int], ...]) -> list[tuple]:
    """The images of a coarse-to-fine ECC, made once for every start: per level (downscale
    factor, iterations, Gaussian aperture) of `levels`, (S, iterations, aperture, template,
    its mask, unit, its valid pixels), each image shrunk by the factor (the template to at
    least 8 px a side) and S the factor's scaling."""
    stages = []
    for factor, iterations, blur in levels:
        size = (max(8, template.shape[1] // factor), max(8, template.shape[0] // factor))
        unit_size = (unit.shape[1] // factor, unit.shape[0] // factor)
        stages.append((np.diag([float(factor), float(factor), 1.0]), iterations, blur,
                       cv2.resize(template, size, interpolation=cv2.INTER_AREA),
                       cv2.resize(template_mask, size, interpolation=cv2.INTER_NEAREST),
                       cv2.resize(unit, unit_size, interpolation=cv2.INTER_AREA),
                       cv2.resize(unit_valid, unit_size, interpolation=cv2.INTER_NEAREST)))
    return stages


def ecc_level_fit(stage: tuple, warp: np.ndarray) -> tuple[float, np.ndarray] | None:
    """:func:`ecc_fit` at one stage of :func:`ecc_levels`, from and to full-size `warp`s
    (template -> unit pixels): (correlation, warp) or None. The start is normalised: OpenCV's
    ECC fits a homography's first eight elements with the ninth taken as 1, and diverges from
    a warp right only up to scale."""
    S, iterations, blur, *images = stage
    S_inv = np.linalg.inv(S)
    start = S_inv @ warp @ S
    fitted = ecc_fit(*images, start / start[2, 2], iterations, blur)
    return None if fitted is None else (fitted[0], S @ fitted[1] @ S_inv)


def ecc_coarse_to_fine(stages: list[tuple], warp: np.ndarray
                       ) -> tuple[float, np.ndarray] | None:
    """:func:`ecc_level_fit` through `stages` from `warp`: a coarse level that does not
    converge (thin edges or a thin band blurred away) is skipped, the last must converge.
    (correlation at the last level, warp) or None."""
    fitted = None
    for stage in stages:
        fitted = ecc_level_fit(stage, warp)
        if fitted is not None:
            warp = fitted[1]
    return None if fitted is None else (fitted[0], warp)


def crop_warp_homography(crop: np.ndarray, warp: np.ndarray) -> np.ndarray:
    """The unit -> golden homography of an ECC warp (template pixels of the golden cropped by
    `crop` -> unit pixels), normalised."""
    H = crop @ np.linalg.inv(warp)
    return H / H[2, 2]


def rotation_candidate(golden: GoldenFeatures, unit_grey: np.ndarray,
                       unit_ignore_mask: np.ndarray | None) -> list[np.ndarray]:
    """Steps 1-3: working-resolution unit -> golden homographies, the likeliest first (not
    verified; at most _DENSE_KEEP)."""
    unit_detail = highpass(unit_grey)
    if unit_ignore_mask is not None:
        unit_detail = unit_detail * (unit_ignore_mask > 0)
    golden_detail = golden.detail if golden.ignore_mask is None else (
        golden.detail * (golden.ignore_mask > 0))
    factor = _ANALYSIS_SIZE / max(*golden_detail.shape, *unit_detail.shape)
    golden_small, unit_small = _shrunk(golden_detail, factor), _shrunk(unit_detail, factor)
    peaks = _fourier_mellin(golden_small, unit_small)
    # A zoom the spectrum does not show (a periodic layout) is searched at each peak's angle.
    hypotheses = peaks + [(angle, zoom) for angle, _ in peaks for zoom in _ZOOMS]
    window = cv2.createHanningWindow(golden_small.shape[::-1], cv2.CV_32F)
    scored = []
    for angle, zoom in hypotheses:
        for turn in range(4):
            H = _similarity(angle + 90.0 * turn, zoom, unit_small.shape, golden_small.shape)
            scored.append(_shifted_score(golden_small, unit_small, H, window))
    scored.sort(key=lambda pair: -pair[0])
    # The grid's zoom steps leave up to 2.5% (8 px at a 640 px board's corners), a period
    # of a fine layout; ECC could lock there. A finer search around each kept hypothesis.
    best = []
    for _, H in scored[:_DENSE_KEEP]:
        best.append(max((_shifted_score(golden_small, unit_small, _refined(H, zoom, angle,
                                                                           golden_small.shape),
                                        window)
                         for zoom in _FINE_ZOOMS for angle in _FINE_ANGLES),
                        key=lambda pair: pair[0]))
    S = np.diag([factor, factor, 1.0])
    found = []
    for _, H in best:
        # Affine first: a whole-board correlation barely constrains a homography's
        # perspective where the subject is blank, and ECC drifts there (5 px at the corners
        # of a board turned on a flatbed, correlation 0.9999); the homography then competes.
        affine = polish(golden, unit_grey, np.linalg.inv(S) @ H @ S, unit_ignore_mask,
                        levels=ECC_LEVELS, motion=cv2.MOTION_AFFINE)
        if affine is not None:
            found.append(affine)
            homography = polish(golden, unit_grey, affine, unit_ignore_mask)
            if homography is not None:
                found.append(homography)
    return found


def _refined(H: np.ndarray, zoom: float, angle: float, golden_shape: tuple[int, int]
             ) -> np.ndarray:
    """`H` followed by a turn of `angle` degrees and a zoom about the golden's centre."""
    centre = (golden_shape[1] / 2.0, golden_shape[0] / 2.0)
    return np.vstack([cv2.getRotationMatrix2D(centre, angle, zoom), [0.0, 0.0, 1.0]]) @ H


def _shifted_score(golden: np.ndarray, unit: np.ndarray, H: np.ndarray, window: np.ndarray
                   ) -> tuple[float, np.ndarray]:
    """(correlation, homography) of `unit` put onto `golden` by `H` and then shifted by phase
    correlation (Kuglin & Hines 1975); the correlation over the overlap."""
    size = golden.shape[::-1]
    warped = cv2.warpPerspective(unit, H, size, flags=cv2.INTER_LINEAR)
    # Copies: phaseCorrelate may multiply the window into its inputs in place.
    (sx, sy), _ = cv2.phaseCorrelate(golden.copy(), warped, window)
    H = np.array([[1.0, 0.0, -sx], [0.0, 1.0, -sy], [0.0, 0.0, 1.0]]) @ H
    warped = cv2.warpPerspective(unit, H, size, flags=cv2.INTER_LINEAR)
    seen = cv2.warpPerspective(np.ones_like(unit, np.uint8), H, size, flags=cv2.INTER_NEAREST)
    valid = cv2.erode(seen, np.ones((5, 5), np.uint8)) > 0
    if valid.sum() < 0.25 * valid.size:
        return -1.0, H
    return ncc(golden[valid], warped[valid]), H


def final_fit(golden: GoldenFeatures, unit_grey: np.ndarray, H_work: np.ndarray,
              unit_ignore_mask: np.ndarray | None) -> np.ndarray | None:
    """Step 5: `H_work` (working unit -> golden pixels, a registration already verified)
    fitted once more by ECC at the working resolution without blur, the golden's border strip
    (_FINAL_MARGIN) left out; None when ECC diverges, the fit moves a corner of the golden
    further than _FINAL_MAX_MOVE, or it no longer verifies (:func:`verified_score`)."""
    fitted = polish(golden, unit_grey, H_work, unit_ignore_mask, levels=_FINAL_LEVELS,
                    margin=_FINAL_MARGIN)
    if fitted is None:
        return None
    h, w = golden.grey.shape
    corners = np.array([[[0, 0]], [[w, 0]], [[w, h]], [[0, h]]], np.float64)
    back = cv2.perspectiveTransform(corners, np.linalg.inv(H_work))
    move = np.linalg.norm(cv2.perspectiveTransform(back, fitted) - corners, axis=2).max()
    if move > _FINAL_MAX_MOVE * max(h, w):
        return None
    if verified_score(golden, unit_grey, fitted) < DENSE_MIN_SCORE:
        return None
    return fitted


def polish(golden: GoldenFeatures, unit_grey: np.ndarray, H_work: np.ndarray,
           unit_ignore_mask: np.ndarray | None, *, levels=ECC_LEVELS[1:],
           motion: int = cv2.MOTION_HOMOGRAPHY, margin: float = 0.0) -> np.ndarray | None:
    """ECC's fit (`motion`) from `H_work` (working unit -> golden pixels), coarse to fine
    over `levels`, the golden's border strip of `margin` (of its long side) left out; None
    when ECC diverges or the result is no photo of the same flat product."""
    golden_valid = valid_pixels(golden.grey, golden.ignore_mask)
    strip = int(round(margin * max(golden_valid.shape)))
    if strip > 0:
        golden_valid[:strip], golden_valid[-strip:] = 0, 0
        golden_valid[:, :strip], golden_valid[:, -strip:] = 0, 0
    unit_valid = valid_pixels(unit_grey, unit_ignore_mask)
    warp = np.linalg.inv(H_work)  # ECC's warp maps template (golden) pixels to unit pixels
    for factor, iterations, blur in levels:
        S = np.diag([float(factor), float(factor), 1.0])
        golden_size = (golden.grey.shape[1] // factor, golden.grey.shape[0] // factor)
        unit_size = (unit_grey.shape[1] // factor, unit_grey.shape[0] // factor)
        fitted = ecc_fit(
            cv2.resize(golden.grey, golden_size, interpolation=cv2.INTER_AREA),
            cv2.resize(golden_valid, golden_size, interpolation=cv2.INTER_NEAREST),
            cv2.resize(unit_grey, unit_size, interpolation=cv2.INTER_AREA),
            cv2.resize(unit_valid, unit_size, interpolation=cv2.INTER_NEAREST),
            np.linalg.inv(S) @ warp @ S, iterations, blur, motion)
        if fitted is None:
            return None
        warp = S @ fitted[1] @ np.linalg.inv(S)
    H = np.linalg.inv(warp)
    H /= H[2, 2]
    if plausible(H, unit_grey.shape, golden.grey.shape) is not None:
        return None
    return H


def verified_score(golden: GoldenFeatures, unit_grey: np.ndarray, H_work: np.ndarray) -> float:
    """Step 4: :func:`tile_correlation` of the unit put onto the golden by `H_work` (working
    unit -> golden pixels), over the golden's product (:func:`product_mask`; the whole frame
    when no product stands on a table), its ignored areas left out: the table around a
    product has no detail to correlate, and the product is what must correspond."""
    product = product_mask(golden)
    region = (np.ones_like(golden.grey) if product is None else product.astype(np.uint8))
    if golden.ignore_mask is not None:
        region &= (golden.ignore_mask > 0).astype(np.uint8)
    return tile_correlation(golden.detail, region, unit_grey, np.linalg.inv(H_work),
                            min_tiles=_MIN_TILES)


def _shrunk(image: np.ndarray, factor: float) -> np.ndarray:
    size = (max(8, round(image.shape[1] * factor)), max(8, round(image.shape[0] * factor)))
    return cv2.resize(image.astype(np.float32), size, interpolation=cv2.INTER_AREA)


def _log_polar_spectrum(image: np.ndarray, n: int) -> np.ndarray:
    """The windowed image's Fourier magnitude on an n x n grid, in log-polar coordinates
    (rows: angle over 360 degrees; columns: log radius), high frequencies emphasised."""
    h, w = image.shape
    canvas = np.zeros((n, n), np.float32)
    y0, x0 = (n - h) // 2, (n - w) // 2
    canvas[y0:y0 + h, x0:x0 + w] = image * cv2.createHanningWindow((w, h), cv2.CV_32F)
    magnitude = np.abs(np.fft.fftshift(np.fft.fft2(canvas)))
    # Reddy & Chatterji's emphasis filter: (1 - X)(2 - X), X = cos(pi xi) cos(pi eta).
    frequency = np.cos(np.pi * (np.arange(n) - n // 2) / n)
    X = np.outer(frequency, frequency)
    spectrum = (np.log1p(magnitude) * (1.0 - X) * (2.0 - X)).astype(np.float32)
    radius_bins = _RADIUS_BINS
    polar = cv2.warpPolar(spectrum, (radius_bins, _ANGLE_BINS), (n / 2, n / 2),
                          _MAX_RADIUS * n, cv2.INTER_LINEAR | cv2.WARP_POLAR_LOG)
    inner = int(np.ceil(radius_bins * np.log(_MIN_RADIUS) / np.log(_MAX_RADIUS * n)))
    polar[:, :inner] = 0.0
    # The magnitude of a real image's transform is symmetric: half a turn holds it all.
    return polar[:_ANGLE_BINS // 2]


def _fourier_mellin(golden: np.ndarray, unit: np.ndarray) -> list[tuple[float, float]]:
    """Candidate (angle in degrees, zoom) with which `unit` shows `golden`, the angle modulo
    180, best first: the _FM_PEAKS highest peaks of the log-polar spectra's phase correlation.
    Several, because what does not turn with the photo (the JPEG block grid, the frame's
    edges) leaves a peak at no turn and no zoom that can outdo the true one."""
    n = cv2.getOptimalDFTSize(max(*golden.shape, *unit.shape))
    polar_golden, polar_unit = _log_polar_spectrum(golden, n), _log_polar_spectrum(unit, n)
    cross = np.fft.fft2(polar_unit) * np.conj(np.fft.fft2(polar_golden))
    surface = np.fft.ifft2(cross / (np.abs(cross) + 1e-9)).real
    k_log = _RADIUS_BINS / np.log(_MAX_RADIUS * n)
    candidates = []
    for _ in range(_FM_PEAKS):
        row, column = np.unravel_index(int(np.argmax(surface)), surface.shape)
        half = _ANGLE_BINS // 2
        shift_angle = row if row <= half // 2 else row - half
        shift_radius = column if column <= _RADIUS_BINS // 2 else column - _RADIUS_BINS
        # The spectrum turns with the photo and shrinks as it zooms in.
        candidates.append((-360.0 * shift_angle / _ANGLE_BINS,
                           float(np.exp(-shift_radius / k_log))))
        rows = np.arange(row - 3, row + 4) % surface.shape[0]
        columns = np.arange(column - 3, column + 4) % surface.shape[1]
        surface[np.ix_(rows, columns)] = -np.inf
    return candidates


def _similarity(angle: float, zoom: float, unit_shape: tuple[int, int],
                golden_shape: tuple[int, int]) -> np.ndarray:
    """Unit -> golden homography of a unit that shows the golden turned by `angle` degrees
    and zoomed by `zoom`, centre on centre."""
    c_unit = np.array([unit_shape[1] / 2.0, unit_shape[0] / 2.0])
    c_golden = np.array([golden_shape[1] / 2.0, golden_shape[0] / 2.0])
    M = np.vstack([cv2.getRotationMatrix2D((0.0, 0.0), angle, zoom), [0.0, 0.0, 1.0]])
    T_unit = np.array([[1.0, 0.0, -c_unit[0]], [0.0, 1.0, -c_unit[1]], [0.0, 0.0, 1.0]])
    T_golden = np.array([[1.0, 0.0, c_golden[0]], [0.0, 1.0, c_golden[1]], [0.0, 0.0, 1.0]])
    return T_golden @ np.linalg.inv(M) @ T_unit


_DETAIL_TILES = 4  # tile_correlation: the median over a 4 x 4 grid of tiles
# A dense registration is judged on at least this many detailed tiles: a nearly bare board
# (DeepPCB 20085165: a few large pads) otherwise matches pad to pad turned by 115 degrees.
_MIN_TILES = 8
_MIN_TILE_DETAIL = 2.0  # high-pass standard deviation (grey levels) of a tile that counts


# A golden whose detail covers at least this many of the 16 tiles is a flat subject filling the
# frame, whatever the silhouette finder says; a product on a plain table leaves the table's
# tiles blank (8 of 16 on the test scene of a product beside a colour card).
_FILLED_TILES = 12


# A golden whose weaker gradient direction carries less than this fraction of the stronger's
# energy has edges that nearly all run one way (stripes): a whole-image fit cannot pin a
# shift along them. DeepPCB 13000129 (parallel tracks, 0.011) registered 235 px off, verified
# tile by tile; the tune half's boards are all above 0.085.
_MIN_GRADIENT_BALANCE = 0.03


def edges_run_one_way(golden: GoldenFeatures) -> bool:
    """Whether the golden's edges nearly all run one way (:data:`_MIN_GRADIENT_BALANCE`): the
    eigenvalues of its mean structure tensor, the smaller against the larger."""
    grey = golden.grey.astype(np.float32)
    gx, gy = cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1)
    if golden.ignore_mask is not None:
        keep = golden.ignore_mask > 0
        gx, gy = gx[keep], gy[keep]
    xy = float(np.mean(gx * gy))
    tensor = np.array([[float(np.mean(gx * gx)), xy], [xy, float(np.mean(gy * gy))]])
    weaker, stronger = np.linalg.eigvalsh(tensor)
    return stronger <= 0 or weaker < _MIN_GRADIENT_BALANCE * stronger


def detail_fills_frame(golden: GoldenFeatures) -> bool:
    """Whether the golden's detail (:func:`highpass`) covers the frame: at least
    _FILLED_TILES of the 4 x 4 tiles are detailed. A circuit board with one large copper
    area on white looks like a product on a table to the silhouette finder; its traces and
    pads fill the frame all the same."""
    detail = golden.detail
    h, w = detail.shape
    y_edges = np.linspace(0, h, _DETAIL_TILES + 1).astype(int)
    x_edges = np.linspace(0, w, _DETAIL_TILES + 1).astype(int)
    detailed = sum(float(detail[y0:y1, x0:x1].std()) >= _MIN_TILE_DETAIL
                   for y0, y1 in zip(y_edges[:-1], y_edges[1:], strict=True)
                   for x0, x1 in zip(x_edges[:-1], x_edges[1:], strict=True))
    return detailed >= _FILLED_TILES


def tile_correlation(golden_detail: np.ndarray, region: np.ndarray, unit_grey: np.ndarray,
                     warp: np.ndarray, *, min_tiles: int = 1) -> float:
    """Normalised cross-correlation (-1..1) of high-passed golden and unit inside `region`:
    the median of its values on a 4 x 4 grid of tiles.

    Per tile and then the median, because a defect must not make the product look like
    another one: on a smooth product (a colour wheel) a 1 cm stain's edges carried more
    high-pass energy than the rest of the product, and one correlation over the whole region
    fell from 0.86 to 0.43, under the acceptance threshold. The median of the tiles stays at
    0.73-0.80 with the defect, and at most 0.04 for a different product (the pairs of
    ``benchmarks/eval_registration.py``). `warp` maps the golden's (`golden_detail`'s) pixels
    to unit pixels; the part of the region that the unit photo does not show does not count
    (a tile less than a quarter shown is left out, and so is a tile without detail in the
    golden), and too little shown, or fewer than `min_tiles` tiles left, scores -1.
    """
    h, w = golden_detail.shape
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    warped = cv2.warpPerspective(unit_grey, warp, (w, h), flags=flags)
    seen = cv2.warpPerspective(np.ones_like(unit_grey), warp, (w, h),
                               flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP)
    valid = (region > 0) & (cv2.erode(seen, np.ones((15, 15), np.uint8)) > 0)
    if valid.sum() < 0.5 * max(1, int(np.count_nonzero(region))):
        return -1.0
    # A blank tile (bare board, plain label) says nothing either way.
    return median_tile_ncc(golden_detail, highpass(warped), valid, tiles=_DETAIL_TILES,
                           min_std=_MIN_TILE_DETAIL, min_tiles=min_tiles)
