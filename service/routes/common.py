"""What the route modules share: the image list of a record, OpenAPI bodies of multipart forms."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

from service.schemas import ImagePublic

# The photo's position in its upload. Bounded by the database's 32-bit integer column: a larger
# number cannot be looked up at all (SQLite raised OverflowError, a 500).
Position = Annotated[int, Path(ge=0, le=2**31 - 1,
                               description="0 for the primary view, then in upload order.")]

BUSY = "Busy (the admission budget is full): retry after the Retry-After seconds"

_IMAGE_COLUMNS = ("position", "sha256", "width", "height", "format", "size_bytes", "filename")


def images_public(rows) -> list[ImagePublic]:
    return [ImagePublic(**{c: getattr(row, c) for c in _IMAGE_COLUMNS})
            for row in sorted(rows, key=lambda r: r.position)]


def multipart_body(properties: dict, required: list[str]) -> dict:
    """An OpenAPI requestBody for a multipart form that the route parses itself (streaming)."""
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "properties": properties, "required": required}}}}}


def photos_property(description: str) -> dict:
    return {"type": "array", "items": {"type": "string", "format": "binary"},
            "description": description}


def text_field(description: str, example: str | None = None) -> dict:
    field = {"type": "string", "description": description}
    if example is not None:
        field["example"] = example
    return field
