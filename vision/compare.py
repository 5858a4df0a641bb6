"""The comparison: golden + unit photos + spec -> report and pictures.

The stages, each its own module, run one way::

    load (vision.load) -> prepare each photo: colour card and fit (vision.calibrate),
    features (vision.register) -> register the unit onto the golden -> analysis frame and
    compared region (vision.frame) -> views (vision.views) -> measure colour, structure,
    defects, dimensions (vision.measure) -> judge (vision.judge) -> report and pictures
    (vision.report, vision.render)

This module only orchestrates them. Timing and the second thread of a one-off comparison
wrap the stages from outside (:class:`vision.runner.StageRunner`). Decoding belongs to the
caller (:mod:`vision.load`), so the comparison works on arrays from any source.
"""

from __future__ import annotations

import dataclasses
import functools
import sys

import cv2
import numpy as np

from calibration.detect import CardDetection
from vision import defect_model, register, render
from vision.calibrate import ColourPlan, calibration_report, colour_plan
from vision.frame import AnalysisFrame, analysis_frame, region_box
from vision.judge import judge
from vision.measure.colour import colour_stage, unmeasured_colour
from vision.measure.defects import (
    DEFECT_SOURCE,
    MODEL_MARGIN_PX,
    defect_regions,
    local_colour_cue,
    map_evidence,
    model_probability,
)
from vision.measure.dimensions import dimensions
from vision.measure.highlights import added_light, clipped_highlights
from vision.measure.structure import structural_similarity
from vision.prepare import (
    PreparedGolden,
    PreparedUnit,
    finish_golden,
    golden_core,
    prepare_golden,
    prepare_unit,
)
from vision.report import (
    SCHEMA_VERSION,
    ColorReport,
    DefectsReport,
    RegistrationReport,
    Report,
    StructureReport,
)
from vision.runner import StageRunner
from vision.severity import unit_defect_class
from vision.spec import Spec
from vision.views import AnalysisViews, calibrated_views, raw_views

__all__ = ["Comparison", "compare", "compare_side_by_side", "register_unit"]


@dataclasses.dataclass
class Comparison:
    """The report plus the pictures a person looks at."""

    report: Report
    # The pictures have the golden array's size: the photo's, unless it was decoded reduced.
    defect_map: np.ndarray  # uint8, 0-255 defect likelihood
    overlay: np.ndarray  # RGB uint8: the golden with what changed marked on it
    aligned_unit: np.ndarray | None  # RGB uint8; None when not registered
    # What any picture of this comparison is drawn from (vision.render.draw_pictures), at
    # the photo's size or the analysis size (the service's stored pictures).
    sources: render.PictureSources


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
        The golden photo (RGB, EXIF-oriented), or its :func:`vision.prepare.prepare_golden`
        result.
    unit : (H, W, 3) uint8 ndarray or PreparedUnit
        The unit photo (RGB, EXIF-oriented), or its :func:`vision.prepare.prepare_unit` result
        (whose stage timings are then added to the report's, wherever they ran).
    spec : Spec, optional
        ROI and tolerances; the defaults of :class:`vision.spec.Spec` otherwise.
    render_images : bool, optional
        Also produce the full-resolution aligned unit and the overlay (for files and pages);
        batch scoring that needs only the report can skip them.
    calibrate : bool, optional
        Correct colours with the colour cards when both photos have one (the default policy,
        see :func:`vision.calibrate.colour_plan`). False compares colours as photographed,
        e.g. to see what the calibration changed; the cards are still kept out of the
        comparison.
    golden_photo_size, unit_photo_size : (width, height), optional
        The photos' sizes when the arrays are reduced decodes of them
        (``vision.decode.load_image(reduce=2)`` decodes a JPEG through its DCT in a fraction of
        the time). Every position in the report is then in the photos' own pixels; the
        pictures (defect map, overlay, aligned unit) have the golden array's size.
    use_defect_model : bool, optional
        Let the ONNX defect model (:mod:`vision.defect_model`) find defects alongside the SSIM
        and colour maps (the default). False leaves only the maps; the evaluation scripts use
        it to compare the two.
    threads : {1, 2}, optional
        2 runs the measurements that do not depend on each other at once after registration
        (the defect model in a second thread; SSIM, colour and the colour cue here):
        for a one-off comparison on idle cores (:func:`compare_side_by_side`, the CLI).
        Servers and batch workers keep 1: several comparisons already fill their cores. The
        report is the same either way.
    """
    with StageRunner(threads) as runner:
        if not isinstance(golden, PreparedGolden):
            golden = runner.run("prepare_golden", prepare_golden, golden,
                                photo_size=golden_photo_size)
        if not isinstance(unit, PreparedUnit):
            unit = prepare_unit(unit, photo_size=unit_photo_size)
        registration = runner.run("register", _register_prepared, golden.features, unit)
        return _measure_and_judge(runner, golden, unit, registration, spec or Spec(),
                                  render_images=render_images, calibrate=calibrate,
                                  use_defect_model=use_defect_model)


def compare_side_by_side(golden: np.ndarray, unit: np.ndarray, spec: Spec | None = None, *,
                         golden_photo_size: tuple[int, int] | None = None,
                         unit_photo_size: tuple[int, int] | None = None,
                         render_images: bool = True, calibrate: bool = True,
                         use_defect_model: bool = True) -> Comparison:
    """:func:`compare` of two photos on two threads, for one-off comparisons (the CLI) on
    idle cores; a server busy with many requests gains nothing from it. The same report.

    The golden's preparation runs beside the unit's (card, features), the rest of the
    golden's (views, silhouette) beside registration, and the measurements as
    ``compare(threads=2)``.
    """
    with StageRunner(threads=2) as runner:
        core = runner.beside("prepare_golden", golden_core, golden, photo_size=golden_photo_size)
        prepared_unit = prepare_unit(unit, photo_size=unit_photo_size)
        gw, gh = golden_photo_size or (golden.shape[1], golden.shape[0])
        if prepared_unit.features.shape == (gh, gw):
            # Registration's identity check will need the unit's high-pass image: make it
            # while the golden, the longer of the two, is still being prepared.
            prepared_unit.features.detail  # noqa: B018 - computed for its cache
        core = core.result()
        finished = runner.beside("prepare_golden", finish_golden, core, with_detail=False)
        registration = runner.run("register", _register_prepared, core.features, prepared_unit)
        return _measure_and_judge(runner, finished.result(), prepared_unit, registration,
                                  spec or Spec(), render_images=render_images,
                                  calibrate=calibrate, use_defect_model=use_defect_model)


def register_unit(golden: PreparedGolden, unit: np.ndarray,
                  unit_card: CardDetection | None,
                  unit_fine: tuple[np.ndarray, float] | None = None,
                  unit_photo_size: tuple[int, int] | None = None) -> register.Registration:
    """Register the unit onto the golden with both colour cards kept out of the matching."""
    return register.register(golden.features, unit,
                             unit_ignore=[unit_card.outline()] if unit_card else (),
                             unit_fine=unit_fine, unit_full_size=unit_photo_size)


def _register_prepared(golden_features: register.GoldenFeatures, unit: PreparedUnit
                       ) -> register.Registration:
    # The unit's features already leave its card out (prepare_unit).
    return register.register(golden_features, unit.image, unit_features=unit.features)


def _measure_and_judge(runner: StageRunner, golden: PreparedGolden, unit: PreparedUnit,
                       registration: register.Registration, spec: Spec, *,
                       render_images: bool, calibrate: bool, use_defect_model: bool
                       ) -> Comparison:
    """Everything after registration: frame, views, measurements, verdict, pictures."""
    for stage, ms in unit.timings_ms.items():
        runner.add(stage, ms)
    plan = colour_plan(golden.calibration, unit.calibration, spec, calibrate=calibrate)
    header = dict(
        golden_size=golden.size, unit_size=unit.photo_size, spec=spec,
        calibration=calibration_report(golden.calibration, unit.calibration, plan, spec),
        versions=_versions(with_model=use_defect_model),
        registration=RegistrationReport(
            ok=registration.ok,
            homography=(None if registration.homography is None
                        else registration.homography.tolist()),
            inliers=registration.inliers, rms_px=registration.rms_px,
            method=registration.method, coverage=registration.coverage,
            reason=registration.reason,
        ),
    )
    if not registration.ok:
        return _inconclusive(_picture_sources(golden, unit, registration), header, runner,
                             "The unit could not be registered onto the golden sample: "
                             f"{registration.reason}.", render_images=render_images)
    frame = runner.run("warp", analysis_frame, golden, unit, registration.homography, spec)
    if frame.problem is not None:
        return _inconclusive(_picture_sources(golden, unit, registration), header, runner,
                             frame.problem, render_images=render_images)
    measured = _measure(runner, golden, unit, frame, plan, spec,
                        use_defect_model=use_defect_model)
    measured_dimensions = _dimensions(golden, unit, frame, registration, spec)
    verdict, score, reasons = judge(measured.colour, measured.structure, measured.defects,
                                    measured_dimensions, spec, colour_applies=not plan.greyscale)
    sources = dataclasses.replace(_picture_sources(golden, unit, registration),
                                  likelihood=measured.likelihood, region=frame.region)
    with runner.timed("render"):
        pictures = render.draw_pictures(sources, measured.defects.regions, frame.roi_box,
                                        at="photo", with_overlay=render_images,
                                        with_aligned=render_images)
    report = Report(
        verdict=verdict, score=score, reasons=reasons, roi=frame.roi_box,
        roi_source=frame.roi_source, color=measured.colour, structure=measured.structure,
        defects=measured.defects,
        dimensions=measured_dimensions, timings_ms=runner.timings_ms, **header,
    )
    report.defect_class = unit_defect_class(report)
    return Comparison(report=report, defect_map=pictures.defect_map,
                      overlay=(pictures.overlay if pictures.overlay is not None
                               else golden.image.copy()),
                      aligned_unit=pictures.aligned_unit, sources=sources)


@dataclasses.dataclass(frozen=True)
class _Measurements:
    colour: ColorReport
    structure: StructureReport
    defects: DefectsReport
    likelihood: np.ndarray  # defect likelihood 0-1, analysis frame (the pictures' heat)


def _measure(runner: StageRunner, golden: PreparedGolden, unit: PreparedUnit,
             frame: AnalysisFrame, plan: ColourPlan, spec: Spec, *, use_defect_model: bool
             ) -> _Measurements:
    """Colour, structure and defects in the analysis frame."""
    # Colour and structure read calibrated colours when both photos have a fitted card.
    golden_views, unit_views = runner.run("calibrate", _views, golden, unit, frame, plan)
    s = golden.analysis_scale
    # Where a defect region can lie: the region's box plus the defect model's context. The
    # model and the colour cue are computed there only.
    defect_box = region_box(frame.region, MODEL_MARGIN_PX)
    # Beside (threads=2), or here and now: SSIM, then the defect model (the longest single
    # step); here meanwhile the colour stage and the colour cue, then the maps' evidence,
    # which waits for SSIM only. About as long on each side.
    structure = runner.beside("structure", structural_similarity, golden_views.grey_for_ssim,
                              unit_views.grey_for_ssim, data_range=255, mask=frame.region)
    probability = (runner.beside("defect_model", model_probability, golden_views, unit_views,
                                 frame.region, defect_box) if use_defect_model else None)
    # Clipped white in either photo as photographed: the lamp, not the product's colour.
    highlights = clipped_highlights(golden.analysis_rgb, frame.aligned)
    # And the light one photo adds that is not clipped (a reflection, a highlight that moved):
    # taken off the unit before the colour cue reads it.
    light = runner.run("defects", added_light, golden_views.linear_smooth,
                       unit_views.linear_smooth, frame.region)
    colour, global_offset = runner.run(
        "color", colour_stage, golden.image, s, golden.calibration, unit.image,
        unit.calibration, frame, golden_views, unit_views, plan, highlights=highlights,
        light=light)
    cue = runner.run("defects", local_colour_cue, golden_views, unit_views, global_offset,
                     frame.region, defect_box, highlights=highlights, light=light)
    ssim_value, ssim_map = structure.result()
    maps = runner.run("defects", map_evidence, ssim_map, cue, frame.region)
    px_per_mm = (golden.card.px_per_mm(spec.chart.width_mm)
                 if golden.card is not None and spec.chart.width_mm else None)
    likelihood, regions = runner.run(
        "defects", defect_regions, maps, cue, spec, s, roi_area=frame.region.sum(),
        px_per_mm=px_per_mm,
        model_probability=None if probability is None else probability.result())
    return _Measurements(
        colour=colour,
        structure=StructureReport(ssim=round(float(ssim_value), 5), analysis_scale=s),
        defects=DefectsReport(
            score=round(defect_model.image_score(likelihood), 4),
            source=DEFECT_SOURCE if use_defect_model else "ssim+delta_e", regions=regions),
        likelihood=likelihood,
    )


def _views(golden: PreparedGolden, unit: PreparedUnit, frame: AnalysisFrame, plan: ColourPlan
           ) -> tuple[AnalysisViews, AnalysisViews]:
    """The golden's and the aligned unit's views, calibrated when the plan says so."""
    if plan.calibrated:
        return golden.calibrated, calibrated_views(frame.aligned, unit.calibration.correction)
    if golden.calibration.greyscale or unit.calibration.greyscale:
        # One photo has no colour: both are compared as grey, so the other's colours do not
        # show as a colour defect all over the product.
        return (raw_views(_as_grey(golden.analysis_rgb)) if not golden.calibration.greyscale
                else golden.raw), raw_views(_as_grey(frame.aligned))
    return golden.raw, raw_views(frame.aligned)


def _as_grey(rgb: np.ndarray) -> np.ndarray:
    return np.repeat(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)


def _dimensions(golden: PreparedGolden, unit: PreparedUnit, frame: AnalysisFrame,
                registration: register.Registration, spec: Spec):
    """Dimensions when the spec gives the card's width and both photos show the card."""
    if not (spec.chart.width_mm and golden.card is not None
            and unit.calibration.card is not None and frame.roi_box is not None):
        return None
    return dimensions(frame.roi_box, registration.homography, golden.card,
                      unit.calibration.card, spec.chart.width_mm)


def _picture_sources(golden: PreparedGolden, unit: PreparedUnit,
                     registration: register.Registration) -> render.PictureSources:
    return render.PictureSources(
        golden=golden.image, golden_scale=golden.image_scale,
        golden_analysis=golden.analysis_rgb, analysis_scale=golden.analysis_scale,
        unit=unit.image, unit_scale=unit.image.shape[1] / unit.photo_size[0],
        homography=registration.homography if registration.ok else None)


def _inconclusive(sources: render.PictureSources, header: dict, runner: StageRunner,
                  reason: str, *, render_images: bool) -> Comparison:
    """Nothing (more) could be measured: an inconclusive report and a dimmed golden."""
    report = Report(
        verdict="inconclusive", score=0.0, reasons=[reason], roi=None,
        color=unmeasured_colour(None), structure=StructureReport(ssim=None),
        defects=DefectsReport(score=0.0, source="ssim+delta_e", regions=[]),
        timings_ms=runner.timings_ms, **header,
    )
    pictures = render.draw_pictures(sources, [], None, at="photo", with_aligned=render_images)
    return Comparison(report=report, defect_map=pictures.defect_map, overlay=pictures.overlay,
                      aligned_unit=pictures.aligned_unit, sources=sources)


def _versions(*, with_model: bool) -> dict[str, str]:
    versions = dict(_library_versions())
    if with_model:
        versions["model"] = defect_model.model_version()
    return versions


@functools.cache
def _library_versions() -> dict[str, str]:
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
