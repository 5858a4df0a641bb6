"""The spec sheet: what to compare and how far a unit may drift before it fails.

A spec is JSON or YAML::

    roi: [120, 80, 1600, 1100]        # x, y, w, h in golden pixels; default: the product
    tolerances:
      delta_e00: 2.0                  # CIEDE2000 between the ROI colours of golden and unit
      ssim_min: 0.5                   # structural similarity floor over the ROI
      max_defects: 0                  # defect regions allowed
      min_defect_area_px: 150         # smaller regions (golden pixels) are ignored; see the field
      dimension_mm: 2.0               # largest change of the ROI's width or height, mm
    chart:
      type: colorchecker-classic      # the colour card in the photos (calibration.charts)
      width_mm: 279.4                 # the card's physical width: turns pixels into mm
      required: false                 # true: no card in the photos makes colour inconclusive
    severity:                         # how serious a failed unit is, for AQL lots
      delta_e00: {major: 4.0, critical: 8.0}   # drift beyond the tolerance: minor below 4
      dimension_mm: {major: 0, critical: 5.0}  # default major from 0: any size failure
      structure: major                # the class of a unit failing the SSIM floor
      defect_area_mm2: {major: 4, critical: 50}  # default: the region's share of the area

Unknown keys are refused, so that a typo ("delta_e" for "delta_e00") cannot silently fall back
to a default tolerance.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

__all__ = [
    "ChartSpec",
    "ClassLimits",
    "DefectClass",
    "SeverityRules",
    "Spec",
    "SpecError",
    "Tolerances",
    "INT_MAX",
    "load_spec",
    "parse_spec",
    "stored_spec",
]

# Defect classes of ISO 2859-1 inspection, most serious first.
DefectClass = Literal["critical", "major", "minor"]

INT_MAX = 2**31 - 1
"""The largest whole number a spec takes (OpenCV's int): beyond any photo's side, area or
region count. A larger ROI once overflowed the float maths of every inspection."""


class SpecError(ValueError):
    """A spec sheet that cannot be used; the message says which field and how to fix it."""


class Tolerances(BaseModel):
    """Limits a unit must stay within to pass."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    delta_e00: float = Field(
        2.0, gt=0, le=100,
        description="Largest CIEDE2000 colour difference between the ROI colour of golden and "
        "unit (2.0 is a common commercial tolerance; about 1 is a just-noticeable difference).",
    )
    ssim_min: float = Field(
        0.5, ge=-1, le=1,
        description="Lowest mean SSIM of the registered luminance over the ROI.",
    )
    max_defects: int = Field(
        0, ge=0, le=INT_MAX, description="Number of defect regions a unit may have and still pass.",
    )
    min_defect_area_px: int = Field(
        150, ge=0, le=INT_MAX,
        description="Defect regions smaller than this many golden pixels are not counted, "
        "except a conclusive blob of at least half of it: saturated evidence, compact "
        "(vision.measure.defects.conclusive_blob).",
    )
    dimension_mm: float | None = Field(
        None, gt=0,
        description="Largest change, in mm, of the ROI's width or height between golden and "
        "unit, measured on the card plane (needs chart.width_mm). Default: not judged.",
    )


class ChartSpec(BaseModel):
    """The colour card photographed beside the product."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    type: str = Field(
        "colorchecker-classic",
        description="Which chart: a key of calibration.charts.CHARTS.",
    )
    width_mm: float | None = Field(
        # The upper bound only keeps px/mm a representable number (1e300 made areas infinite).
        None, gt=0, le=10_000,
        description="The card's physical width in mm (279.4 for a full-size ColorChecker "
        "Classic). No default is guessed: cards are sold in several sizes with the same "
        "layout. With it the report gives px/mm and dimensions.",
    )
    required: bool = Field(
        False,
        description="When true, photos without a card make the colour verdict inconclusive "
        "instead of being compared uncalibrated.",
    )

    @field_validator("type")
    @classmethod
    def _known_chart(cls, value: str) -> str:
        from calibration.charts import CHARTS

        if value not in CHARTS:
            raise ValueError(f"unknown chart {value!r}; use one of {sorted(CHARTS)}")
        return value


class ClassLimits(BaseModel):
    """Where a measured value that fails its tolerance turns from minor to major to critical.

    The class is the most serious one whose limit the value reaches; below every limit set it
    is minor. A limit of 0 makes every failure at least that class; null never reaches it.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    major: float | None = Field(0.0, ge=0, description="From this value on: major.")
    critical: float | None = Field(None, ge=0, description="From this value on: critical.")

    @model_validator(mode="after")
    def _ordered(self) -> ClassLimits:
        if self.major is not None and self.critical is not None and self.critical < self.major:
            raise ValueError(f"the critical limit ({self.critical:g}) must not be below the "
                             f"major limit ({self.major:g})")
        return self

    def classify(self, value: float) -> DefectClass:
        if self.critical is not None and value >= self.critical:
            return "critical"
        if self.major is not None and value >= self.major:
            return "major"
        return "minor"


class SeverityRules(BaseModel):
    """How serious a failed unit is: the class it counts in when a lot is judged by AQL.

    A failed unit counts once, in the class of its most serious failure (ISO 2859-1). The
    defaults make every failure major, except defect regions, which keep the report's own
    severity (their share of the compared area), and pass nothing as critical that the spec
    does not name.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    delta_e00: ClassLimits = Field(
        default_factory=ClassLimits,
        description="Class of a colour failure by its Delta-E00 (default: major).",
    )
    dimension_mm: ClassLimits = Field(
        default_factory=ClassLimits,
        description="Class of a size failure by the larger change of width or height, mm "
        "(default: major).",
    )
    structure: DefectClass = Field(
        "major", description="Class of a failure of the SSIM floor.",
    )
    defect_area_mm2: ClassLimits | None = Field(
        None,
        description="Class of a defect region by its area in mm^2 (needs chart.width_mm). "
        "Default: the region's severity in the report (critical above 1% of the compared "
        "area, major above 0.1%, else minor).",
    )


class Spec(BaseModel):
    """A spec sheet; every field has a default, so ``Spec()`` is a usable spec."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    roi: tuple[int, int, int, int] | None = Field(
        None,
        description="Region of interest [x, y, w, h] in golden pixels. Default: the product "
        "on the golden photo (the largest object on the table, as a convex outline), or the "
        "whole overlap when no product stands out from a table; minus the colour card.",
    )
    tolerances: Tolerances = Field(default_factory=Tolerances)
    chart: ChartSpec = Field(default_factory=ChartSpec)
    severity: SeverityRules = Field(default_factory=SeverityRules)

    @model_validator(mode="after")
    def _dimensions_need_scale(self) -> Spec:
        if self.tolerances.dimension_mm is not None and self.chart.width_mm is None:
            raise ValueError("tolerances.dimension_mm needs chart.width_mm (the card's width "
                             "in mm), which turns pixels into millimetres")
        if self.severity.defect_area_mm2 is not None and self.chart.width_mm is None:
            raise ValueError("severity.defect_area_mm2 needs chart.width_mm (the card's width "
                             "in mm), which turns pixels into millimetres")
        return self

    @field_validator("roi")
    @classmethod
    def _positive_size(cls, roi):
        if roi is not None:
            x, y, w, h = roi
            if w <= 0 or h <= 0:
                raise ValueError(f"roi width and height must be positive, got w={w}, h={h}")
            if x < 0 or y < 0:
                raise ValueError(f"roi must start inside the image, got x={x}, y={y}")
            if max(roi) > INT_MAX:
                raise ValueError(f"roi numbers must be at most {INT_MAX} (golden pixels); "
                                 "give the region inside the golden photo")
        return roi


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    # A key is the client's text: repr() keeps a newline in it from breaking the one-line
    # message (and from forging log lines).
    where = ".".join(str(part) if str(part).isprintable() else repr(part)
                     for part in first["loc"]) or "spec"
    return f"{where}: {first['msg']}"


def parse_spec(data: dict | str | bytes | None) -> Spec:
    """Build a :class:`Spec` from a mapping or JSON/YAML text; raise :class:`SpecError`."""
    if data is None:
        return Spec()
    if isinstance(data, bytes):
        data = data.decode("utf-8", errors="replace")
    if isinstance(data, str):
        try:
            # YAML is a superset of JSON, but JSON's error messages are clearer for JSON input.
            is_json = data.lstrip().startswith(("{", "["))
            data = json.loads(data) if is_json else yaml.safe_load(data)
        except (json.JSONDecodeError, yaml.YAMLError) as exc:
            detail = str(exc).replace("\n", " ")
            raise SpecError(f"spec is neither valid JSON nor valid YAML ({detail})") from None
        except RecursionError:
            # Both parsers recurse per nesting level: "[[[[..." would otherwise be a crash.
            raise SpecError("spec is nested too deeply to be a spec sheet; a spec has at "
                            "most three levels (severity.delta_e00.major)") from None
        except ValueError as exc:
            # Python reads at most 4300 digits into an int (CVE-2020-10735) and both parsers
            # raise a bare ValueError past that; YAML also for a date that is none (2026-13-45).
            if "digits" in str(exc):
                raise SpecError("spec has a number with thousands of digits; no tolerance or "
                                f"region needs more than {len(str(INT_MAX))}") from None
            raise SpecError(f"spec has a value that cannot be read ({exc}); write numbers "
                            "as numbers and leave out what is not a spec field") from None
        if data is None:
            return Spec()
    if not isinstance(data, dict):
        raise SpecError(f"spec must be a mapping (JSON object), got {type(data).__name__}")
    try:
        return Spec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(f"invalid spec: {_describe(exc)}") from None


def stored_spec(data: dict) -> Spec:
    """A spec as it was stored with a sealed golden (``Spec.model_dump``).

    Goldens sealed before :data:`INT_MAX` bounded the whole numbers may hold larger ones;
    each is read as INT_MAX, which judges the same: an ROI beyond the photo is clipped to the
    photo either way, and no photo has that many regions or pixels.
    """
    return parse_spec(_clamped(data))


def _clamped(value):
    if isinstance(value, dict):
        return {key: _clamped(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_clamped(item) for item in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return max(-INT_MAX, min(INT_MAX, value))
    return value


def load_spec(path: str | Path) -> Spec:
    """Read a spec sheet from a JSON or YAML file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{path}: spec file not found") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: cannot read the spec file ({exc.__class__.__name__})") from None
    try:
        return parse_spec(text)
    except SpecError as exc:
        raise SpecError(f"{path}: {exc}") from None
