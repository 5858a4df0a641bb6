"""API schemas: what the HTTP API answers (the tables live apart, in service.db).

The report itself is :class:`vision.report.Report`, defined once with every field's meaning.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

from service.aql import MAX_LOT_SIZE
from vision.report import Report

__all__ = [
    "CompareResult",
    "GoldenList",
    "GoldenPublic",
    "ImagePublic",
    "InspectionList",
    "InspectionPublic",
    "InspectionSummary",
    "LotCreate",
    "LotList",
    "LotPublic",
    "LotSummary",
]


class ImagePublic(BaseModel):
    position: int = Field(description="0 for the primary view, then in upload order.")
    sha256: str = Field(description="SHA-256 of the uploaded bytes (hex); names the stored file.")
    width: int = Field(description="Width in pixels, EXIF orientation applied.")
    height: int = Field(description="Height in pixels, EXIF orientation applied.")
    format: str = Field(description="Format recognised from the bytes: jpeg, png, webp, ...")
    size_bytes: int
    filename: str | None = Field(None, description="File name the client sent, if any.")


class GoldenPublic(BaseModel):
    id: str
    sku: str
    version: int = Field(description="1 for the first seal of a SKU, +1 for every re-seal.")
    name: str
    spec: dict = Field(description="The spec sheet inspections are judged against (defaults "
                       "filled in); see vision/spec.py.")
    sealed_at: dt.datetime
    images: list[ImagePublic]

    model_config = {"json_schema_extra": {"examples": [{
        "id": "0b4fc1a2-6a51-4d8e-9d43-1c9a3e5e2f10", "sku": "MUG-330-RED", "version": 2,
        "name": "Red mug, 330 ml, logo front", "spec": {
            "roi": [120, 80, 1600, 1100], "tolerances": {
                "delta_e00": 2.0, "ssim_min": 0.5, "max_defects": 0,
                "min_defect_area_px": 150}},
        "sealed_at": "2026-11-27T01:30:00Z",
        "images": [{"position": 0, "sha256": "9f86d081884c7d65...", "width": 4032,
                    "height": 3024, "format": "jpeg", "size_bytes": 3481220,
                    "filename": "golden.jpg"}]}]}}


class GoldenList(BaseModel):
    items: list[GoldenPublic]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on "
                                    "the last page.")


class LotSummary(BaseModel):
    """Where a lot stands, as shown with each of its inspections."""

    id: str
    reference: str | None = Field(description="The lot's own name, e.g. the factory's lot number.")
    verdict: Literal["accept", "reject", "pending"] = Field(
        description="'reject' as soon as a defect class reaches its rejection number Re; "
        "'accept' when every class's sample is complete within its acceptance number Ac.")
    inspected: int = Field(description="Units with a conclusive result that count.")
    to_inspect: int = Field(description="The sample: the largest of the classes' sample sizes.")
    unit_class: Literal["critical", "major", "minor"] | None = Field(
        None, description="The class this inspection's unit counts in; null if it passed or "
        "was inconclusive.")


class InspectionSummary(BaseModel):
    id: str
    golden_id: str
    golden_version: int
    sku: str
    verdict: Literal["pass", "fail", "inconclusive"]
    score: float
    unit_label: str | None
    lot_id: str | None
    created_at: dt.datetime


class InspectionPublic(InspectionSummary):
    images: list[ImagePublic] = Field(description="The unit photos; the first was compared.")
    lot: LotSummary | None = Field(
        None, description="The lot this inspection belongs to, when lot_id names a lot "
        "(POST /v1/lots); null otherwise.")
    overlay_url: str
    defect_map_url: str
    report: Report

    model_config = {"json_schema_extra": {"examples": [{
        "id": "5d1e1c8e-2a3b-4f57-8a1f-0c2b7d9e4a66",
        "golden_id": "0b4fc1a2-6a51-4d8e-9d43-1c9a3e5e2f10", "golden_version": 2,
        "sku": "MUG-330-RED", "verdict": "fail", "score": 12.5, "unit_label": "unit 0042",
        "lot_id": "LOT-2026-11-A", "created_at": "2026-11-27T01:31:00Z", "images": [],
        "overlay_url": "/v1/inspections/5d1e1c8e-2a3b-4f57-8a1f-0c2b7d9e4a66/overlay.png",
        "defect_map_url":
            "/v1/inspections/5d1e1c8e-2a3b-4f57-8a1f-0c2b7d9e4a66/defect_map.png",
        "report": {"verdict": "fail", "score": 12.5, "reasons": ["..."]}}]}}


class InspectionList(BaseModel):
    items: list[InspectionSummary]
    next_cursor: str | None


class CompareResult(BaseModel):
    report: Report


class LotCreate(BaseModel):
    """A lot to judge by AQL sampling (ISO 2859-1, single sampling, normal inspection)."""

    golden_id: str = Field(description="The sealed golden the lot's units are inspected against.")
    lot_size: int = Field(ge=2, le=MAX_LOT_SIZE, description="Units in the lot.")
    level: Literal["S-1", "S-2", "S-3", "S-4", "I", "II", "III"] = Field(
        "II", description="Inspection level; General Level II unless agreed otherwise.")
    aql: dict[Literal["critical", "major", "minor"], float] = Field(
        default_factory=dict,
        description="AQL per defect class, in percent defective. Defaults: critical 0 (none "
        "allowed: Ac 0 / Re 1), major 2.5, minor 4.0. Allowed: 0, 0.65, 1.0, 1.5, 2.5, 4.0, 6.5.")
    # No control characters: PostgreSQL refuses NUL in text, SQLite would store it.
    reference: str | None = Field(None, max_length=200, pattern=r"^[^\x00-\x1f]*$",
                                  description="Optional: the lot's own name or number.")

    model_config = {"extra": "forbid", "json_schema_extra": {"examples": [{
        "golden_id": "0b4fc1a2-6a51-4d8e-9d43-1c9a3e5e2f10", "lot_size": 3000, "level": "II",
        "aql": {"critical": 0, "major": 2.5, "minor": 4.0}, "reference": "PO-7781 lot 3"}]}}


class ClassPlanPublic(BaseModel):
    aql: float
    sample_size: int = Field(description="Units to inspect for this class (the lot size when "
                             "inspect_all).")
    ac: int = Field(description="Acceptance number: at most this many defective units.")
    re: int = Field(description="Rejection number: this many defective units reject the lot.")
    inspect_all: bool = Field(description="The plan's sample reached the lot size: 100%.")
    plan_letter: str = Field(description="Code letter of the plan used, after the table's "
                             "arrows.")


class LotPublic(BaseModel):
    id: str
    golden_id: str
    reference: str | None
    lot_size: int
    level: str
    code_letter: str = Field(description="Sample size code letter of ISO 2859-1 Table I.")
    plans: dict[str, ClassPlanPublic] = Field(description="Per defect class.")
    inspected: int = Field(description="Units with a conclusive result that count.")
    to_inspect: int = Field(description="The sample: the largest of the classes' sample sizes.")
    awaiting_rephotograph: int = Field(description="Units whose inspections were all "
                                       "inconclusive: they count once photographed again.")
    defective: dict[str, int] = Field(description="Defective units per class among those "
                                      "counted; a unit counts once, in its most serious class.")
    verdict: Literal["accept", "reject", "pending"]
    reasons: list[str] = Field(description="Sentences a person reads.")
    created_at: dt.datetime


class LotList(BaseModel):
    items: list[LotPublic]
    next_cursor: str | None
