"""What the report page shows, worked out from a stored report (a dict of vision.report.Report).

Field meanings live in vision/report.py; this module only turns them into things a person on
the factory floor takes in at a glance: swatch colours, drift in words, crop boxes, sizes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np

from vision.numbers import format_number

__all__ = [
    "Crop",
    "colour_panel",
    "defect_cards",
    "format_time",
    "lab_to_hex",
    "not_measured",
    "percent_box",
    "region_words",
]

_REGION_WORDS = {
    "spec": "The region set for this golden (the blue box) is compared.",
    "product": "No region set: the product detected on the golden photo is compared, along "
               "its outline; the table around it and the colour card are left out.",
    "overlap": "No region set, and no product stands out from the background of the golden "
               "photo: the whole area both photos show is compared, except the colour card.",
    None: "Without a region, the product detected on the golden photo is compared, along its "
          "outline; the table around it and the colour card are left out. When no product "
          "stands out from the background (a close-up, a flat scan), the whole area both "
          "photos show is compared, except the colour card.",
}

_MIN_CROP_FRACTION = 0.12  # of the picture's long side: a crop narrower than this is a blur


def lab_to_hex(lab) -> str:
    """CIELAB (D65, as the report's) -> the sRGB colour a browser shows, '#rrggbb' (clipped)."""
    from imaging.color import lab_to_srgb

    srgb = np.clip(lab_to_srgb(np.asarray(lab, np.float64)), 0.0, 1.0)
    r, g, b = (int(round(float(v) * 255)) for v in srgb)
    return f"#{r:02x}{g:02x}{b:02x}"


def colour_panel(report: dict) -> dict:
    """Swatches, Delta-E00 against the tolerance, dL*/dC*/dH* in words, calibration status."""
    colour = report["color"]
    tolerance = report["spec"]["tolerances"]["delta_e00"]
    # The one wording of drift, the verdict's reasons' too.
    from vision.judge import drift_components, drift_in_words

    components = drift_components(colour.get("delta_L"), colour.get("delta_C"),
                                  colour.get("delta_H"), colour.get("golden_lab"))
    words = drift_in_words(components)
    delta_e00 = colour.get("delta_e00")
    calibration = report.get("calibration") or {}
    sides = []
    for name in ("golden", "unit"):
        side = calibration.get(name) or {}
        sides.append({
            "name": name, "found": side.get("chart_found", False),
            "applied": side.get("applied", False), "note": side.get("note"),
            "residual_mean": side.get("residual_delta_e00_mean"),
            "residual_max": side.get("residual_delta_e00_max"),
        })
    return {
        "measured": delta_e00 is not None,
        "delta_e00": delta_e00,
        "tolerance": tolerance,
        "within": delta_e00 is not None and delta_e00 <= tolerance,
        "golden_hex": lab_to_hex(colour["golden_lab"]) if colour.get("golden_lab") else None,
        "unit_hex": lab_to_hex(colour["unit_lab"]) if colour.get("unit_lab") else None,
        "golden_lab": colour.get("golden_lab"),
        "unit_lab": colour.get("unit_lab"),
        "components": [c._asdict() for c in components],
        "summary": ((f"The unit is {words}." if words
                     else "No visible colour difference.") if delta_e00 is not None else None),
        "calibrated": colour.get("calibrated", False),
        "note": colour.get("note"),
        "sides": sides,
    }


@dataclasses.dataclass(frozen=True)
class Crop:
    """A zoomed view of part of a picture, as percentages the page's CSS applies to an <img>
    inside a box of the crop's aspect ratio (so the browser reuses the picture it loaded)."""

    aspect: float  # width / height of the crop
    width_pct: float  # the whole picture's width, in % of the crop box
    left_pct: float  # picture offset, % of the box width (negative)
    top_pct: float  # picture offset, % of the box height (negative)
    zoom: float  # how much larger than in the whole picture
    box: tuple[float, float, float, float]  # the defect's box inside the crop, % (x, y, w, h)


def _crop(bbox, size: tuple[int, int]) -> Crop:
    gw, gh = size
    x, y, w, h = bbox
    side = max(2.5 * max(w, h), _MIN_CROP_FRACTION * max(gw, gh))
    cw, ch = min(side, gw), min(side, gh)
    cx0 = min(max(0.0, x + w / 2 - cw / 2), gw - cw)
    cy0 = min(max(0.0, y + h / 2 - ch / 2), gh - ch)
    return Crop(
        aspect=round(cw / ch, 4), width_pct=round(100 * gw / cw, 3),
        left_pct=round(-100 * cx0 / cw, 3), top_pct=round(-100 * cy0 / ch, 3),
        zoom=round(gw / cw, 1),
        box=(round(100 * (x - cx0) / cw, 2), round(100 * (y - cy0) / ch, 2),
             round(100 * w / cw, 2), round(100 * h / ch, 2)),
    )


def defect_cards(report: dict) -> list[dict]:
    """One card per defect region, in the report's order (the overlay's numbers)."""
    size = tuple(report["golden_size"])
    px_per_mm = ((report.get("calibration") or {}).get("golden") or {}).get("px_per_mm")
    cards = []
    for number, region in enumerate(report["defects"]["regions"], start=1):
        x, y, w, h = region["bbox"]
        if px_per_mm:
            extent = (f"{format_number(w / px_per_mm, 'extent_mm')} x "
                      f"{format_number(h / px_per_mm, 'extent_mm')} mm")
        else:
            extent = f"{w} x {h} px"
        area = (f"{format_number(region['area_mm2'], 'area_mm2')} mm²"
                if region.get("area_mm2") is not None
                else f"{region['area_px']:,} px")
        cards.append({"number": number, "severity": region["severity"], "kind": region["kind"],
                      "score": region["score"], "extent": extent, "area": area,
                      "crop": _crop(region["bbox"], size)})
    return cards


def percent_box(box, size: tuple[int, int]) -> tuple[float, float, float, float] | None:
    """A golden-pixel box as percentages of the picture (for an outline drawn with CSS)."""
    if box is None:
        return None
    gw, gh = size
    # Clipped to the picture, as the comparison clips it (a stored golden's ROI may reach
    # far beyond: the outline would not fit in a float).
    x, y = min(box[0], gw), min(box[1], gh)
    w, h = min(box[2], gw - x), min(box[3], gh - y)
    return (round(100 * x / gw, 3), round(100 * y / gh, 3), round(100 * w / gw, 3),
            round(100 * h / gh, 3))


def region_words(source: str | None) -> str:
    """What is compared, in words, for a report's ``roi_source`` ('spec', 'product',
    'overlap'); None: not known yet (no region set, the golden not looked at), both cases."""
    return _REGION_WORDS[source]


def not_measured(report: dict) -> list[str]:
    """What an inconclusive report could not measure, in words ('colour', 'size'); every
    part when nothing was compared (no region: the unit was not put onto the golden)."""
    if report.get("roi") is None:
        return ["alignment", "colour", "structure", "defects"]
    parts = []
    if report["color"].get("delta_e00") is None:
        parts.append("colour")
    if report["structure"].get("ssim") is None:
        parts.append("structure")
    tolerances = report["spec"]["tolerances"]
    if tolerances.get("dimension_mm") is not None and report.get("dimensions") is None:
        parts.append("size")
    return parts


def format_time(value: dt.datetime) -> str:
    """A UTC time for people: '2026-11-27 04:12 UTC' (the page's script shows local time)."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
