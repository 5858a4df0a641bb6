"""`sealcheck compare GOLDEN UNIT`: one comparison, its summary or JSON report, its pictures."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from service.cli.common import (
    VERDICT_EXIT,
    UsageError,
    comparison_settings,
    defect_model_configured,
)
from vision.numbers import format_number

__all__ = ["add_parser", "check_defect_model", "fast_exit", "run"]

# Set by a finished comparison: nothing is left that needs the interpreter's orderly shutdown
# (service.cli.run exits at once).
fast_exit = False


def add_parser(commands) -> None:
    """The ``compare`` command's arguments."""
    parser = commands.add_parser(
        "compare", help="compare a unit photo with the golden sample photo",
        description="Register UNIT onto GOLDEN, measure colour drift (CIEDE2000), structure "
        "(SSIM) and defect regions, and judge them against the spec. Exit code: 0 pass, "
        "1 fail, 2 bad input, 3 inconclusive.",
    )
    parser.add_argument("golden", metavar="GOLDEN", help="photo of the golden sample")
    parser.add_argument("unit", metavar="UNIT", help="photo of the production unit")
    parser.add_argument("--spec", metavar="FILE", help="spec sheet, JSON or YAML")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--out", metavar="DIR", help="write report.json, overlay.png, "
                        "defect_map.png and aligned_unit.png to DIR")


def run(args: argparse.Namespace) -> int:
    settings = comparison_settings()
    with defect_model_configured(settings):
        return _compare(args, settings)


def _card_words(side) -> str:
    """'card (mcc, confidence 0.97), corrected: residual Delta-E00 0.7' or 'no card'."""
    if not side.chart_found:
        return "no card"
    words = f"card ({side.method}, confidence {format_number(side.confidence, 'likelihood')})"
    if side.residual_delta_e00_mean is not None:
        words += (", fit residual Delta-E00 "
                  f"{format_number(side.residual_delta_e00_mean, 'delta_e')}")
    if side.px_per_mm is not None:
        words += f", {format_number(side.px_per_mm, 'px')} px/mm"
    return words + ("" if side.applied else ", not applied")


def _summary(report) -> str:
    from vision.judge import size_in_words

    # An inconclusive report's score (0) is no measurement: the reasons say what is missing.
    score = ("no score: not everything could be measured" if report.verdict == "inconclusive"
             else f"score: {format_number(report.score, 'score')}/100")
    lines = [f"verdict: {report.verdict.upper()}   {score}"
             + (f"   counts as: {report.defect_class}" if report.defect_class else "")]
    lines += [f"  - {reason}" for reason in report.reasons]
    reg = report.registration
    if reg.ok:
        rms = f", rms {format_number(reg.rms_px, 'px')} px" if reg.rms_px is not None else ""
        lines.append(f"registration: {reg.method}, {reg.inliers} inliers{rms}")
    lines.append("calibration: " + "; ".join(
        f"{name} {_card_words(side)}" for name, side in (("golden", report.calibration.golden),
                                                          ("unit", report.calibration.unit))))
    colour = report.color
    if colour.delta_e00 is not None:
        delta = {name: format_number(getattr(colour, name), "delta_e", signed=True)
                 for name in ("delta_L", "delta_C", "delta_H")}
        lines.append(
            f"colour: Delta-E00 {format_number(colour.delta_e00, 'delta_e')} "
            f"(dL* {delta['delta_L']}, dC* {delta['delta_C']}, dH* {delta['delta_H']}; "
            f"CMC(2:1) {format_number(colour.delta_e_cmc, 'delta_e')})"
        )
    if report.structure.ssim is not None:
        lines.append(f"structure: SSIM {format_number(report.structure.ssim, 'ssim')}")
    if report.dimensions is not None:
        lines.append(f"dimensions: {size_in_words(report.dimensions)}")
    lines.append(f"defects: {len(report.defects.regions)} region(s)")
    for number, region in enumerate(report.defects.regions[:10], start=1):
        x, y, w, h = region.bbox
        lines.append(f"  {number}. {region.severity} {region.kind} at x={x} y={y} {w}x{h} px, "
                     f"{region.area_px} px, score {format_number(region.score, 'likelihood')}")
    total = sum(report.timings_ms.values())
    lines.append(f"time: {total:.0f} ms")
    return "\n".join(lines)


def _write_png(path: Path, rgb) -> None:
    import cv2

    image = rgb[..., ::-1] if rgb.ndim == 3 else rgb
    if not cv2.imwrite(str(path), image):
        raise UsageError(f"{path}: could not write the file")


def _prepare_out_dir(out: Path) -> None:
    """Create --out before the comparison runs, so a bad path fails at once."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{out}: cannot create the output directory ({exc.strerror})") \
            from None
    if not os.access(out, os.W_OK):
        raise UsageError(f"{out}: the output directory is not writable")


def _write_outputs(out: Path, comparison) -> None:
    try:
        (out / "report.json").write_text(comparison.report.model_dump_json(indent=2) + "\n")
    except OSError as exc:
        raise UsageError(f"{out}: cannot write the output directory ({exc.strerror})") from None
    _write_png(out / "overlay.png", comparison.overlay)
    _write_png(out / "defect_map.png", comparison.defect_map)
    if comparison.aligned_unit is not None:
        _write_png(out / "aligned_unit.png", comparison.aligned_unit)
    else:  # a stale file from an earlier run would be mistaken for this run's alignment
        (out / "aligned_unit.png").unlink(missing_ok=True)


def _compare(args: argparse.Namespace, settings) -> int:
    import threading

    from service.runtime import tune_allocator
    from vision.warmup import warm_up

    tune_allocator()
    # One-time library set-up (OpenCV's Lab tables, the defect model's session) runs beside
    # the imports and decoding below instead of inside the comparison; see vision/warmup.py.
    warming = threading.Thread(target=warm_up, name="sealcheck-warm-up", daemon=True)
    warming.start()
    try:
        code = _compare_photos(args, settings)
    finally:
        warming.join()  # never leave it running in C while the interpreter shuts down
    global fast_exit
    fast_exit = True
    return code


def check_defect_model() -> None:
    """A missing or foreign model file (SEALCHECK_DEFECT_MODEL) is a usage error, in one line."""
    from vision import defect_model

    try:
        defect_model.model_version()
    except defect_model.DefectModelError as exc:
        raise UsageError(str(exc)) from None


def _compare_photos(args: argparse.Namespace, settings) -> int:
    from vision.compare import compare_side_by_side
    from vision.decode import ImageDecodeError
    from vision.load import load_pair
    from vision.spec import SpecError, load_spec

    max_pixels = settings.max_pixels
    if args.out:
        _prepare_out_dir(Path(args.out))
    try:
        spec = load_spec(args.spec) if args.spec else None
        # The report alone does not need every pixel of a 12 MP photo: JPEGs are decoded at a
        # reduced size through the DCT (positions stay in the photo's pixels). Pictures
        # (--out) are drawn at the photo's size, so they take the full decode.
        decoded = load_pair(args.golden, args.unit, for_report=not args.out,
                            max_pixels=max_pixels)
        photos = {"golden": decoded[0][0], "unit": decoded[1][0]}
        sizes = {"golden": decoded[0][1], "unit": decoded[1][1]}
    except (ImageDecodeError, SpecError) as exc:
        raise UsageError(str(exc)) from None
    check_defect_model()  # loaded meanwhile by the warm-up thread
    if spec is not None and spec.roi is not None:
        x, y, w, h = spec.roi
        gw, gh = sizes["golden"]
        if x >= gw or y >= gh:
            raise UsageError(f"{args.spec}: roi starts at ({x}, {y}), outside the golden photo "
                             f"({gw}x{gh}); give it in golden pixels")
    # The golden's preparation runs beside the unit's (card, features) in two threads.
    comparison = compare_side_by_side(photos["golden"], photos["unit"], spec,
                                      render_images=args.out is not None,
                                      golden_photo_size=sizes["golden"],
                                      unit_photo_size=sizes["unit"])
    if args.out:
        _write_outputs(Path(args.out), comparison)
    if args.json:
        print(comparison.report.model_dump_json(indent=2))
    else:
        print(_summary(comparison.report))
    return VERDICT_EXIT[comparison.report.verdict]
