"""The deviation report: the one place where each field's meaning is written.

Every consumer (CLI, HTTP API, batch results, web pages) serialises this model; nothing else
defines report fields. Coordinates are pixels of the full-resolution, EXIF-oriented golden photo
unless a field says otherwise. Bump :data:`SCHEMA_VERSION` on any change a reader could notice:
minor for added fields, major for changed meaning or removed fields.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from vision.spec import Spec

__all__ = [
    "SCHEMA_VERSION",
    "CalibrationReport",
    "CalibrationSide",
    "ColorReport",
    "ColorTiles",
    "DefectRegion",
    "DefectsReport",
    "RegistrationReport",
    "Report",
    "StructureReport",
    "Verdict",
]

SCHEMA_VERSION = "1.0"

Verdict = Literal["pass", "fail", "inconclusive"]
Severity = Literal["minor", "major", "critical"]


class RegistrationReport(BaseModel):
    ok: bool = Field(description="True when the unit photo was put onto the golden photo.")
    homography: list[list[float]] | None = Field(
        None,
        description="3x3 matrix mapping unit pixels to golden pixels (full-resolution, "
        "EXIF-oriented photos), normalised so that h33 = 1; null when not ok.",
    )
    inliers: int = Field(description="Feature matches consistent with the homography.")
    rms_px: float | None = Field(
        None, description="RMS reprojection error of the inliers (feature or template "
        "correspondences), golden pixels; null for the identity, for a pure shift found by "
        "phase correlation, and when not ok.",
    )
    method: Literal["features", "templates", "identity", "none"] = Field(
        description="'features': SIFT + MAGSAC++, polished by template matching; 'templates': "
        "photos from a fixture, off by a small shift (phase correlation, then template "
        "matching), used when features are too repetitive to match; 'identity': the photos "
        "were already aligned and the identity fitted at least as well as any other alignment.",
    )
    coverage: float = Field(
        description="Fraction (0-1) of the golden's detailed area where inliers were found; "
        "1 for the 'identity' and 'templates' methods, which do not measure it."
    )
    reason: str | None = Field(None, description="Why registration failed, when not ok.")


class CalibrationSide(BaseModel):
    applied: bool = Field(
        description="True when a colour card was found and the photo's colours were corrected."
    )
    note: str | None = Field(None, description="Why calibration was not applied, in words.")
    card_corners: list[tuple[float, float]] | None = Field(
        None,
        description="Corners of the colour card's patch area in this photo's pixels (full "
        "resolution, oriented); null when no card was found. The card is kept out of "
        "registration and out of the default region of interest.",
    )
    card_confidence: float | None = Field(
        None, description="0-1 confidence of the card detection; null when no card was found."
    )


class CalibrationReport(BaseModel):
    golden: CalibrationSide
    unit: CalibrationSide


class ColorTiles(BaseModel):
    tile_px: int = Field(description="Edge of a square tile, golden pixels.")
    origin: tuple[int, int] = Field(description="Golden pixel (x, y) of the first tile's corner.")
    delta_e00: list[list[float | None]] = Field(
        description="Rows of CIEDE2000 per tile (each tile's mean linear RGB converted once, as "
        "for the headline figure); null where the tile is mostly outside the compared region.",
    )


class ColorReport(BaseModel):
    delta_e00: float | None = Field(
        description="CIEDE2000 (kL = kC = kH = 1) between the ROI colour of golden and unit. "
        "Each ROI colour is read as a spectrophotometer reads its aperture: the linear RGB is "
        "averaged over the compared region first and converted to CIELAB once.",
    )
    delta_L: float | None = Field(
        description="Unit minus golden lightness, dL* (negative: darker)."
    )
    delta_C: float | None = Field(
        description="Unit minus golden chroma, dC*ab (negative: less saturated)."
    )
    delta_H: float | None = Field(
        description="Signed metric hue difference dH*ab = 2 sqrt(C1 C2) sin(dh / 2), unit minus "
        "golden (positive: hue angle rotated counter-clockwise in the a*b* plane).",
    )
    delta_e_cmc: float | None = Field(
        description="CMC(2:1) colour difference with the golden as the standard (textiles)."
    )
    golden_lab: tuple[float, float, float] | None = Field(description="Golden ROI colour, CIELAB.")
    unit_lab: tuple[float, float, float] | None = Field(description="Unit ROI colour, CIELAB.")
    white: str = Field(
        "D65",
        description="Reference white of the CIELAB values: CIE D65, 2-degree observer, as sRGB.",
    )
    tiles: ColorTiles | None = Field(None, description="Where the colour drifts: a tile map.")


class StructureReport(BaseModel):
    ssim: float | None = Field(
        description="Mean SSIM (Wang et al. 2004; Gaussian sigma 1.5, K1 0.01, K2 0.03) of the "
        "registered luminance over the compared region, at the analysis resolution.",
    )
    analysis_scale: float | None = Field(
        None, description="Analysis pixels per golden pixel at which SSIM and defects are measured."
    )


class DefectRegion(BaseModel):
    bbox: tuple[int, int, int, int] = Field(description="[x, y, w, h], golden pixels.")
    area_px: int = Field(description="Area of the region itself (not its box), golden pixels.")
    score: float = Field(description="Peak defect likelihood in the region, 0-1.")
    severity: Severity = Field(
        description="'critical': larger than 1% of the compared area; 'major': larger than "
        "0.1%; 'minor': smaller.",
    )
    kind: Literal["structure", "colour"] = Field(
        description="What flagged the region: a local change of structure (SSIM) or a local "
        "colour difference beyond the global drift.",
    )


class DefectsReport(BaseModel):
    score: float = Field(description="Largest region score, 0 when no region was found.")
    source: str = Field(
        description="What produced the regions: 'ssim+delta_e' (the map-based candidate "
        "finder) or the name and version of the defect model.",
    )
    regions: list[DefectRegion] = Field(default_factory=list)


class Report(BaseModel):
    schema_version: str = SCHEMA_VERSION
    verdict: Verdict = Field(
        description="'fail' when a tolerance of the spec is exceeded; 'inconclusive' when the "
        "pipeline could not measure (for example the unit could not be registered); otherwise "
        "'pass'.",
    )
    score: float = Field(
        description="Conformity 0-100. For each tolerance, r = measured / limit; score = 100 * "
        "max(0, 1 - max(r) / 2). So 100 is indistinguishable from the golden sample, 50 is "
        "exactly at a limit, below 50 fails. 0 when inconclusive.",
    )
    reasons: list[str] = Field(description="Sentences a person reads, most serious first.")
    golden_size: tuple[int, int] = Field(description="Golden photo [width, height], oriented.")
    unit_size: tuple[int, int] = Field(description="Unit photo [width, height], oriented.")
    roi: tuple[int, int, int, int] | None = Field(
        description="The region compared, [x, y, w, h] golden pixels (the spec's ROI clipped "
        "to the overlap); null when registration failed.",
    )
    registration: RegistrationReport
    calibration: CalibrationReport
    color: ColorReport
    structure: StructureReport
    defects: DefectsReport
    spec: Spec = Field(description="The spec the verdict was judged against, defaults filled in.")
    timings_ms: dict[str, float] = Field(description="Wall time per pipeline stage, milliseconds.")
    versions: dict[str, str] = Field(description="Versions of sealcheck and what it relies on.")
