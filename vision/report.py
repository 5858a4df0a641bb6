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
    "DimensionsReport",
    "DefectsReport",
    "RegistrationReport",
    "Report",
    "StructureReport",
    "Verdict",
]

SCHEMA_VERSION = "1.8"  # 1.1: calibration results, dimensions, area_mm2; 1.2: defect_class;
# 1.3: the defect model joins the maps (defects.source, kind "model", versions.model);
# 1.4: roi_source; color.uncertainty_e00 (and colour inconclusive within it of the tolerance);
# 1.5: tone curve "per-channel", models "diagonal" and "affine", patches excluded for "glare"
# or "shadow"; colour compared as photographed where the card says calibrating would not help,
# and color.uncertainty_e00 from the card's patches near the product's colour
# 1.6: registration.method "dense"
# 1.7: calibration.{golden,unit}.light_spread, and the cards' uneven light said in words;
# root-polynomial-2's cross terms under a ridge; registration.method "shape"
# 1.8: color.reflection_share and color.delta_e00_without_reflection (and colour inconclusive
# when a reflection explains a drift beyond the tolerance)

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
    method: Literal["features", "templates", "dense", "identity", "outline", "shape",
                    "none"] = Field(
        description="'features': SIFT + MAGSAC++, polished by template matching; 'templates': "
        "photos from a fixture, off by a small shift (phase correlation, then template "
        "matching), used when features are too repetitive to match; 'dense': the whole images, "
        "turned and zoomed by a Fourier-Mellin estimate, fitted by ECC and accepted only if "
        "the photos correlate tile by tile, used when features mismatch (repetitive boards "
        "turned or zoomed); 'identity': the photos "
        "were already aligned and the identity fitted at least as well as any other alignment; "
        "'outline': fallback for products with too little texture, from the product's "
        "silhouette on the table refined by ECC and accepted only if the insides correlate; "
        "'shape': the last fallback, for a rounded or textureless product (moulded parts, "
        "brushed steel): the whole silhouette's moments and ECC fit, then ECC on the edges "
        "inside it, accepted only if the silhouettes coincide, the inner edges correlate tile "
        "by tile and no other way round fits nearly as well.",
    )
    coverage: float = Field(
        description="Fraction (0-1) of the golden's detailed area where inliers were found; "
        "1 for the 'identity', 'templates', 'dense' and 'outline' methods, which do not measure it."
    )
    reason: str | None = Field(None, description="Why registration failed, when not ok.")


class CalibrationSide(BaseModel):
    """One photo's colour card and the colour correction fitted on it."""

    applied: bool = Field(
        description="True when a colour card was found and the photo's colours were corrected "
        "(the colour and structure stages then work on calibrated colours)."
    )
    chart_found: bool = Field(False, description="True when a colour card was found.")
    note: str | None = Field(None, description="Why calibration was not applied, in words, or "
                             "a warning about it.")
    corners: list[tuple[float, float]] | None = Field(
        None,
        description="Outer corners of the card's patch grid in this photo's pixels (full "
        "resolution, oriented), in the card's own order: top-left (the 'dark skin' patch), "
        "top-right, bottom-right, bottom-left. The card is kept out of registration and out "
        "of the default region of interest.",
    )
    confidence: float | None = Field(
        None, description="0-1 confidence of the card detection (how well the found grid's "
        "colours and edges match the chart model).",
    )
    method: str | None = Field(
        None, description="How the card was located: 'mcc' (OpenCV's detector) or 'grid' (the "
        "fallback that looks for a grid of flat patches); both are then oriented by colour and "
        "refined by ECC.",
    )
    chart: str | None = Field(None, description="The chart's name and edition.")
    tone_curve: str | None = Field(
        None, description="Linearisation: 'srgb' (the sRGB decoding), 'gamma' (one power "
        "curve fitted on the neutral patches) or 'per-channel' (a gain and a power per "
        "channel, fitted on the neutral patches).",
    )
    gamma: float | None = Field(None, description="The fitted exponent, for 'gamma'.")
    model: str | None = Field(
        None, description="'diagonal' (per-channel gains: white balance only), 'matrix' (3x3), "
        "'affine' (3x3 and an offset) or 'root-polynomial-2' (Finlayson et al. 2015; its cross "
        "terms held back by a ridge since schema 1.7), with the "
        "tone curve chosen by the leave-one-patch-out error on the photo itself: the one with "
        "the fewest parameters that no richer candidate clearly beats.",
    )
    residual_delta_e00_mean: float | None = Field(
        None, description="Mean CIEDE2000 between the corrected patches and the chart's "
        "reference colours (patches left out of the fit excluded).",
    )
    residual_delta_e00_max: float | None = Field(None, description="Largest such residual.")
    residual_delta_e00: dict[str, float | None] | None = Field(
        None, description="Residual CIEDE2000 per patch by name; null for patches left out.",
    )
    excluded_patches: dict[str, str] | None = Field(
        None, description="Patches left out of the fit, by name, with the reason ('clipped', "
        "'black', 'glare', 'shadow', 'non-uniform', 'outside the photo').",
    )
    loo_delta_e00_mean: float | None = Field(
        None, description="Leave-one-patch-out mean CIEDE2000 of the chosen tone curve and "
        "model, each patch predicted by the fit without it: the calibration's own accuracy on "
        "a colour it was not fitted on.",
    )
    light_spread: float | None = Field(
        None, description="How unevenly the card is lit (schema 1.7): the standard deviation "
        "over its patches of the natural log of the light level, from a plane of light fitted "
        "with the colour model (0.04: the light varies by about +/- 4 %); 0 when no plane was "
        "fitted. From 0.02 the note and the colour's note say so: the product beside the card "
        "is lit neither as the card's centre nor as any one patch, and color.uncertainty_e00 "
        "counts that.",
    )
    px_per_mm: float | None = Field(
        None, description="Photo pixels per millimetre at the card's centre (needs the spec's "
        "chart.width_mm).",
    )
    card_corners: list[tuple[float, float]] | None = Field(
        None, description="Same as 'corners' (the 1.0 name, kept for existing readers).",
    )
    card_confidence: float | None = Field(
        None, description="Same as 'confidence' (the 1.0 name, kept for existing readers).",
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
    calibrated: bool = Field(
        False, description="True when both photos were colour-corrected with their cards, so "
        "the CIELAB values are the objects' colours; false: the colours as photographed.",
    )
    note: str | None = Field(
        None, description="Why the colour was not measured (then the values are null), how "
        "it was measured when not calibrated, whether a card's uneven light counts in "
        "uncertainty_e00 (schema 1.7), and which photo's reflection lies over the region "
        "(schema 1.8, see delta_e00_without_reflection).",
    )
    uncertainty_e00: float | None = Field(
        None, description="Uncertainty of delta_e00 when both photos show the card: how far "
        "apart the two photos put the card's own (unchanged) patches, weighted towards those "
        "near the product's colour (schema 1.5). Calibrated: each patch as its photo's "
        "calibration predicts it without it (leave-one-patch-out), with the sampling noise in "
        "quadrature; compared as photographed (the card said calibrating would not help, see "
        "note): the patches as photographed. The colour passes only when delta_e00 + "
        "uncertainty_e00 is within the tolerance and fails only when delta_e00 - "
        "uncertainty_e00 exceeds it; in between it is inconclusive. Null without cards (no "
        "estimate).",
    )
    reflection_share: float | None = Field(
        None, description="Share (0-1) of the region whose colour is measured over which one "
        "photo adds grey light that the other does not: a lamp's reflection or a glossy "
        "sheen that is not clipped, at least a tenth of the golden's typical luminance "
        "(schema 1.8). Null when the colour is not measured.",
    )
    delta_e00_without_reflection: float | None = Field(
        None, description="CIEDE2000 between the golden's colour and the unit's once the grey "
        "light that the reflection adds is taken off (one level, equal in the three linear "
        "channels, of the reflection's sign and size); null unless a reflection lies over at "
        "least 30% of the region (reflection_share). When delta_e00 exceeds the tolerance and "
        "this does not, the difference is what the reflection makes: the colour is not "
        "measurable under it and the colour part is inconclusive, not a drift (schema 1.8).",
    )


class DimensionsReport(BaseModel):
    """The product's size in the unit photo against the golden, on the card's plane."""

    scale_ratio: float = Field(
        description="Unit size / golden size of the compared region (square root of the area "
        "ratio): 1.01 means the unit is 1 % larger.",
    )
    delta_width_mm: float = Field(description="Unit minus golden width of the region, mm.")
    delta_height_mm: float = Field(description="Unit minus golden height of the region, mm.")
    golden_width_mm: float = Field(description="The region's width on the golden, mm.")
    golden_height_mm: float = Field(description="The region's height on the golden, mm.")
    unit_width_mm: float = Field(description="The same region's width on the unit, mm.")
    unit_height_mm: float = Field(description="The same region's height on the unit, mm.")


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
    area_mm2: float | None = Field(
        None, description="Area in mm^2 at the golden card's scale (needs chart.width_mm).",
    )
    kind: Literal["structure", "colour", "model"] = Field(
        description="What flagged the region most strongly: a local change of structure "
        "(SSIM), a local colour difference beyond the global drift, or the ONNX defect model "
        "(schema 1.3; its probability exceeded both maps' likelihood).",
    )


class DefectsReport(BaseModel):
    score: float = Field(
        description="Image-level defect score, 0-1: the peak, after a 3x3 mean, of the defect "
        "likelihood map (the larger of the defect model's probability and the SSIM/colour maps' "
        "likelihood) over the compared region. Regions are seeded at 0.5.",
    )
    source: str = Field(
        description="What produced the regions: 'ssim+delta_e+model' (the SSIM and colour maps "
        "and the ONNX defect model named in versions.model) or 'ssim+delta_e' (the maps only).",
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
        "exactly at a limit, below 50 fails. For an 'inconclusive' report the score is 0 and "
        "is not a measurement: something the verdict needs could not be measured, and "
        "`reasons` says what; leave such reports out of averages and trends.",
    )
    reasons: list[str] = Field(description="Sentences a person reads, most serious first.")
    defect_class: Severity | None = Field(
        None, description="For a failed unit: the class it counts in when a lot is judged by "
        "AQL, the most serious of its failures under the spec's severity rules (see "
        "vision/severity.py); null when the unit passed or was inconclusive.",
    )
    golden_size: tuple[int, int] = Field(description="Golden photo [width, height], oriented.")
    unit_size: tuple[int, int] = Field(description="Unit photo [width, height], oriented.")
    roi: tuple[int, int, int, int] | None = Field(
        description="The region compared, [x, y, w, h] golden pixels (the spec's ROI clipped "
        "to the overlap); null when registration failed.",
    )
    roi_source: Literal["spec", "product", "overlap"] | None = Field(
        None,
        description="Where the compared region came from: 'spec' (the spec's ROI), 'product' "
        "(no ROI: the product detected on the golden photo, standing on a distinct "
        "background), or 'overlap' (no ROI and no such product: the whole overlap of the two "
        "photos, minus the colour card); null when nothing was compared.",
    )
    registration: RegistrationReport
    calibration: CalibrationReport
    color: ColorReport
    structure: StructureReport
    defects: DefectsReport
    dimensions: DimensionsReport | None = Field(
        None, description="Size change of the compared region, on the card plane; null "
        "without chart.width_mm in the spec or a card in each photo.",
    )
    spec: Spec = Field(description="The spec the verdict was judged against, defaults filled in.")
    timings_ms: dict[str, float] = Field(description="Wall time per pipeline stage, milliseconds.")
    versions: dict[str, str] = Field(description="Versions of sealcheck and what it relies on.")
