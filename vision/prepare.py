"""Each photo's share of a comparison that needs nothing of the other photo.

A golden is prepared once (:func:`prepare_golden`) and compared with every unit; a unit's
share (:func:`prepare_unit`) can run beside the golden's. Both find the colour card and fit its
correction (:mod:`vision.calibrate`) and detect registration features (:mod:`vision.register`);
the golden also gets its analysis-size copy, its views and its product silhouette.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from calibration.detect import CardDetection, find_card
from imaging.resample import shrink_to_long_side
from vision import register
from vision.calibrate import PhotoCalibration
from vision.frame import ANALYSIS_SIZE
from vision.runner import StageRunner
from vision.views import AnalysisViews, calibrated_views, raw_views

__all__ = [
    "GoldenCore",
    "PreparedGolden",
    "PreparedUnit",
    "finish_golden",
    "golden_core",
    "prepare_golden",
    "prepare_unit",
]


@dataclasses.dataclass(frozen=True)
class PreparedGolden:
    """A golden photo's per-image work, done once and reused for every unit compared to it."""

    image: np.ndarray  # RGB uint8, oriented: the photo, or a reduced decode of it
    calibration: PhotoCalibration  # the golden's colour card and correction
    features: register.GoldenFeatures
    analysis_scale: float  # analysis pixels per golden pixel
    analysis_rgb: np.ndarray  # RGB uint8 at analysis resolution
    calibrated: AnalysisViews | None  # colour-corrected with the golden's card, if fitted
    # The product's silhouette (register.product_mask), working resolution; None: no table seen.
    product: np.ndarray | None = None
    # (width, height) of the photo when `image` is a reduced decode of it; None: image's size.
    # Every position the pipeline reports is in the photo's pixels, whatever was decoded.
    photo_size: tuple[int, int] | None = None

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the golden photo: the pixels reports are given in."""
        return self.photo_size or (self.image.shape[1], self.image.shape[0])

    @property
    def image_scale(self) -> float:
        """`image` pixels per golden photo pixel (1, or about 1/reduce)."""
        return self.image.shape[1] / self.size[0]

    @property
    def card(self) -> CardDetection | None:
        """The colour card in the golden photo, if any."""
        return self.calibration.card

    @functools.cached_property
    def raw(self) -> AnalysisViews:
        """The views as photographed (sRGB decoding), made on first use: with a card in both
        photos they are never needed."""
        return raw_views(self.analysis_rgb)


@dataclasses.dataclass(frozen=True)
class PreparedUnit:
    """A unit photo's share of the work that needs nothing of the golden's: its colour card
    and fit, and its registration features (see :func:`prepare_unit`)."""

    image: np.ndarray  # RGB uint8, oriented: the photo, or a reduced decode of it
    photo_size: tuple[int, int]  # (width, height) of the photo: the pixels reports use
    calibration: PhotoCalibration
    features: register.UnitFeatures
    timings_ms: dict[str, float]  # the stages done here, as compare() would have timed them


@dataclasses.dataclass(frozen=True)
class GoldenCore:
    """The part of :func:`prepare_golden` that registration needs: card, colour fit and
    features (the rest, :func:`finish_golden`, can run while a unit is registered)."""

    image: np.ndarray
    photo_size: tuple[int, int] | None
    analysis_rgb: np.ndarray
    analysis_scale: float
    calibration: PhotoCalibration
    features: register.GoldenFeatures


def check_rgb(image: np.ndarray, name: str) -> None:
    """Refuse anything but an (H, W, 3) uint8 RGB array, saying how to get one."""
    if not (isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] == 3
            and image.dtype == np.uint8):
        got = getattr(image, "shape", type(image).__name__), getattr(image, "dtype", "")
        raise ValueError(f"{name} must be an (H, W, 3) uint8 RGB array, got {got}; "
                         "decode photos with vision.decode.load_image")


def prepare_golden(golden: np.ndarray, *, analysis_size: int = ANALYSIS_SIZE,
                   photo_size: tuple[int, int] | None = None) -> PreparedGolden:
    """Do the golden photo's share of the work once (card and colour fit, features, copies).

    `photo_size` (width, height): the photo's size when `golden` is a reduced decode of it
    (``load_image(reduce=...)``); positions in reports are then still the photo's pixels.
    """
    return finish_golden(golden_core(golden, analysis_size=analysis_size,
                                     photo_size=photo_size))


def golden_core(golden: np.ndarray, *, analysis_size: int = ANALYSIS_SIZE,
                photo_size: tuple[int, int] | None = None) -> GoldenCore:
    """The golden's card, colour fit and registration features (see :class:`GoldenCore`)."""
    check_rgb(golden, "golden")
    gw, gh = photo_size or (golden.shape[1], golden.shape[0])
    image_scale = golden.shape[1] / gw
    analysis_rgb, scale = shrink_to_long_side(golden, analysis_size)
    scale *= image_scale  # analysis pixels per golden photo pixel
    # The card detector works at ANALYSIS_SIZE too: reuse the analysis copy instead of
    # shrinking the full photo again.
    card = find_card(analysis_rgb if analysis_size >= ANALYSIS_SIZE else golden,
                     full_size=(gw, gh))
    calibration = PhotoCalibration.of(golden, card, scale=image_scale)
    features = register.prepare_golden_features(golden,
                                                ignore=[card.outline()] if card else (),
                                                full_size=(gw, gh))
    return GoldenCore(golden, photo_size, analysis_rgb, scale, calibration, features)


def finish_golden(core: GoldenCore, *, with_detail: bool = True) -> PreparedGolden:
    """The golden's analysis views and silhouette, and the caches every unit reads.

    `with_detail`: also make the high-pass image registration's identity check reads
    (False when the caller's registration makes it meanwhile, in another thread)."""
    calibration = core.calibration
    prepared = PreparedGolden(
        image=core.image,
        calibration=calibration,
        features=core.features,
        analysis_scale=core.analysis_scale,
        analysis_rgb=core.analysis_rgb,
        calibrated=(None if calibration.correction is None
                    else calibrated_views(core.analysis_rgb, calibration.correction)),
        product=register.product_mask(core.features),
        photo_size=core.photo_size,
    )
    # The golden's share is done here, once: its colour cue and the defect model's input
    # (without a card, of its raw views).
    views = prepared.calibrated or prepared.raw
    views.lab_smooth, views.rgb8  # noqa: B018 - computed for their caches
    if with_detail:
        core.features.detail  # noqa: B018 - computed for its cache
    return prepared


def prepare_unit(unit: np.ndarray, *, photo_size: tuple[int, int] | None = None
                 ) -> PreparedUnit:
    """Do the unit photo's share of the work that does not need the golden.

    :func:`vision.compare.compare` does this itself when given the array. A caller that has
    the golden still to prepare can run this beside :func:`prepare_golden` (OpenCV releases
    the GIL; the CLI does, on two cores) and pass the result to ``compare``. `photo_size` as
    in :func:`prepare_golden`.
    """
    check_rgb(unit, "unit")
    uw, uh = photo_size or (unit.shape[1], unit.shape[0])
    runner = StageRunner()
    # One area-filtered copy of the unit for card detection and registration both.
    unit_fine = runner.run("downscale", shrink_to_long_side, unit, register.FINE_SIZE)
    with runner.timed("calibrate"):
        card = find_card(unit_fine[0], full_size=(uw, uh))
        calibration = PhotoCalibration.of(unit, card, scale=unit.shape[1] / uw)
    features = runner.run("register", register.prepare_unit_features, unit,
                          ignore=[card.outline()] if card else (), fine_copy=unit_fine,
                          full_size=(uw, uh))
    return PreparedUnit(unit, (uw, uh), calibration, features, runner.timings_ms)
