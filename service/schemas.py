"""API schemas: what the HTTP API answers (the tables live apart, in service.db).

The report itself is :class:`vision.report.Report`, defined once with every field's meaning.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

from vision.report import Report

__all__ = [
    "CompareResult",
    "GoldenList",
    "GoldenPublic",
    "ImagePublic",
    "InspectionList",
    "InspectionPublic",
    "InspectionSummary",
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
