"""The registration stage as one call: :func:`register` runs the method's steps in order.

Features (steps 1 to 5) first, on the coarse copies and then, if those register the unit with
few inliers, on the working copies; the near-aligned fallback (step 6) for same-size photos
whose features do not match; the identity check (step 7); the outline fallback (step 8) only
when nothing else registered, then the shape fallback (``_shape``); every homography lifted
to full resolution (step 9).
:func:`warp_to_golden` then resamples a unit photo through the result.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import cv2
import numpy as np

from vision.register._checks import alignment_score, highpass, plausible
from vision.register._dense import (
    DENSE_MIN_SCORE,
    detail_fills_frame,
    edges_run_one_way,
    final_fit,
    polish,
    rotation_candidate,
    verified_score,
)
from vision.register._features import (
    WORKING_SIZE,
    GoldenFeatures,
    UnitFeatures,
    cell_counts,
    prepare_golden_features,
    prepare_unit_features,
)
from vision.register._matching import (
    MIN_INLIERS,
    PERMISSIVE_RATIO,
    RATIO,
    guided_refinement,
    match,
    robust_homography,
)
from vision.register._outline import (
    OUTLINE_MIN_OVERLAP,
    OUTLINE_MIN_SCORE,
    register_by_outline,
    silhouette_overlap,
)
from vision.register._shape import SHAPE_MIN_SCORE, interior_score, register_by_shape
from vision.register._silhouette import product_mask, runs_out_of_frame
from vision.register._templates import TEMPLATE_GRID, refine_by_templates

# A coarse registration with fewer inliers is tried again with the working greys' features
# (and kept only if that finds nothing): in benchmarks/eval_registration.py (seed 2026) the
# coarse registrations off by 2-10 px all had 23-49 inliers, the accurate ones mostly more.
_COARSE_MIN_INLIERS = 60
_RNG_SEED = 20261126
_NEAR_MIN_SCORE = 0.5  # high-pass correlation a near-aligned (template) registration must reach
_MIN_COVERAGE = 0.35  # fraction of the golden's textured cells that hold an inlier
# Where a product stands on a table, at least this fraction of the inliers must lie on it (its
# silhouette grown by _ON_PRODUCT_MARGIN of the long side): two different products beside the
# same colour card, the card not found (so not masked), matched on the card alone
# (10 of 16 rendered pairs before this check).
_MIN_ON_PRODUCT = 0.5
_ON_PRODUCT_MARGIN = 0.02
# Template searches (fine pixels) of the refinement at the golden's corners, pass by pass:
# narrow, because a board's pattern repeats every few pixels and a wide search matches a
# period off (18 of 47 patches on DeepPCB 13000174); ECC leaves the candidate within them.
_CORNER_SEARCH = (3, 3, 2)
_IDENTITY_TOLERANCE = 0.01  # identity wins ties in alignment score


@dataclasses.dataclass(frozen=True)
class Registration:
    """Outcome of registering a unit photo onto the golden photo."""

    ok: bool
    homography: np.ndarray | None  # 3x3, unit pixel -> golden pixel, full resolution
    inliers: int
    rms_px: float | None  # RMS reprojection error of the inliers, full-resolution pixels
    method: str  # "features", "templates", "dense", "identity", "outline", "shape" or "none"
    coverage: float  # fraction of the golden's textured area holding inliers (1: not measured)
    reason: str | None = None  # why registration failed, in words a person can act on


def register(
    golden: np.ndarray | GoldenFeatures,
    unit: np.ndarray,
    *,
    unit_ignore: Sequence[np.ndarray] = (),
    working_size: int = WORKING_SIZE,
    unit_fine: tuple[np.ndarray, float] | None = None,
    unit_full_size: tuple[int, int] | None = None,
    unit_features: UnitFeatures | None = None,
) -> Registration:
    """Find the homography mapping `unit` pixels onto `golden` pixels.

    Parameters
    ----------
    golden : (H, W, 3) uint8 ndarray or GoldenFeatures
        The golden photo, or its features from :func:`prepare_golden_features`.
    unit : (H, W, 3) uint8 ndarray
        The unit photo, RGB, EXIF-oriented.
    unit_ignore : sequence of (K, 2) arrays, optional
        Polygons in the unit photo to keep out of matching (see `prepare_golden_features`).
    working_size : int, optional
        Long side of the copies that features are detected on.
    unit_fine : (ndarray, float), optional
        ``shrink_to_long_side(unit, FINE_SIZE)`` when the caller already made it (the
        pipeline shares it with card detection), so the full photo is not shrunk twice.
    unit_full_size : (width, height), optional
        The unit photo's size when `unit` is a reduced decode of it: the homography then maps
        the photo's pixels, not the array's.
    unit_features : UnitFeatures, optional
        :func:`prepare_unit_features` of `unit`, when the caller already made it (with the
        same `unit_ignore`, `working_size`, `unit_fine` and `unit_full_size`, which are then
        not used again).

    Returns
    -------
    Registration
        ``ok`` is False, with a ``reason``, when the unit cannot be put onto the golden
        sample (another product, a blurred photo, too little texture).
    """
    if not isinstance(golden, GoldenFeatures):
        golden = prepare_golden_features(golden, working_size=working_size)
    # FLANN's randomised trees and the robust estimators draw from OpenCV's per-thread RNG:
    # seed it so the same photos always give the same report (re-scoring relies on that).
    cv2.setRNGSeed(_RNG_SEED)
    features = unit_features or prepare_unit_features(
        unit, ignore=unit_ignore, working_size=working_size, fine_copy=unit_fine,
        full_size=unit_full_size)
    unit_shape = features.shape
    unit_grey, unit_scale = features.grey, features.scale
    unit_fine, unit_fine_scale = features.fine, features.fine_scale
    unit_ignore_mask = features.ignore_mask
    candidate, candidate_work, reason = None, None, ""
    # Features of the coarse copies first; those of the working greys only when the coarse
    # ones do not register the unit, or with fewer than _COARSE_MIN_INLIERS inliers.
    attempts = 2 if golden.detection_shrink > 1 or features.detection_shrink > 1 else 1
    for attempt in range(1, attempts + 1):
        cv2.setRNGSeed(_RNG_SEED)  # each attempt as if it were the only one
        # The second attempt's features are detected only now (golden.full_detail is kept).
        found, found_work, reason = _register_by_features(
            *((golden, features) if attempt == 1 else
              (golden.full_detail, features.full_detail)))
        if found is not None:
            candidate, candidate_work = found, found_work
            if attempt == attempts or found.inliers >= _COARSE_MIN_INLIERS:
                break

    if candidate is None and unit_shape == golden.shape:
        near = _near_aligned(golden, unit_grey, unit_scale, unit_fine, unit_fine_scale,
                             unit_ignore_mask)
        if near is not None:
            candidate, candidate_work = near
    if candidate is not None and _dense_needed(golden, candidate):
        dense = _register_densely(golden, features, candidate, candidate_work)
        if dense is not None:
            candidate, candidate_work = dense
        elif candidate is not None and candidate.inliers < _COARSE_MIN_INLIERS:
            # Few features agree and the photos do not correlate through them: on
            # repetitive boards, the consistent wrong matches of a neighbouring period.
            candidate, candidate_work = None, None
            reason = ("the few features that agree do not make the photos correspond: the "
                      "unit is probably another product")

    if unit_shape == golden.shape:
        identity_score = alignment_score(golden, unit_grey, np.eye(3), unit_ignore_mask,
                                          features.detail)
        # The candidate's own score only matters when the identity could win at all.
        features_score = (alignment_score(golden, unit_grey, candidate_work, unit_ignore_mask)
                          if candidate is not None and identity_score > 0.5 else -1.0)
        if identity_score >= features_score - _IDENTITY_TOLERANCE and identity_score > 0.5:
            return Registration(
                ok=True,
                homography=np.eye(3),
                inliers=candidate.inliers if candidate is not None else 0,
                rms_px=None,
                method="identity",
                coverage=1.0,
            )
    if candidate is not None:
        return candidate
    # Last resort, only where nothing else registered (so no result that registers today
    # changes): the product's silhouette on the table.
    if golden.colour is not None:
        outline = register_by_outline(golden, features.product_blob, unit_grey,
                                       unit_ignore_mask)
        if outline is not None and outline[1] < OUTLINE_MIN_SCORE:
            outline = None
        # The texture's correlation alone does not verify it (a weave correlates a period
        # off): the silhouettes, which the fit never sees at the fine level, must coincide.
        overlap = (0.0 if outline is None else
                   silhouette_overlap(golden, features.product_blob, unit_grey.shape,
                                      outline[0]))
        if outline is not None and outline[2] is not None:
            reason = outline[2]
        elif outline is not None and overlap < OUTLINE_MIN_OVERLAP:
            reason = ("the product's outline and texture suggest an alignment under which the "
                      f"two silhouettes do not coincide ({overlap:.0%} overlap): photograph "
                      "the whole product against a plain table, or the unit may be another "
                      "product")
        # A rounded outline, or a texture the outline's fit cannot hold (a relief's
        # shading, brushed steel): the whole silhouette, then the edges inside it.
        shape = register_by_shape(
            golden, features.product_blob, unit_grey, unit_ignore_mask,
            lambda H: silhouette_overlap(golden, features.product_blob, unit_grey.shape, H),
            features.colour)
        shape_verified = (shape is not None and shape[2] is None
                          and shape[1] >= SHAPE_MIN_SCORE)
        if outline is not None and outline[2] is None and overlap >= OUTLINE_MIN_OVERLAP and (
                not shape_verified
                or interior_score(golden, unit_grey, outline[0]) >= shape[1]):
            # Both verified: the one whose inside's edges correlate better. The outline's
            # fit can slide over a smooth inside that its check does not pin (a colour
            # wheel 6.3 px off at 0.66; steel 3.1 px off).
            return Registration(
                ok=True,
                homography=_scaled(outline[0], unit_scale, golden.scale),
                inliers=0,
                rms_px=None,
                method="outline",
                coverage=1.0,
            )
        if shape_verified:
            return Registration(ok=True, homography=_scaled(shape[0], unit_scale, golden.scale),
                                inliers=0, rms_px=None, method="shape", coverage=1.0)
        if shape is not None and shape[2] is not None and outline is None:
            reason = shape[2]
    # Then the whole image, turned and zoomed (repetitive boards whose features mismatch),
    # where the subject fills the frame: a product on a table has its outline above, and a
    # smooth one (the colour wheel) correlates tile by tile turned by any angle. Where the
    # golden's detail fills its frame and the unit shows no product on a table, the golden's
    # "product" is the largest piece of a flat subject (a board's one large copper area on
    # white: 3 of the 50 turned DeepPCB boards of the tune half), and the whole frame counts.
    # Not where the golden shows a colour card (masked out in its ignore_mask): that is a
    # photo of a product on a table by the instructions, and a unit whose product the
    # silhouette finder misses (glare on steel) was registered 607 px off by the whole image
    # (eval_randomised.py --split report, #57; every render's table has detail in all 16 tiles).
    golden_shows_card = golden.ignore_mask is not None and not golden.ignore_mask.all()
    dense = None
    if golden.product_blob is None or (features.product_blob is None and not golden_shows_card
                                       and detail_fills_frame(golden)):
        flat = (golden if golden.product_blob is None
                else dataclasses.replace(golden, product_blob=None))
        dense = _register_densely(flat, features, None, None)
    if dense is not None:
        return dense[0]
    if golden.colour is not None and runs_out_of_frame(features.product_blob):
        # "Probably another product" would send the inspector the wrong way: the photo is
        # what to fix.
        reason = ("the product runs out of the unit photo, and too few of its features "
                  "match to register it without its whole outline: photograph the whole "
                  "product")
    return Registration(ok=False, homography=None, inliers=0, rms_px=None, method="none",
                        coverage=0.0, reason=reason)


def _register_by_features(golden: GoldenFeatures, features: UnitFeatures
                          ) -> tuple[Registration | None, np.ndarray | None, str]:
    """Steps 2-5 of the package's method: (registration, working-resolution homography, "")
    when the features register the unit, else (None, None, why not)."""
    unit_points, unit_desc = features.points, features.descriptors
    unit_grey, unit_scale = features.grey, features.scale
    unit_fine, unit_fine_scale = features.fine, features.fine_scale
    reason = ""
    # First the strict ratio test; if that leaves too little (repetitive patterns such as
    # fabric, where every descriptor has look-alikes), a permissive pass whose result must
    # then earn its keep through guided matching and the same checks.
    for ratio in (RATIO, PERMISSIVE_RATIO):
        matches = match(golden, unit_desc, ratio)
        H, inliers, reason = robust_homography(golden, unit_points, matches, ratio)
        if H is None:
            continue
        H, inliers = guided_refinement(golden, unit_points, unit_desc, H, inliers)
        n_inliers = len(inliers)
        src, dst = unit_points[inliers[:, 0]], golden.points[inliers[:, 1]]
        covered = cell_counts(dst, golden.grey.shape) > 0
        textured = golden.textured_cells
        coverage = float((covered & textured).sum() / max(1, textured.sum()))
        problem = plausible(H, unit_grey.shape, golden.grey.shape)
        if n_inliers < MIN_INLIERS:
            reason = (f"only {n_inliers} features agree on one alignment (at least "
                      f"{MIN_INLIERS} needed): the unit may be another product")
        elif coverage < _MIN_COVERAGE:
            reason = (f"the features agree only over {coverage:.0%} of the golden's "
                      "detailed area: the unit is probably another product")
        elif (on_product := _fraction_on_product(golden, dst)) < _MIN_ON_PRODUCT:
            reason = (f"only {on_product:.0%} of the features that agree lie on the product "
                      "(the rest beside it: a colour card or the table): the unit is probably "
                      "another product")
        elif problem:
            reason = problem
        else:
            H_fine = _scaled(H, unit_scale / unit_fine_scale, golden.scale / golden.fine_scale)
            H_fine, rms_fine = refine_by_templates(golden, unit_fine, H_fine,
                                                    dst * (golden.fine_scale / golden.scale))
            if rms_fine is None:  # refinement not possible: keep the feature homography
                projected = cv2.perspectiveTransform(
                    src.reshape(-1, 1, 2).astype(np.float64), H)
                residual = np.linalg.norm(projected.reshape(-1, 2) - dst, axis=1)
                rms_full = float(np.sqrt(np.mean(residual**2))) / golden.scale
            else:
                rms_full = rms_fine / golden.fine_scale
            candidate = Registration(
                ok=True,
                homography=_scaled(H_fine, unit_fine_scale, golden.fine_scale),
                inliers=n_inliers,
                rms_px=rms_full,
                method="features",
                coverage=coverage,
            )
            return candidate, H, ""
    return None, None, reason


def _dense_needed(golden: GoldenFeatures, candidate: Registration | None) -> bool:
    """Whether the dense steps run: when nothing registered, when few features agree, and
    where the subject fills the frame (no product stands on a table: a board, a close-up),
    whose features concentrate where the pattern is least repetitive and leave the
    corners a few pixels off. A product on a table keeps its templates' polish alone."""
    return (candidate is None or candidate.inliers < _COARSE_MIN_INLIERS
            or golden.product_blob is None)


def _register_densely(golden: GoldenFeatures, features: UnitFeatures,
                      candidate: Registration | None, candidate_work: np.ndarray | None
                      ) -> tuple[Registration, np.ndarray] | None:
    """The dense steps (``_dense``): the candidate polished by ECC, or, when it does not
    make the photos correspond and the subject fills the frame, the rotation-invariant
    candidate; verified tile by tile.
    (registration, working-resolution homography), or None when neither verifies."""
    grey, ignore = features.grey, features.ignore_mask
    from_candidate = []
    if candidate is not None:
        from_candidate = _scored(golden, features,
                                 [candidate_work, polish(golden, grey, candidate_work, ignore)])
    verified = list(from_candidate)
    # Stripes correlate shifted along themselves: no whole-image candidate for them.
    if golden.product_blob is None and not edges_run_one_way(golden) and (
            not verified or max(score for score, _ in verified) < DENSE_MIN_SCORE):
        verified += _scored(golden, features, rotation_candidate(golden, grey, ignore))
    if not verified:
        return None
    score, H_work = max(verified, key=lambda pair: pair[0])
    if score < DENSE_MIN_SCORE:
        return None
    refined = any(H_work is H for _, H in from_candidate)
    # A flat subject's registration, whichever step found it, gets ECC's final fit.
    fitted = (final_fit(golden, grey, H_work, ignore) if golden.product_blob is None
              else None)
    if candidate is not None and H_work is candidate_work:
        if fitted is None:
            return candidate, candidate_work
        return dataclasses.replace(
            candidate, homography=_scaled(fitted, features.scale, golden.scale)), fitted
    H_work = H_work if fitted is None else fitted
    registration = Registration(
        ok=True,
        homography=_scaled(H_work, features.scale, golden.scale),
        inliers=candidate.inliers if refined else 0,
        rms_px=None,
        method=candidate.method if refined else "dense",
        coverage=candidate.coverage if refined else 1.0,
    )
    return registration, H_work


def _scored(golden: GoldenFeatures, features: UnitFeatures,
            homographies: list[np.ndarray | None]) -> list[tuple[float, np.ndarray]]:
    """(verified score, homography) of each homography and of its refinement by templates
    at the golden's corners (see :func:`_templates_at_corners`)."""
    scored = []
    for H in homographies:
        if H is None:
            continue
        for option in (H, _templates_at_corners(golden, features, H)):
            if option is not None:
                scored.append((verified_score(golden, features.grey, option), option))
    return scored


def _fraction_on_product(golden: GoldenFeatures, points: np.ndarray) -> float:
    """The fraction of `points` (golden working pixels) on the golden's product, its
    silhouette grown a little; 1 when no product stands on a table (nothing to check)."""
    mask = product_mask(golden)
    if mask is None or len(points) == 0:
        return 1.0
    grow = max(3, int(_ON_PRODUCT_MARGIN * max(mask.shape)))
    mask = cv2.dilate(mask.astype(np.uint8), np.ones((grow, grow), np.uint8)) > 0
    h, w = mask.shape
    xs = np.clip(np.round(points[:, 0]).astype(int), 0, w - 1)
    ys = np.clip(np.round(points[:, 1]).astype(int), 0, h - 1)
    return float(mask[ys, xs].mean())


def _near_aligned(golden: GoldenFeatures, unit_grey: np.ndarray, unit_scale: float,
                  unit_fine: np.ndarray, unit_fine_scale: float,
                  unit_ignore_mask: np.ndarray | None):
    """Register photos from a fixture or scanner that are aligned up to a few pixels.

    Repetitive boards and fabrics can defeat descriptor matching (every feature has
    look-alikes), yet such photos often come from a jig, off by a small shift. Phase
    correlation finds the shift; template refinement then fits the homography on every
    textured spot. Accepted only if templates agree and the result correlates well.

    Returns (Registration, working-resolution homography) or None.
    """
    window = cv2.createHanningWindow(golden.grey.shape[::-1], cv2.CV_32F)
    # A copy: with a window, and a size DFT needs no padding for (640 x 640 DeepPCB boards),
    # OpenCV's phaseCorrelate multiplies the window into its inputs in place; it would
    # corrupt the cached detail, and every later alignment score with it.
    (sx, sy), _ = cv2.phaseCorrelate(golden.detail.copy(), highpass(unit_grey), window)
    max_shift = 0.05 * max(golden.grey.shape)
    if np.hypot(sx, sy) > max_shift:
        return None
    H_work = np.array([[1.0, 0.0, -sx], [0.0, 1.0, -sy], [0.0, 0.0, 1.0]])
    H_fine = _scaled(H_work, unit_scale / unit_fine_scale, golden.scale / golden.fine_scale)
    corners = _corner_anchors(golden)
    if corners is None:
        return None
    H_fine, rms_fine = refine_by_templates(golden, unit_fine, H_fine, corners)
    # Too few templates to fit a homography: the shift alone, if it correlates well enough.
    H_work = _scaled(H_fine, unit_fine_scale / unit_scale, golden.fine_scale / golden.scale)
    if (plausible(H_work, unit_grey.shape, golden.grey.shape) is not None
            or alignment_score(golden, unit_grey, H_work, unit_ignore_mask) < _NEAR_MIN_SCORE):
        return None
    registration = Registration(
        ok=True,
        homography=_scaled(H_fine, unit_fine_scale, golden.fine_scale),
        inliers=0,
        rms_px=None if rms_fine is None else rms_fine / golden.fine_scale,
        method="templates",
        coverage=1.0,
    )
    return registration, H_work


def _corner_anchors(golden: GoldenFeatures) -> np.ndarray | None:
    """(N, 2) corners of the golden's fine grey, for template refinement; None if none.
    Corners rather than SIFT blobs: a binarised circuit has few blobs but many corners."""
    h, w = golden.fine.shape
    corners = cv2.goodFeaturesToTrack(golden.fine, maxCorners=4 * TEMPLATE_GRID**2,
                                      qualityLevel=0.01, minDistance=max(h, w) / 60)
    return None if corners is None else corners.reshape(-1, 2)


def _templates_at_corners(golden: GoldenFeatures, features: UnitFeatures, H_work: np.ndarray
                          ) -> np.ndarray | None:
    """`H_work` refined by golden patches around corners all over the golden (twice: the
    second pass starts within a fraction of a pixel), or None when the templates disagree.
    ECC fits the whole image at once and lets a homography's perspective drift where the
    subject is blank (5 px at a board's corners at correlation 0.9999); the templates are
    each pinned to detail."""
    corners = _corner_anchors(golden)
    if corners is None:
        return None
    ratio_unit = features.scale / features.fine_scale
    ratio_golden = golden.scale / golden.fine_scale
    H_fine, refined = _scaled(H_work, ratio_unit, ratio_golden), False
    for search in _CORNER_SEARCH:
        H_fine, rms_fine = refine_by_templates(golden, features.fine, H_fine, corners,
                                               search=search)
        refined |= rms_fine is not None
    return _scaled(H_fine, 1.0 / ratio_unit, 1.0 / ratio_golden) if refined else None


def _scaled(H: np.ndarray, unit_scale: float, golden_scale: float) -> np.ndarray:
    """Lift a working-resolution homography to full resolution."""
    S_unit = np.diag([unit_scale, unit_scale, 1.0])
    S_golden_inv = np.diag([1.0 / golden_scale, 1.0 / golden_scale, 1.0])
    H_full = S_golden_inv @ H @ S_unit
    return H_full / H_full[2, 2]


def warp_to_golden(
    unit: np.ndarray, homography: np.ndarray, golden_shape: tuple[int, int], *,
    interpolation: int = cv2.INTER_LINEAR,
) -> tuple[np.ndarray, np.ndarray]:
    """Resample `unit` into the golden frame: (aligned image, bool mask of the overlap)."""
    h, w = golden_shape
    aligned = cv2.warpPerspective(unit, homography, (w, h), flags=interpolation,
                                  borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    valid = cv2.warpPerspective(np.full(unit.shape[:2], 255, np.uint8), homography, (w, h),
                                flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT)
    return aligned, valid > 0
