"""The comparison pipeline: golden + unit photos + spec -> report and pictures.

Data flows one way: (decoded photos) -> calibrate -> register -> measure colour, structure and
defects -> judge against the spec -> report. Decoding belongs to the caller (see
:mod:`vision.decode`) so that the pipeline works on arrays from any source.

Measurements are taken at an *analysis resolution* (long side :data:`ANALYSIS_SIZE`): a phone
photo has far more pixels than a 1 cm defect needs, and sensor noise at full resolution would
otherwise dominate SSIM. Everything reported is mapped back to full-resolution golden pixels.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import sys
import time
from contextlib import contextmanager

import cv2
import numpy as np

from calibration.detect import CardDetection, find_card
from calibration.fit import ColourCorrection, PatchSamples, calibrate_photo
from imaging import color
from imaging.resample import shrink_to_long_side
from vision import defect_model, register, render
from vision._regions import hysteresis, joined_regions
from vision.report import (
    SCHEMA_VERSION,
    CalibrationReport,
    CalibrationSide,
    ColorReport,
    ColorTiles,
    DefectRegion,
    DefectsReport,
    DimensionsReport,
    RegistrationReport,
    Report,
    StructureReport,
)
from vision.severity import unit_defect_class
from vision.spec import Spec
from vision.structure import structural_similarity

__all__ = [
    "ANALYSIS_SIZE",
    "Comparison",
    "PreparedGolden",
    "PreparedUnit",
    "compare",
    "compare_side_by_side",
    "decode_reduction",
    "load_for_report",
    "load_pair",
    "prepare_golden",
    "prepare_unit",
    "register_unit",
]

ANALYSIS_SIZE = 1024
"""Long side, in pixels, of the golden frame in which colour, SSIM and defects are measured."""

_TILE_ANALYSIS_PX = 64  # colour tile edge at analysis resolution
_EDGE_ERODE_PX = 4  # drop the resampled rim of the overlap, where interpolation mixes in border
_MIN_ROI_COVERAGE = 0.5  # below this fraction of the ROI inside the overlap: inconclusive
_MIN_OVERLAP = 0.05  # without an ROI: below this fraction of the golden photo: inconclusive
# Defect likelihood: a pixel is a candidate when local SSIM falls below 1 - _SSIM_DROP or the
# local colour differs by more than _LOCAL_DELTA_E beyond the global drift (CIEDE2000). Chosen
# from the cue maxima on synthetic pairs (tests/helpers/scenes.py): identical content reached
# at most 0.56 and 5.5, 10 mm defects mostly above 0.6 or 6.3.
_SSIM_DROP = 0.6
_SSIM_PREFILTER_SIGMA = 1.0  # analysis pixels; see AnalysisViews.grey_for_ssim
_LOCAL_DELTA_E = 6.0
_EDGE_MARGIN_PX = 9  # analysis pixels: 3 sigma of the cues' smoothing + interpolation
_GROW_LIKELIHOOD = 0.3  # a candidate region extends over connected likelihood above this
# Both Lab maps of the colour cue are blurred with this sigma (analysis pixels) first, so the
# per-pixel CIEDE2000 is computed at half the analysis resolution and interpolated back.
_COLOUR_CUE_SIGMA = 2.0
# The defect model runs on the compared region's box plus this margin (analysis pixels): the
# network's context, and less work than the whole frame when the product fills part of it.
_MODEL_MARGIN_PX = 32
_MODEL_GROW = 0.25  # the model's hysteresis floor (its model card's operating point)
_DEFECT_SOURCE = "ssim+delta_e+model"


@dataclasses.dataclass(frozen=True)
class PhotoCalibration:
    """One photo's colour card and the correction fitted on it (None where not found/fitted)."""

    card: CardDetection | None
    correction: ColourCorrection | None
    samples: PatchSamples | None

    @classmethod
    def of(cls, photo: np.ndarray, card: CardDetection | None, *, scale: float = 1.0
           ) -> PhotoCalibration:
        """`scale`: `photo` pixels per pixel of the card's coordinates (reduced decodes)."""
        if card is None:
            return cls(None, None, None)
        correction, samples = calibrate_photo(photo, card, scale=scale)
        return cls(card, correction, samples)


@dataclasses.dataclass(frozen=True)
class AnalysisViews:
    """What the colour, structure and defect stages read of one analysis image."""

    linear: np.ndarray  # linear RGB float32 (calibrated or as photographed)
    grey: np.ndarray  # sRGB-encoded luma uint8, for SSIM

    @functools.cached_property
    def grey_for_ssim(self) -> np.ndarray:
        """`grey` low-passed (Gaussian, sigma _SSIM_PREFILTER_SIGMA) before SSIM.

        The unit reaches the analysis frame through a perspective warp (bilinear), the golden
        through an area shrink only: texture near the frame's resolution limit (a wood grain)
        survives in one and is half smoothed in the other, and SSIM read that as a structural
        defect on identical products (a bench pair: a 6000 px region at SSIM ~0.4). The same
        mild low-pass on both removes what only one of them resolves. It is the precedent of
        Wang et al.'s own SSIM code, which averages and downsamples images of this size by 3
        before comparing; a 1 cm defect spans tens of analysis pixels and stays.
        """
        return cv2.GaussianBlur(self.grey, (0, 0), _SSIM_PREFILTER_SIGMA)

    @functools.cached_property
    def rgb8(self) -> np.ndarray:
        """`linear` encoded as 8-bit sRGB: the defect model's input (calibrated colours when
        the views are calibrated). Made on first use; the golden's is then kept for every unit."""
        return color.linear_to_srgb8(self.linear)

    @functools.cached_property
    def lab_smooth(self) -> np.ndarray:
        """Blurred CIELAB at half resolution (the defect stage's colour cue), made on first
        use, so its cost is counted where it is needed (the defects stage of a unit)."""
        return _smooth_lab(self.linear)


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
        photos they are never needed. (cached_property writes the instance's __dict__
        directly, which a frozen dataclass allows; computing twice in two threads is
        harmless.)"""
        return _raw_views(self.analysis_rgb)


@dataclasses.dataclass(frozen=True)
class PreparedUnit:
    """A unit photo's share of the work that needs nothing of the golden's: its colour card
    and fit, and its registration features (see :func:`prepare_unit`)."""

    image: np.ndarray  # RGB uint8, oriented: the photo, or a reduced decode of it
    photo_size: tuple[int, int]  # (width, height) of the photo: the pixels reports use
    calibration: PhotoCalibration
    features: register.UnitFeatures
    timings_ms: dict[str, float]  # the stages done here, as compare() would have timed them


@dataclasses.dataclass
class Comparison:
    """The report plus the pictures a person looks at."""

    report: Report
    # The pictures have the golden array's size: the photo's, unless it was decoded reduced.
    defect_map: np.ndarray  # uint8, 0-255 defect likelihood
    overlay: np.ndarray  # RGB uint8: the golden with what changed marked on it
    aligned_unit: np.ndarray | None  # RGB uint8; None when not registered


class _Stopwatch:
    def __init__(self) -> None:
        self.ms: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.ms[name] = round(self.ms.get(name, 0.0) + (time.perf_counter() - start) * 1e3, 2)


class _Beside:
    """Work run beside the caller's thread (`in_thread`), or inline and at once.

    A context manager: leaving it waits for what was started (and closes the thread), so no
    work outlives the comparison; errors come out of ``result()``.
    """

    def __init__(self, in_thread: bool) -> None:
        self._pool = None
        if in_thread:
            self._pool = concurrent.futures.ThreadPoolExecutor(
                1, thread_name_prefix="sealcheck-beside")

    def __enter__(self) -> _Beside:
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def run(self, watch: _Stopwatch, stage: str, function, *args, **kwargs
            ) -> concurrent.futures.Future:
        """`function(*args, **kwargs)` timed as `stage`; its future."""
        def timed():
            with watch.stage(stage):
                return function(*args, **kwargs)

        if self._pool is not None:
            return self._pool.submit(timed)
        future: concurrent.futures.Future = concurrent.futures.Future()
        future.set_result(timed())
        return future


def _smooth_lab(linear: np.ndarray) -> np.ndarray:
    """CIELAB of a linear analysis image, halved (area filter) and blurred: the local colour.

    Halving before the blur is the same low-pass (the area filter adds a 2x2 box, about
    sigma 0.3 analysis pixels, to sigma 2) at a quarter of the cost of what follows.
    """
    h, w = linear.shape[:2]
    half = cv2.resize(linear, ((w + 1) // 2, (h + 1) // 2), interpolation=cv2.INTER_AREA)
    return color.linear_rgb_to_lab(cv2.GaussianBlur(half, (0, 0), _COLOUR_CUE_SIGMA / 2.0))


def _raw_views(rgb: np.ndarray) -> AnalysisViews:
    return AnalysisViews(color.srgb8_to_linear(rgb), cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))


def _calibrated_views(rgb: np.ndarray, correction: ColourCorrection) -> AnalysisViews:
    linear = correction.apply(rgb)
    # SSIM's grey: the calibrated luminance, sRGB-encoded (one channel to encode instead of
    # three). Both photos of a comparison use the same definition, so SSIM stays comparable.
    luminance = cv2.transform(linear, np.array([[0.2126, 0.7152, 0.0722]], np.float32))
    return AnalysisViews(linear, color.linear_to_srgb8(luminance))


def prepare_golden(golden: np.ndarray, *, analysis_size: int = ANALYSIS_SIZE,
                   photo_size: tuple[int, int] | None = None) -> PreparedGolden:
    """Do the golden photo's share of the work once (card and colour fit, features, copies).

    `photo_size` (width, height): the photo's size when `golden` is a reduced decode of it
    (``load_image(reduce=...)``); positions in reports are then still the photo's pixels.
    """
    return _finish_golden(_golden_core(golden, analysis_size=analysis_size,
                                       photo_size=photo_size))


@dataclasses.dataclass(frozen=True)
class _GoldenCore:
    """The part of :func:`prepare_golden` that registration needs: card, colour fit and
    features (the rest, :func:`_finish_golden`, can run while a unit is registered)."""

    image: np.ndarray
    photo_size: tuple[int, int] | None
    analysis_rgb: np.ndarray
    analysis_scale: float
    calibration: PhotoCalibration
    features: register.GoldenFeatures


def _golden_core(golden: np.ndarray, *, analysis_size: int = ANALYSIS_SIZE,
                 photo_size: tuple[int, int] | None = None) -> _GoldenCore:
    _check_rgb(golden, "golden")
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
    return _GoldenCore(golden, photo_size, analysis_rgb, scale, calibration, features)


def _finish_golden(core: _GoldenCore, *, with_detail: bool = True) -> PreparedGolden:
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
                    else _calibrated_views(core.analysis_rgb, calibration.correction)),
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


REDUCED_DECODE_MIN_SIDE = 1800
"""Long side a reduced decode must keep (see :func:`decode_reduction`)."""


def decode_reduction(photo_size: tuple[int, int]) -> int:
    """The largest ``load_image(reduce=...)`` factor that loses nothing the report needs.

    Measurements run at ANALYSIS_SIZE (1024 px) and registration refines at up to
    register.FINE_SIZE (2048 px), so a photo decoded to a long side of at least
    REDUCED_DECODE_MIN_SIDE gives the same report (half a 12 MP photo is 2016 px: templates
    then run at 2016 instead of 2048 px). A JPEG decodes at 1/2 through its DCT in about a
    third of the time. Pictures at the photo's size need the full decode.
    """
    long_side = max(photo_size)
    for factor in (8, 4, 2):
        if long_side / factor >= REDUCED_DECODE_MIN_SIDE:
            return factor
    return 1


def load_for_report(source, *, name: str | None = None, max_pixels: int = 80_000_000
                    ) -> tuple[np.ndarray, tuple[int, int]]:
    """Decode a photo for a report only: (RGB at the :func:`decode_reduction` size, the
    photo's (width, height)). Pass the size on as `golden_photo_size` / `unit_photo_size`
    (or `photo_size` of :func:`prepare_golden`); pictures at full size need ``load_image``."""
    from vision.decode import ImageDecodeError, load_image, read_image_size

    try:
        size = read_image_size(source, name=name)
    except ImageDecodeError:
        # A header that cannot be read: the full decode below raises the same error every
        # other caller of load_image gets (the messages and their HTTP statuses are one set).
        size = None
    rgb = load_image(source, name=name, max_pixels=max_pixels,
                     reduce=1 if size is None else decode_reduction(size))
    return rgb, size or (rgb.shape[1], rgb.shape[0])


def load_pair(golden_source, unit_source, *, for_report: bool = True,
              max_pixels: int = 80_000_000
              ) -> tuple[tuple[np.ndarray, tuple[int, int]], tuple[np.ndarray, tuple[int, int]]]:
    """Decode the golden and the unit photo at once, in two threads (the decoders release
    the GIL): ((rgb, photo size), (rgb, photo size)).

    `for_report`: at the :func:`load_for_report` size; False decodes every pixel (pictures
    at full size). When both fail, the golden's error is the one raised.
    """
    from vision.decode import load_image

    def decode(source) -> tuple[np.ndarray, tuple[int, int]]:
        if for_report:
            return load_for_report(source, max_pixels=max_pixels)
        rgb = load_image(source, max_pixels=max_pixels)
        return rgb, (rgb.shape[1], rgb.shape[0])

    with concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="sealcheck-decode") as pool:
        golden, unit = pool.map(decode, (golden_source, unit_source))
    return golden, unit


def _round_points(points: np.ndarray) -> list[tuple[float, float]]:
    return [(round(float(x), 2), round(float(y), 2)) for x, y in points]


def _calibration_side(photo: PhotoCalibration, *, applied: bool, note: str | None,
                      spec: Spec) -> CalibrationSide:
    card, correction = photo.card, photo.correction
    if card is None:
        return CalibrationSide(applied=False, chart_found=False, note=note)
    corners = _round_points(card.corners)
    side = dict(
        applied=applied, chart_found=True, note=note, corners=corners,
        confidence=card.confidence, method=card.method, chart=card.chart.name,
        card_corners=corners, card_confidence=card.confidence,
        px_per_mm=(None if spec.chart.width_mm is None
                   else round(card.px_per_mm(spec.chart.width_mm), 4)),
    )
    names = card.chart.patch_names
    if photo.samples is not None:
        side["excluded_patches"] = {names[i]: problem for i, problem
                                    in enumerate(photo.samples.problems) if problem}
    if correction is not None:
        residual = correction.residual_delta_e00
        side.update(
            tone_curve=correction.tone_curve,
            gamma=None if correction.gamma is None else round(correction.gamma, 4),
            model=correction.model,
            residual_delta_e00_mean=round(correction.residual_mean, 4),
            residual_delta_e00_max=round(correction.residual_max, 4),
            residual_delta_e00={n: None if np.isnan(v) else round(float(v), 3)
                                for n, v in zip(names, residual, strict=True)},
            loo_delta_e00_mean=correction.loo_delta_e00_mean,
        )
        if correction.warning and note is None:
            side["note"] = correction.warning
    return CalibrationSide(**side)


def _colour_plan(golden: PhotoCalibration, unit: PhotoCalibration, spec: Spec
                 ) -> tuple[bool, bool, str | None]:
    """(calibrate, colour measurable, note): the calibration policy.

    Calibrated when each photo has a usable card; compared as photographed when neither has a
    card (unless the spec requires one); otherwise the colour cannot be compared fairly, and
    the note names the photo that lacks the card.
    """
    if golden.correction is not None and unit.correction is not None:
        return True, True, None
    problems = []
    for name, photo in (("golden", golden), ("unit", unit)):
        if photo.card is None:
            problems.append(f"no colour card was found in the {name} photo")
        elif photo.correction is None:
            usable = int(photo.samples.usable.sum()) if photo.samples is not None else 0
            problems.append(f"the colour card in the {name} photo has only {usable} usable "
                            "patches (clipped, black or uneven)")
    if golden.card is None and unit.card is None:
        if spec.chart.required:
            return False, False, ("No colour card in either photo, and the spec requires one "
                                  "(chart.required): photograph the card beside the product.")
        return False, True, ("No colour card in either photo: colours are compared as "
                             "photographed, so a change of light or camera shows as drift.")
    return False, False, ("Colour not compared: " + " and ".join(problems) + "; photograph "
                          "both the golden sample and the unit with the card in the frame.")


def _check_rgb(image: np.ndarray, name: str) -> None:
    if not (isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] == 3
            and image.dtype == np.uint8):
        got = getattr(image, "shape", type(image).__name__), getattr(image, "dtype", "")
        raise ValueError(f"{name} must be an (H, W, 3) uint8 RGB array, got {got}; "
                         "decode photos with vision.decode.load_image")


@functools.cache
def _versions() -> dict[str, str]:
    # Cached: reading package metadata scans sys.path (~10 ms), and none of these change.
    from importlib import metadata

    try:
        sealcheck = metadata.version("sealcheck")
    except metadata.PackageNotFoundError:
        sealcheck = "unknown"
    return {
        "sealcheck": sealcheck,
        "schema": SCHEMA_VERSION,
        "opencv": cv2.__version__,
        "numpy": np.__version__,
        "python": sys.version.split()[0],
    }


def register_unit(golden: PreparedGolden, unit: np.ndarray,
                  unit_card: CardDetection | None,
                  unit_fine: tuple[np.ndarray, float] | None = None,
                  unit_photo_size: tuple[int, int] | None = None) -> register.Registration:
    """Register the unit onto the golden with both colour cards kept out of the matching."""
    return register.register(golden.features, unit,
                             unit_ignore=[unit_card.outline()] if unit_card else (),
                             unit_fine=unit_fine, unit_full_size=unit_photo_size)


def prepare_unit(unit: np.ndarray, *, photo_size: tuple[int, int] | None = None
                 ) -> PreparedUnit:
    """Do the unit photo's share of the work that does not need the golden.

    :func:`compare` does this itself when given the array. A caller that has the golden still
    to prepare can run this beside :func:`prepare_golden` (OpenCV releases the GIL; the CLI
    does, on two cores) and pass the result to :func:`compare`. `photo_size` as in
    :func:`prepare_golden`.
    """
    _check_rgb(unit, "unit")
    uw, uh = photo_size or (unit.shape[1], unit.shape[0])
    watch = _Stopwatch()
    with watch.stage("downscale"):
        # One area-filtered copy of the unit for card detection and registration both.
        unit_fine = shrink_to_long_side(unit, register.FINE_SIZE)
    with watch.stage("calibrate"):
        card = find_card(unit_fine[0], full_size=(uw, uh))
        calibration = PhotoCalibration.of(unit, card, scale=unit.shape[1] / uw)
    with watch.stage("register"):
        features = register.prepare_unit_features(
            unit, ignore=[card.outline()] if card else (), fine_copy=unit_fine,
            full_size=(uw, uh))
    return PreparedUnit(unit, (uw, uh), calibration, features, watch.ms)


def compare_side_by_side(golden: np.ndarray, unit: np.ndarray, spec: Spec | None = None, *,
                         golden_photo_size: tuple[int, int] | None = None,
                         unit_photo_size: tuple[int, int] | None = None,
                         render_images: bool = True, calibrate: bool = True,
                         use_defect_model: bool = True) -> Comparison:
    """:func:`compare` of two photos on two threads, for one-off comparisons (the CLI) on
    idle cores; a server busy with many requests gains nothing from it. The same report.

    OpenCV, numpy and onnxruntime release the GIL, so the work overlaps: the golden's
    preparation beside the unit's (card, features), the rest of the golden's (views,
    silhouette) beside registration, and the measurements as ``compare(threads=2)``.
    """
    watch = _Stopwatch()
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="sealcheck-golden") as pool:
        core = pool.submit(_golden_core, golden, photo_size=golden_photo_size)
        prepared_unit = prepare_unit(unit, photo_size=unit_photo_size)
        gw, gh = golden_photo_size or (golden.shape[1], golden.shape[0])
        if prepared_unit.features.shape == (gh, gw):
            # Registration's identity check will need the unit's high-pass image: make it
            # while the golden, the longer of the two, is still being prepared.
            prepared_unit.features.detail  # noqa: B018 - computed for its cache
        core = core.result()
        finished = pool.submit(_finish_golden, core, with_detail=False)
        with watch.stage("register"):
            registration = _register_prepared(core.features, prepared_unit)
        golden = finished.result()
    return _compare_registered(golden, prepared_unit, registration, spec or Spec(), watch,
                               render_images=render_images, calibrate=calibrate,
                               use_defect_model=use_defect_model, threads=2)


def _register_prepared(golden_features: register.GoldenFeatures, unit: PreparedUnit
                       ) -> register.Registration:
    # The unit's features already leave its card out (prepare_unit).
    return register.register(golden_features, unit.image, unit_features=unit.features)


def compare(
    golden: np.ndarray | PreparedGolden,
    unit: np.ndarray | PreparedUnit,
    spec: Spec | None = None,
    *,
    render_images: bool = True,
    calibrate: bool = True,
    golden_photo_size: tuple[int, int] | None = None,
    unit_photo_size: tuple[int, int] | None = None,
    use_defect_model: bool = True,
    threads: int = 1,
) -> Comparison:
    """Compare a unit photo with the golden photo and judge it against the spec.

    Parameters
    ----------
    golden : (H, W, 3) uint8 ndarray or PreparedGolden
        The golden photo (RGB, EXIF-oriented), or its :func:`prepare_golden` result.
    unit : (H, W, 3) uint8 ndarray or PreparedUnit
        The unit photo (RGB, EXIF-oriented), or its :func:`prepare_unit` result (whose
        stage timings are then added to the report's, wherever they ran).
    spec : Spec, optional
        ROI and tolerances; the defaults of :class:`vision.spec.Spec` otherwise.
    render_images : bool, optional
        Also produce the full-resolution aligned unit and the overlay (for files and pages);
        batch scoring that needs only the report can skip them.
    calibrate : bool, optional
        Correct colours with the colour cards when both photos have one (the default policy,
        see :func:`_colour_plan`). False compares colours as photographed, e.g. to see what
        the calibration changed; the cards are still kept out of the comparison.
    golden_photo_size, unit_photo_size : (width, height), optional
        The photos' sizes when the arrays are reduced decodes of them
        (``vision.decode.load_image(reduce=2)`` decodes a JPEG through its DCT in a fraction of
        the time). Every position in the report is then in the photos' own pixels; the
        pictures (defect map, overlay, aligned unit) have the golden array's size.
    use_defect_model : bool, optional
        Let the ONNX defect model (:mod:`vision.defect_model`) find defects alongside the SSIM
        and colour maps (the default). False leaves only the maps, as before the model was
        wired in; the evaluation scripts use it to compare the two.
    threads : {1, 2}, optional
        2 runs the measurements that do not depend on each other at once after registration
        (the defect model in a second thread; SSIM, colour and the colour cue here):
        for a one-off comparison on idle cores (:func:`compare_side_by_side`, the CLI).
        Servers and batch workers keep 1: several comparisons already fill their cores. The
        report is the same either way.
    """
    if threads not in (1, 2):
        raise ValueError(f"threads must be 1 or 2, got {threads!r}")
    watch = _Stopwatch()
    if not isinstance(golden, PreparedGolden):
        with watch.stage("prepare_golden"):
            golden = prepare_golden(golden, photo_size=golden_photo_size)
    if not isinstance(unit, PreparedUnit):
        unit = prepare_unit(unit, photo_size=unit_photo_size)
    with watch.stage("register"):
        registration = _register_prepared(golden.features, unit)
    return _compare_registered(golden, unit, registration, spec or Spec(), watch,
                               render_images=render_images, calibrate=calibrate,
                               use_defect_model=use_defect_model, threads=threads)


def _compare_registered(golden: PreparedGolden, prepared_unit: PreparedUnit,
                        registration: register.Registration, spec: Spec, watch: _Stopwatch,
                        *, render_images: bool, calibrate: bool, use_defect_model: bool,
                        threads: int) -> Comparison:
    """:func:`compare` once the unit is registered (`watch` holds the stages so far)."""
    for stage, ms in prepared_unit.timings_ms.items():
        watch.ms[stage] = round(watch.ms.get(stage, 0.0) + ms, 2)
    unit = prepared_unit.image
    gw, gh = golden.size
    uw, uh = prepared_unit.photo_size
    unit_scale = unit.shape[1] / uw  # unit array pixels per unit photo pixel
    unit_calibration = prepared_unit.calibration

    if calibrate:
        calibrated, colour_measurable, colour_note = _colour_plan(
            golden.calibration, unit_calibration, spec)
    else:
        calibrated, colour_measurable = False, True
        colour_note = "Calibration switched off: colours are compared as photographed."
    calibration = CalibrationReport(
        golden=_calibration_side(golden.calibration, applied=calibrated, note=None, spec=spec),
        unit=_calibration_side(unit_calibration, applied=calibrated, note=None, spec=spec),
    )
    common = dict(
        golden_size=(gw, gh), unit_size=(uw, uh), spec=spec,
        calibration=calibration, versions=dict(_versions()),
    )
    if use_defect_model:
        common["versions"]["model"] = defect_model.model_version()
    registration_report = RegistrationReport(
        ok=registration.ok,
        homography=None if registration.homography is None else registration.homography.tolist(),
        inliers=registration.inliers, rms_px=registration.rms_px, method=registration.method,
        coverage=registration.coverage, reason=registration.reason,
    )
    if not registration.ok:
        return _inconclusive(
            golden, registration_report, common, watch,
            f"The unit could not be registered onto the golden sample: {registration.reason}.",
        )

    s = golden.analysis_scale
    ah, aw = golden.analysis_rgb.shape[:2]
    with watch.stage("warp"):
        # The homography maps unit photo pixels; the array may be a reduced decode.
        from_array = registration.homography @ np.diag([1 / unit_scale, 1 / unit_scale, 1.0])
        aligned_small, valid = _warp_for_analysis(unit, registration.homography, unit_scale, s,
                                                  (ah, aw))
        wanted = (_roi_mask(spec.roi, s, (ah, aw)) if spec.roi is not None
                  else _default_roi(golden, s, (ah, aw)))
        region = valid & wanted
    roi_box = _golden_box(region, s, (gw, gh))
    # With an ROI, or the product found on the golden, the unit photo must show most of it;
    # otherwise the overlap is the region and only has to be big enough to measure.
    coverage = region.sum() / max(1, wanted.sum())
    bounded = spec.roi is not None or golden.product is not None
    needed = _MIN_ROI_COVERAGE if bounded else _MIN_OVERLAP
    if coverage < needed:
        where = ("the region of interest" if spec.roi is not None
                 else "the product" if bounded else "the golden photo")
        return _inconclusive(
            golden, registration_report, common, watch,
            f"The unit photo covers only {coverage:.0%} of {where}; photograph the whole "
            "product.",
        )

    with watch.stage("calibrate"):
        # Colour and structure read calibrated colours when both photos have a fitted card.
        if calibrated:
            golden_views = golden.calibrated
            unit_views = _calibrated_views(aligned_small, unit_calibration.correction)
        else:
            golden_views, unit_views = golden.raw, _raw_views(aligned_small)
    px_per_mm = (golden.card.px_per_mm(spec.chart.width_mm)
                 if golden.card is not None and spec.chart.width_mm else None)
    # Where a defect region can lie: the region's box plus the defect model's context. The
    # model and the colour cue are computed there only.
    defect_box = _region_box(region, _MODEL_MARGIN_PX)
    with _Beside(in_thread=threads == 2) as beside:
        # In the second thread (threads=2), or here and now (1): SSIM, then the defect model
        # (the longest single step); here meanwhile the colour stage and the colour cue, then
        # the maps' evidence, which waits for SSIM only. About as long on each side.
        structure = beside.run(watch, "structure", structural_similarity,
                               golden_views.grey_for_ssim, unit_views.grey_for_ssim,
                               data_range=255, mask=region)
        model_probability = (beside.run(watch, "defect_model", _model_probability,
                                        golden_views, unit_views, region, defect_box)
                             if use_defect_model else None)
        with watch.stage("color"):
            # The headline colours from the photos' own pixels, not the shrunk analysis images.
            photo_means = _photo_colours(
                golden, unit, from_array, region,
                golden.calibration.correction if calibrated else None,
                unit_calibration.correction if calibrated else None)
            color_report, global_offset = _measure_colour(golden_views, unit_views, region, s,
                                                          photo_means)
            color_report.calibrated = calibrated
            color_report.note = colour_note
            if not colour_measurable:
                color_report = _unmeasured_colour(colour_note)
        with watch.stage("defects"):
            local_delta = _local_colour_cue(golden_views, unit_views, global_offset, region,
                                            defect_box)
        ssim_value, ssim_map = structure.result()
        with watch.stage("defects"):
            maps = _map_evidence(ssim_map, local_delta, region)
        if model_probability is not None:
            model_probability = model_probability.result()
    with watch.stage("defects"):
        likelihood, regions = _defect_regions(
            maps, local_delta, spec, s, roi_area=region.sum(),
            px_per_mm=px_per_mm, model_probability=model_probability,
        )
    dimensions = None
    if spec.chart.width_mm and golden.card is not None and unit_calibration.card is not None \
            and roi_box is not None:
        dimensions = _dimensions(roi_box, registration.homography, golden.card,
                                 unit_calibration.card, spec.chart.width_mm)
    structure_report = StructureReport(ssim=round(float(ssim_value), 5), analysis_scale=s)
    defects_report = DefectsReport(
        score=round(defect_model.image_score(likelihood), 4),
        source=_DEFECT_SOURCE if use_defect_model else "ssim+delta_e", regions=regions,
    )
    verdict, score, reasons = _judge(color_report, structure_report, defects_report,
                                     dimensions, spec)

    with watch.stage("render"):
        # The pictures have the golden array's size (the photo's, unless decoded reduced).
        ih, iw = golden.image.shape[:2]
        g = golden.image_scale
        defect_map = cv2.resize((likelihood * 255 + 0.5).astype(np.uint8), (iw, ih),
                                interpolation=cv2.INTER_LINEAR)
        aligned_full = overlay = None
        if render_images:
            to_image = _resized_frame(g) @ registration.homography @ _resized_frame(
                1 / unit_scale)
            aligned_full, _ = register.warp_to_golden(unit, to_image, (ih, iw))
            overlay = render.overlay(golden.image, defect_map, regions, roi_box,
                                     _upsample_mask(region, (iw, ih)), scale=g)
    report = Report(
        verdict=verdict, score=score, reasons=reasons, roi=roi_box,
        registration=registration_report, color=color_report, structure=structure_report,
        defects=defects_report, dimensions=dimensions, timings_ms=watch.ms, **common,
    )
    report.defect_class = unit_defect_class(report)
    return Comparison(report=report, defect_map=defect_map,
                      overlay=overlay if overlay is not None else golden.image.copy(),
                      aligned_unit=aligned_full)


def _unmeasured_colour(note: str | None) -> ColorReport:
    return ColorReport(delta_e00=None, delta_L=None, delta_C=None, delta_H=None,
                       delta_e_cmc=None, golden_lab=None, unit_lab=None, note=note)


def _dimensions(roi_box, H_unit_to_golden: np.ndarray, golden_card: CardDetection,
                unit_card: CardDetection, card_width_mm: float) -> DimensionsReport:
    """The ROI's size on each photo's card plane, in mm: unit against golden.

    The ROI's corners are taken to millimetres through the golden card's homography; the same
    product points, found in the unit photo through the registration, through the unit card's.
    The product is assumed to lie in the card's plane (flat products beside the card).
    """
    x, y, w, h = roi_box
    corners = np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], np.float64)
    in_unit = cv2.perspectiveTransform(corners.reshape(-1, 1, 2),
                                       np.linalg.inv(H_unit_to_golden)).reshape(-1, 2)

    def size_mm(points: np.ndarray, card: CardDetection) -> tuple[float, float, float]:
        mm = cv2.perspectiveTransform(points.reshape(-1, 1, 2),
                                      np.linalg.inv(card.homography)).reshape(-1, 2)
        mm *= card_width_mm / card.chart.size_mm[0]
        width = (np.linalg.norm(mm[1] - mm[0]) + np.linalg.norm(mm[2] - mm[3])) / 2
        height = (np.linalg.norm(mm[3] - mm[0]) + np.linalg.norm(mm[2] - mm[1])) / 2
        area = abs(cv2.contourArea(mm.astype(np.float32)))
        return float(width), float(height), float(area)

    gw_mm, gh_mm, g_area = size_mm(corners, golden_card)
    uw_mm, uh_mm, u_area = size_mm(in_unit, unit_card)
    return DimensionsReport(
        scale_ratio=round(float(np.sqrt(u_area / max(g_area, 1e-9))), 5),
        delta_width_mm=round(uw_mm - gw_mm, 3), delta_height_mm=round(uh_mm - gh_mm, 3),
        golden_width_mm=round(gw_mm, 3), golden_height_mm=round(gh_mm, 3),
        unit_width_mm=round(uw_mm, 3), unit_height_mm=round(uh_mm, 3),
    )


def _inconclusive(golden: PreparedGolden, registration: RegistrationReport, common: dict,
                  watch: _Stopwatch, reason: str) -> Comparison:
    gh, gw = golden.image.shape[:2]
    report = Report(
        verdict="inconclusive", score=0.0, reasons=[reason], roi=None,
        registration=registration,
        color=ColorReport(delta_e00=None, delta_L=None, delta_C=None, delta_H=None,
                          delta_e_cmc=None, golden_lab=None, unit_lab=None),
        structure=StructureReport(ssim=None),
        defects=DefectsReport(score=0.0, source="ssim+delta_e", regions=[]),
        timings_ms=watch.ms, **common,
    )
    return Comparison(report=report, defect_map=np.zeros((gh, gw), np.uint8),
                      overlay=render.dimmed(golden.image), aligned_unit=None)


_MAX_BILINEAR_MINIFICATION = 1.5  # unit pixels per analysis pixel the warp takes unfiltered


def _resized_frame(scale: float) -> np.ndarray:
    """Homography from an image's pixels to those of a copy resized by `scale`, pixel centres
    kept: x -> scale * (x + 0.5) - 0.5 (OpenCV's resize and a JPEG's reduced decode both
    place them so). A plain diag(scale) would put the copy off by (1 - scale) / 2 of its
    pixels: a quarter of an analysis pixel between a 2016 px decode and its 1008 px analysis
    copy, which a comparison of two identical photos read as SSIM 0.9966 instead of 0.9982.
    """
    offset = 0.5 * scale - 0.5
    return np.array([[scale, 0.0, offset], [0.0, scale, offset], [0.0, 0.0, 1.0]])


def _warp_for_analysis(unit: np.ndarray, H: np.ndarray, unit_scale: float, s: float,
                       shape: tuple[int, int]):
    """Resample the unit straight into the golden's analysis frame.

    `H` maps unit photo pixels to golden photo pixels; `unit` is the photo or a reduced decode
    of it (`unit_scale` array pixels per photo pixel); the analysis frame has `s` pixels per
    golden photo pixel.

    A warp that minifies by more than _MAX_BILINEAR_MINIFICATION would alias, so the unit is
    low-passed first. The filter is a Gaussian with the variance of what was used before: an
    area shrink to 1.5 unit pixels per analysis pixel (a box of r = minification / 1.5 unit
    pixels, variance r^2 / 12), then the bilinear warp from that copy (r^2 / 6); the bilinear
    warp from the unit itself adds 1 / 6. OpenCV's area filter at such fractional factors
    cost 10 ms on a 2016 x 1512 unit; the Gaussian costs 2 ms, and the warp reads the unit
    at its own size for about the same cost as from the shrunk copy.
    """
    H_analysis = _resized_frame(s) @ H @ _resized_frame(1 / unit_scale)
    zoom = float(np.sqrt(abs(np.linalg.det(H_analysis[:2, :2]))))  # analysis px per unit px
    box = 1.0 / (_MAX_BILINEAR_MINIFICATION * max(zoom, 1e-9))  # r, in unit pixels
    if box > 1.0:
        unit = cv2.GaussianBlur(unit, (0, 0), float(np.sqrt(box * box / 4.0 - 1.0 / 6.0)))
    aligned, valid = register.warp_to_golden(unit, H_analysis, shape)
    valid = cv2.erode(valid.astype(np.uint8), np.ones((3, 3), np.uint8),
                      iterations=_EDGE_ERODE_PX) > 0
    return aligned, valid


def _default_roi(golden: PreparedGolden, s: float, shape: tuple[int, int]) -> np.ndarray:
    """Without a spec ROI: the product on the golden photo (its convex outline), minus the card.

    The table under the product is not the product: its texture and the card's place change
    between photo sessions, and comparing them made every hand-held photo fail. No margin
    around the outline: a 1% margin of table already produced a false colour region on a
    bench pair (the table's calibrated colour drifts unlike the product's).
    When no product stands out from a table (a close-up, a flat scan), the whole overlap.

    The outline is shrunk by 2 px: the silhouette is found at half this resolution, so its
    edge may lie a pixel of it (2 px here) out on the table, and on a dark product a rim of
    bright table carries the mean colour (a mean of light): a 3 px rim of table around a
    synthetic Hubble deep field print (golden L* 12.4) read L* 16.9 and a Delta-E00 drift of
    2.04 against a true 2.62; shrunk, 13.4 and 2.58.
    """
    mask = np.ones(shape, bool)
    if golden.product is not None:
        product = cv2.resize(golden.product.astype(np.uint8), shape[::-1],
                             interpolation=cv2.INTER_NEAREST)
        mask = cv2.erode(product, np.ones((5, 5), np.uint8)) > 0
    if golden.card is not None:
        mask &= ~golden.card.mask(shape, scale=s)
    return mask


def _roi_mask(roi, s: float, shape: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(shape, bool)
    x, y, w, h = roi
    x0, y0 = max(0, int(round(x * s))), max(0, int(round(y * s)))
    x1, y1 = int(round((x + w) * s)), int(round((y + h) * s))
    mask[y0:y1, x0:x1] = True
    return mask


def _golden_box(region: np.ndarray, s: float, size: tuple[int, int]):
    ys, xs = np.nonzero(region)
    if len(xs) == 0:
        return None
    gw, gh = size
    x0, y0 = int(xs.min() / s), int(ys.min() / s)
    x1, y1 = min(gw, int(np.ceil((xs.max() + 1) / s))), min(gh, int(np.ceil((ys.max() + 1) / s)))
    return (x0, y0, x1 - x0, y1 - y0)


def _upsample_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0


def _measure_colour(golden: AnalysisViews, unit: AnalysisViews, region: np.ndarray, s: float,
                    photo_means: tuple[np.ndarray, np.ndarray] | None):
    """Headline colour difference and per-tile map; also the global Lab offset (unit - golden).

    The headline colours are `photo_means` (:func:`_photo_colours`) when there are any, else
    the analysis images' means. The tiles and the offset the defect stage discounts come from
    the analysis images, the same images as that stage's maps.
    """
    mask = region.astype(np.uint8)
    # cv2.mean accumulates in float64, like ndarray.mean(dtype=float64), without the copy.
    golden_rgb = np.array(cv2.mean(golden.linear, mask)[:3])
    unit_rgb = np.array(cv2.mean(unit.linear, mask)[:3])
    offset = color.linear_rgb_to_lab(unit_rgb) - color.linear_rgb_to_lab(golden_rgb)
    if photo_means is not None:
        golden_rgb, unit_rgb = photo_means
    golden_lab = color.linear_rgb_to_lab(golden_rgb)
    unit_lab = color.linear_rgb_to_lab(unit_rgb)
    delta_L, delta_C, delta_H = color.delta_lch(golden_lab, unit_lab)
    tiles = _colour_tiles(golden.linear, unit.linear, region, s)
    report = ColorReport(
        delta_e00=round(float(color.ciede2000(golden_lab, unit_lab)), 4),
        delta_L=round(float(delta_L), 4), delta_C=round(float(delta_C), 4),
        delta_H=round(float(delta_H), 4),
        delta_e_cmc=round(float(color.delta_e_cmc(golden_lab, unit_lab, l=2, c=1)), 4),
        golden_lab=tuple(round(float(v), 4) for v in golden_lab),
        unit_lab=tuple(round(float(v), 4) for v in unit_lab),
        tiles=tiles,
    )
    return report, offset


def _photo_colours(golden: PreparedGolden, unit: np.ndarray, unit_to_golden: np.ndarray,
                   region: np.ndarray, golden_correction: ColourCorrection | None,
                   unit_correction: ColourCorrection | None
                   ) -> tuple[np.ndarray, np.ndarray] | None:
    """Mean linear RGB of the compared region in each photo's own pixels (None: no pixel).

    Why not the analysis images' means: those were shrunk and warped from the photos by
    averaging 8-bit code values, and the mean of codes decodes darker than the mean of the
    light (the tone curve is convex). On a high-contrast product (stars on black, fine print)
    the ROI colour came out up to 0.9 L* dark that way (a synthetic Hubble deep field, 2016 px
    photo shrunk to 1008: L* 11.5 against 12.4 from the photo's pixels; truth 12.4). Here each
    pixel is decoded and corrected on its own, then averaged. The photos are sampled on a
    stride that picks pixels (it does not average them), so the cost is that of the analysis
    size.

    The region is a piece of the product's surface, as the golden frame shows it. A unit
    photographed at a slant shows the near part of it with more pixels than the far part, so
    each unit pixel is weighted by the surface it covers: the area scale of the homography
    there, |det H| / w^3 with w the homography's third coordinate. (Unweighted, a unit tilted
    by 23 degrees came out 1.3 L* bright on a product darker at its far end.)

    `unit_to_golden` maps unit array pixels to golden photo pixels; `region` is in the
    analysis frame (golden analysis_scale).
    """
    s = golden.analysis_scale
    golden_step = _sample_step(golden.image.shape, region.shape)
    golden_grid = golden.image[::golden_step, ::golden_step]
    golden_inside = _upsample_mask(region, golden_grid.shape[1::-1])
    unit_step = _sample_step(unit.shape, region.shape)
    unit_grid = unit[::unit_step, ::unit_step]
    # Unit grid pixel -> analysis pixel; the region is read through it (an inverse map).
    H = np.diag([s, s, 1.0]) @ unit_to_golden @ np.diag([unit_step, unit_step, 1.0])
    inside = cv2.warpPerspective(region.astype(np.uint8), H, unit_grid.shape[1::-1],
                                 flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP)
    if not inside.any() or not golden_inside.any():
        return None
    # Only the region's bounding boxes are decoded and corrected (the region is the product).
    x, y, bw, bh = cv2.boundingRect(inside)
    ys, xs = np.mgrid[y:y + bh, x:x + bw].astype(np.float32)
    w = H[2, 0] * xs + H[2, 1] * ys + H[2, 2]
    # |det H| is the same for every pixel: left out.
    unit_weight = (inside[y:y + bh, x:x + bw] * np.abs(w) ** -3.0).astype(np.float32)
    unit_part = unit_grid[y:y + bh, x:x + bw]
    x, y, bw, bh = cv2.boundingRect(golden_inside.astype(np.uint8))
    golden_weight = golden_inside[y:y + bh, x:x + bw].astype(np.float32)
    return (_weighted_mean_linear(golden_grid[y:y + bh, x:x + bw], golden_weight,
                                  golden_correction),
            _weighted_mean_linear(unit_part, unit_weight, unit_correction))


def _weighted_mean_linear(rgb8: np.ndarray, weight: np.ndarray,
                          correction: ColourCorrection | None) -> np.ndarray:
    """Weighted mean of `rgb8` decoded to linear RGB (calibrated by `correction`, else sRGB)."""
    rgb8 = np.ascontiguousarray(rgb8)
    linear = color.srgb8_to_linear(rgb8) if correction is None else correction.apply(rgb8)
    weighted = cv2.multiply(linear, cv2.merge([weight] * 3))
    return np.array(cv2.sumElems(weighted)[:3]) / float(weight.sum(dtype=np.float64))


def _sample_step(image_shape: tuple[int, ...], analysis_shape: tuple[int, ...]) -> int:
    """Stride that samples a photo at about the analysis resolution (>= 1)."""
    return max(1, int(image_shape[0] / max(analysis_shape[0], 1)))


def _colour_tiles(golden_linear: np.ndarray, unit_linear: np.ndarray, region: np.ndarray,
                  s: float) -> ColorTiles:
    t = _TILE_ANALYSIS_PX
    h, w = region.shape
    rows, cols = h // t, w // t
    oy, ox = (h - rows * t) // 2, (w - cols * t) // 2
    crop = (slice(oy, oy + rows * t), slice(ox, ox + cols * t))
    if rows == 0 or cols == 0:  # a frame narrower than one tile: no tile to report
        return ColorTiles(tile_px=int(round(t / s)), origin=(int(round(ox / s)),
                                                             int(round(oy / s))),
                          delta_e00=[[] for _ in range(rows)])
    weight = region[crop].astype(np.float32)
    weight3 = cv2.merge([weight] * 3)
    # An area resize by the whole factor t is the exact mean of each t x t tile (float32
    # sums of 4096 values: relative error ~1e-6, far below the 0.001 the report rounds to).
    fraction = cv2.resize(weight, (cols, rows), interpolation=cv2.INTER_AREA)
    counts = fraction.astype(np.float64) * (t * t)

    def tile_means(linear: np.ndarray) -> np.ndarray:
        masked = cv2.multiply(linear[crop], weight3)
        means = cv2.resize(masked, (cols, rows), interpolation=cv2.INTER_AREA)
        return means.reshape(rows, cols, 3).astype(np.float64) / np.maximum(
            fraction, 1.0 / (t * t))[..., None]

    delta = color.ciede2000(color.linear_rgb_to_lab(tile_means(golden_linear)),
                            color.linear_rgb_to_lab(tile_means(unit_linear)))
    usable = counts >= 0.5 * t * t
    values = [[round(float(delta[r, c]), 3) if usable[r, c] else None for c in range(cols)]
              for r in range(rows)]
    return ColorTiles(tile_px=int(round(t / s)), origin=(int(round(ox / s)), int(round(oy / s))),
                      delta_e00=values)


def _region_box(region: np.ndarray, margin: int) -> tuple[slice, slice] | None:
    """The region's bounding box grown by `margin` pixels (within the frame); None if empty."""
    ys, xs = np.nonzero(region.any(axis=1))[0], np.nonzero(region.any(axis=0))[0]
    if len(ys) == 0:
        return None
    ah, aw = region.shape
    return (slice(max(0, ys[0] - margin), min(ah, ys[-1] + 1 + margin)),
            slice(max(0, xs[0] - margin), min(aw, xs[-1] + 1 + margin)))


def _model_probability(golden: AnalysisViews, unit: AnalysisViews, region: np.ndarray,
                       box: tuple[slice, slice] | None) -> np.ndarray:
    """The defect model's probability map over the compared region (0 elsewhere).

    The model reads `box` only (``_region_box(region, _MODEL_MARGIN_PX)``: the region's box and
    a margin of context); outside the region the unit is replaced by the golden
    (:func:`vision.defect_model.predict_defect_map`), so the table beside a product or a card
    cut by the frame cannot raise it.
    """
    probability = np.zeros(region.shape, np.float32)
    if box is None or min(box[0].stop - box[0].start, box[1].stop - box[1].start) < 16:
        return probability  # nothing to compare, or less than the model's smallest input
    probability[box] = defect_model.predict_defect_map(
        golden.rgb8[box], color.linear_to_srgb8(unit.linear[box]), valid=region[box])
    return probability


def _local_colour_cue(golden: AnalysisViews, unit: AnalysisViews, global_offset: np.ndarray,
                      region: np.ndarray, box: tuple[slice, slice] | None) -> np.ndarray:
    """The defect stage's colour cue: local CIEDE2000 between the blurred Lab maps, in units
    of _LOCAL_DELTA_E, at analysis resolution.

    The global colour offset is removed first: a uniform drift is the colour stage's finding,
    not a defect. The cue, smooth at its scale, is computed at half resolution (the per-pixel
    CIEDE2000 is the costliest step) and interpolated back. Only over `box` (0 elsewhere):
    the defect model's box, where any defect region can lie.
    """
    cue = np.zeros(region.shape, np.float32)
    if box is None:
        return cue
    ah, aw = region.shape
    if ah % 2 or aw % 2:  # not an exact 2x enlargement: the whole map
        half, full, size = (slice(None), slice(None)), (slice(None), slice(None)), (aw, ah)
    else:
        # A half-resolution crop enlarges to the same values as the whole map where the cubic
        # kernel (2 half pixels each way) stays inside the crop: pad it by 2.
        (y, x), pad = box, 2
        y0, y1 = max(0, y.start // 2 - pad), min(ah // 2, -(-y.stop // 2) + pad)
        x0, x1 = max(0, x.start // 2 - pad), min(aw // 2, -(-x.stop // 2) + pad)
        half = (slice(y0, y1), slice(x0, x1))
        full = (slice(2 * y0, 2 * y1), slice(2 * x0, 2 * x1))
        size = (2 * (x1 - x0), 2 * (y1 - y0))
    golden_lab, unit_lab = golden.lab_smooth, unit.lab_smooth
    # float32 throughout (the Lab maps are): the per-pixel CIEDE2000 then runs ~3x faster.
    offset = np.asarray(global_offset, unit_lab.dtype)
    delta_half = color.ciede2000(golden_lab[half], unit_lab[half] - offset)
    # Cubic: bilinear would flatten the peaks of narrow defects (by up to ~10 % on scratches).
    cue[full] = cv2.resize((delta_half / _LOCAL_DELTA_E).astype(np.float32), size,
                           interpolation=cv2.INTER_CUBIC)
    return cue


@dataclasses.dataclass(frozen=True)
class _MapEvidence:
    """What the SSIM map and the colour cue say, before the defect model joins them."""

    structural: np.ndarray  # SSIM drop, smoothed, in units of _SSIM_DROP
    likelihood: np.ndarray  # the maps' defect likelihood, 0.5 at the threshold
    seeds: np.ndarray  # uint8: where a region may start ...
    grown: np.ndarray  # ... and where it may extend (see _defect_regions)


def _map_evidence(ssim_map: np.ndarray, local_delta: np.ndarray, region: np.ndarray
                  ) -> _MapEvidence:
    """The maps' share of :func:`_defect_regions`, which needs nothing of the defect model's
    (so it can run while the model does). Both cues are smoothed so that isolated noisy
    pixels do not count."""
    structural = np.clip(1.0 - cv2.GaussianBlur(ssim_map, (0, 0), 2.0), 0.0, 2.0) / _SSIM_DROP
    # Both cues see ~3 sigma beyond a pixel; near the region's edge they see what lies outside
    # it (the table beside the product), so evidence counts only that far inside.
    inner = cv2.erode(region.astype(np.uint8), np.ones((2 * _EDGE_MARGIN_PX + 1,) * 2, np.uint8))
    evidence = np.where(inner > 0, np.maximum(structural, local_delta), 0.0)
    likelihood = np.clip(evidence / 2.0, 0.0, 1.0).astype(np.float32)  # 0.5 at the threshold

    # Hysteresis, as in Canny's edge detector: a region needs a core above the threshold
    # (0.5), and then extends over the connected evidence above _GROW_LIKELIHOOD, so a stain
    # whose core alone is small is measured at its real size.
    kernel = np.ones((3, 3), np.uint8)
    seeds = cv2.morphologyEx((likelihood >= 0.5).astype(np.uint8), cv2.MORPH_OPEN, kernel)
    grown = cv2.morphologyEx((likelihood >= _GROW_LIKELIHOOD).astype(np.uint8), cv2.MORPH_OPEN,
                             kernel)
    return _MapEvidence(structural, likelihood, seeds, grown)


def _defect_regions(maps: _MapEvidence, local_delta: np.ndarray, spec: Spec, s: float,
                    roi_area: int, px_per_mm: float | None,
                    model_probability: np.ndarray | None = None):
    """Defect regions from the maps' evidence (:func:`_map_evidence` of the SSIM map and the
    local colour cue, :func:`_local_colour_cue`) and the defect model.

    `model_probability` (the ONNX model's map, :func:`_model_probability`) joins them: the
    likelihood is the larger of the maps' and the model's, and a region is seeded by either
    (the maps at 0.5 after an opening, the model at its own threshold, 0.5, without one: its
    map already ignores noise, and an opening would erase a 2 px scratch).
    """
    structural, seeds, grown = maps.structural, maps.seeds, maps.grown
    likelihood = maps_likelihood = maps.likelihood
    if model_probability is not None:
        seeds = seeds | (model_probability >= defect_model.DEFAULT_THRESHOLD).astype(np.uint8)
        grown = grown | (model_probability >= _MODEL_GROW).astype(np.uint8)
        likelihood = np.maximum(likelihood, model_probability)
    candidates = hysteresis(seeds, grown)
    regions: list[DefectRegion] = []
    # Pieces a few px apart are one defect (a scratch seen as dashes), as in the model's
    # find_regions; the gap is in analysis pixels.
    for (x, y, w, h), pixels, area in joined_regions(candidates, defect_model.JOIN_GAP_PX):
        area_golden = int(round(area / (s * s)))
        if area_golden < spec.tolerances.min_defect_area_px:
            continue
        peak = float(likelihood[y:y + h, x:x + w][pixels].max())
        colour_led = float(local_delta[y:y + h, x:x + w][pixels].max()) > float(
            structural[y:y + h, x:x + w][pixels].max())
        model_led = model_probability is not None and float(
            model_probability[y:y + h, x:x + w][pixels].max()) > float(
            maps_likelihood[y:y + h, x:x + w][pixels].max())
        fraction = area / max(1, roi_area)
        severity = "critical" if fraction > 0.01 else "major" if fraction > 0.001 else "minor"
        regions.append(DefectRegion(
            bbox=(int(x / s), int(y / s), int(np.ceil(w / s)), int(np.ceil(h / s))),
            area_px=area_golden, score=round(peak, 4), severity=severity,
            area_mm2=None if px_per_mm is None else round(area_golden / px_per_mm**2, 2),
            kind="model" if model_led else "colour" if colour_led else "structure",
        ))
    regions.sort(key=lambda r: (-r.area_px, -r.score))
    return likelihood, regions


def _colour_words(report: ColorReport) -> str:
    """'darker (dL* -2.9) and less saturated (dC* -1.2)': the components that matter, in words."""
    parts = []
    components = [
        (report.delta_L, "dL*", "lighter", "darker"),
        (report.delta_C, "dC*", "more saturated", "less saturated"),
    ]
    largest = max(abs(report.delta_L), abs(report.delta_C), abs(report.delta_H))
    for value, symbol, up, down in components:
        if abs(value) >= 0.5 * largest:
            parts.append(f"{up if value > 0 else down} ({symbol} {value:+.1f})")
    if abs(report.delta_H) >= 0.5 * largest:
        parts.append(f"shifted in hue (dH* {report.delta_H:+.1f})")
    return " and ".join(parts)


def _judge(colour: ColorReport, structure: StructureReport, defects: DefectsReport,
           dimensions: DimensionsReport | None, spec: Spec):
    """Verdict, score and reasons. The score's definition lives in the Report schema.

    A part that could not be measured (colour without a card in one photo, dimensions without
    cards) makes the verdict inconclusive unless another part already fails.
    """
    tol = spec.tolerances
    ratios = {
        "structure": (1.0 - structure.ssim) / max(1e-6, 1.0 - tol.ssim_min),
        "defects": len(defects.regions) / max(tol.max_defects, 0.5),
    }
    failures, passes, unmeasured = [], [], []
    calibrated = " (calibrated with the colour card)" if colour.calibrated else ""
    if colour.delta_e00 is None:
        unmeasured.append(colour.note or "Colour could not be measured.")
    else:
        ratios["colour"] = colour.delta_e00 / tol.delta_e00
        if ratios["colour"] > 1:
            failures.append(f"Colour drift Delta-E00 {colour.delta_e00:.1f} exceeds "
                            f"{tol.delta_e00:.1f}{calibrated}: the unit is "
                            f"{_colour_words(colour)}.")
        else:
            passes.append(f"Colour within tolerance{calibrated}: Delta-E00 "
                          f"{colour.delta_e00:.1f} <= {tol.delta_e00:.1f}.")
        if colour.note:
            passes.append(colour.note)
    if tol.dimension_mm is not None:
        if dimensions is None:
            unmeasured.append("Dimensions could not be measured: the spec sets "
                              "tolerances.dimension_mm, which needs the colour card in both "
                              "photos.")
        else:
            change = max(abs(dimensions.delta_width_mm), abs(dimensions.delta_height_mm))
            ratios["dimensions"] = change / tol.dimension_mm
            words = (f"width {dimensions.delta_width_mm:+.1f} mm, height "
                     f"{dimensions.delta_height_mm:+.1f} mm (scale {dimensions.scale_ratio:.3f})")
            if change > tol.dimension_mm:
                failures.append(f"Size differs by more than {tol.dimension_mm:g} mm: {words}.")
            else:
                passes.append(f"Size within {tol.dimension_mm:g} mm: {words}.")
    if ratios["structure"] > 1:
        failures.append(f"Structure differs: SSIM {structure.ssim:.2f} is below the floor "
                        f"{tol.ssim_min:.2f}.")
    else:
        passes.append(f"Structure matches: SSIM {structure.ssim:.2f} >= {tol.ssim_min:.2f}.")
    n = len(defects.regions)
    if n > tol.max_defects:
        biggest = defects.regions[0]
        x, y, w, h = biggest.bbox
        failures.append(
            f"{n} defect region{'s' if n != 1 else ''} found where {tol.max_defects} "
            f"{'is' if tol.max_defects == 1 else 'are'} allowed; the largest "
            f"({biggest.severity}, {biggest.kind}, {biggest.area_px} px) is at x={x}, y={y}, "
            f"{w}x{h} px."
        )
    elif n:
        passes.append(f"{n} small defect region(s), within the {tol.max_defects} allowed.")
    else:
        passes.append("No defect regions found.")
    if failures:
        verdict = "fail"
    elif unmeasured:
        return "inconclusive", 0.0, unmeasured + passes
    else:
        verdict = "pass"
    score = round(100.0 * max(0.0, 1.0 - max(ratios.values()) / 2.0), 2)
    return verdict, score, failures + unmeasured + passes
