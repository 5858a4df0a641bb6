"""The spec sheet: what to compare and how far a unit may drift before it fails.

A spec is JSON or YAML::

    roi: [120, 80, 1600, 1100]        # x, y, w, h in golden pixels; default: overlap - card
    tolerances:
      delta_e00: 2.0                  # CIEDE2000 between the ROI colours of golden and unit
      ssim_min: 0.5                   # structural similarity floor over the ROI
      max_defects: 0                  # defect regions allowed
      min_defect_area_px: 150         # regions smaller than this (golden pixels) are ignored
      dimension_mm: 2.0               # largest change of the ROI's width or height, mm
    chart:
      type: colorchecker-classic      # the colour card in the photos (calibration.charts)
      width_mm: 279.4                 # the card's physical width: turns pixels into mm
      required: false                 # true: no card in the photos makes colour inconclusive

Unknown keys are refused, so that a typo ("delta_e" for "delta_e00") cannot silently fall back
to a default tolerance.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

__all__ = ["ChartSpec", "Spec", "SpecError", "Tolerances", "load_spec", "parse_spec"]


class SpecError(ValueError):
    """A spec sheet that cannot be used; the message says which field and how to fix it."""


class Tolerances(BaseModel):
    """Limits a unit must stay within to pass."""

    model_config = ConfigDict(extra="forbid")

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
        0, ge=0, description="Number of defect regions a unit may have and still pass.",
    )
    min_defect_area_px: int = Field(
        150, ge=0,
        description="Defect regions smaller than this many golden pixels are not counted.",
    )
    dimension_mm: float | None = Field(
        None, gt=0,
        description="Largest change, in mm, of the ROI's width or height between golden and "
        "unit, measured on the card plane (needs chart.width_mm). Default: not judged.",
    )


class ChartSpec(BaseModel):
    """The colour card photographed beside the product."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(
        "colorchecker-classic",
        description="Which chart: a key of calibration.charts.CHARTS.",
    )
    width_mm: float | None = Field(
        None, gt=0,
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


class Spec(BaseModel):
    """A spec sheet; every field has a default, so ``Spec()`` is a usable spec."""

    model_config = ConfigDict(extra="forbid")

    roi: tuple[int, int, int, int] | None = Field(
        None,
        description="Region of interest [x, y, w, h] in golden pixels. Default: the whole "
        "overlap of golden and registered unit, minus the colour card.",
    )
    tolerances: Tolerances = Field(default_factory=Tolerances)
    chart: ChartSpec = Field(default_factory=ChartSpec)

    @model_validator(mode="after")
    def _dimensions_need_scale(self) -> Spec:
        if self.tolerances.dimension_mm is not None and self.chart.width_mm is None:
            raise ValueError("tolerances.dimension_mm needs chart.width_mm (the card's width "
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
        return roi


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "spec"
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
        if data is None:
            return Spec()
    if not isinstance(data, dict):
        raise SpecError(f"spec must be a mapping (JSON object), got {type(data).__name__}")
    try:
        return Spec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(f"invalid spec: {_describe(exc)}") from None


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
