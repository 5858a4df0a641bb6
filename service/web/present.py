"""What the report page shows, worked out from a stored report (a dict of vision.report.Report).

Field meanings live in vision/report.py; this module only turns them into things a person on
the factory floor takes in at a glance: swatch colours, drift in words, crop boxes, sizes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np

__all__ = [
    "Crop",
    "colour_panel",
    "defect_cards",
    "format_time",
    "lab_to_hex",
    "percent_box",
]

# Below this a component of the colour difference is "about the same": roughly half of the
# just-noticeable difference (about 1 Delta-E00), so a reader is not sent looking for nothing.
_NEGLIGIBLE = 0.5
_MIN_CROP_FRACTION = 0.12  # of the picture's long side: a crop narrower than this is a blur


def lab_to_hex(lab) -> str:
    """CIELAB (D65, as the report's) -> the sRGB colour a browser shows, '#rrggbb' (clipped)."""
    from imaging.color import lab_to_srgb

    srgb = np.clip(lab_to_srgb(np.asarray(lab, np.float64)), 0.0, 1.0)
    r, g, b = (int(round(float(v) * 255)) for v in srgb)
    return f"#{r:02x}{g:02x}{b:02x}"


def _component(value: float | None, symbol: str, up: str, down: str, same: str) -> dict:
    if value is None:
        return {"symbol": symbol, "value": None, "words": "not measured"}
    if abs(value) < _NEGLIGIBLE:
        words = same
    else:
        words = ("slightly " if abs(value) < 1.5 else "") + (up if value > 0 else down)
    return {"symbol": symbol, "value": value, "words": words}


# Approximate CIELAB hue angles (degrees) of the colour names people use, in the direction a
# positive dH* turns (counter-clockwise in the a*b* plane).
_HUE_NAMES = ((40.0, "red"), (90.0, "yellow"), (160.0, "green"), (280.0, "blue"))


def _towards(hue: float, turn: float) -> str:
    """The named hue a turn of the hue angle `hue` (degrees) by the sign of `turn` heads to."""
    if turn > 0:
        ahead = [name for angle, name in _HUE_NAMES if angle > hue + 5]
        return ahead[0] if ahead else _HUE_NAMES[0][1]
    behind = [name for angle, name in _HUE_NAMES if angle < hue - 5]
    return behind[-1] if behind else _HUE_NAMES[-1][1]


def _hue_component(delta_H: float | None, golden_lab) -> dict:
    component = _component(delta_H, "dH*", "hue shifted", "hue shifted", "same hue")
    if delta_H is not None and abs(delta_H) >= _NEGLIGIBLE and golden_lab is not None:
        _, a, b = golden_lab
        if np.hypot(a, b) >= 3.0:  # a near-grey has no hue to name
            hue = float(np.degrees(np.arctan2(b, a)) % 360.0)
            component["words"] += f" towards {_towards(hue, delta_H)}"
    return component


def colour_panel(report: dict) -> dict:
    """Swatches, Delta-E00 against the tolerance, dL*/dC*/dH* in words, calibration status."""
    colour = report["color"]
    tolerance = report["spec"]["tolerances"]["delta_e00"]
    components = [
        _component(colour.get("delta_L"), "dL*", "lighter", "darker", "same lightness"),
        _component(colour.get("delta_C"), "dC*", "more saturated", "less saturated",
                   "same saturation"),
        _hue_component(colour.get("delta_H"), colour.get("golden_lab")),
    ]
    telling = [c["words"] for c in components
               if c["value"] is not None and abs(c["value"]) >= _NEGLIGIBLE]
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
        "components": components,
        "summary": ((f"The unit is {', '.join(telling)}." if telling
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
            extent = f"{w / px_per_mm:.1f} x {h / px_per_mm:.1f} mm"
        else:
            extent = f"{w} x {h} px"
        area = (f"{region['area_mm2']:.1f} mm²" if region.get("area_mm2") is not None
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
    x, y, w, h = box
    return (round(100 * x / gw, 3), round(100 * y / gh, 3), round(100 * w / gw, 3),
            round(100 * h / gh, 3))


def format_time(value: dt.datetime) -> str:
    """A UTC time for people: '2026-11-27 04:12 UTC' (the page's script shows local time)."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
