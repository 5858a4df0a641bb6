"""Helpers shared by the route modules: cursors, image lists, multipart OpenAPI bodies."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from fastapi import HTTPException, Path

from service.schemas import ImagePublic

# The photo's position in its upload. Bounded by the database's 32-bit integer column: a larger
# number cannot be looked up at all (SQLite raised OverflowError, a 500).
Position = Annotated[int, Path(ge=0, le=2**31 - 1,
                               description="0 for the primary view, then in upload order.")]

_IMAGE_COLUMNS = ("position", "sha256", "width", "height", "format", "size_bytes", "filename")


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"seq:{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    """The row position a cursor stands for; 400 for anything this API did not hand out."""
    if cursor is None:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, value = text.partition(":")
        if kind == "seq" and value.isdigit():
            return int(value)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise HTTPException(400, "cursor is not one this API returned; pass next_cursor from the "
                        "previous page unchanged, or leave it out to start at the newest")


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


def optional_text(form, name: str, max_length: int = 200) -> str | None:
    value = form.text(name)
    if value is None or value.strip() == "":
        return None
    value = value.strip()
    if "\x00" in value:  # PostgreSQL cannot store it; refused before any file is written
        raise HTTPException(422, f"{name} contains a NUL character; send plain text")
    if len(value) > max_length:
        raise HTTPException(422, f"{name} is {len(value)} characters long; keep it to "
                            f"{max_length}")
    return value


def required_text(form, name: str, hint: str, max_length: int = 200) -> str:
    value = optional_text(form, name, max_length)
    if value is None:
        raise HTTPException(422, f"{name} is missing; {hint}")
    return value


def required_photos(form, name: str, hint: str) -> list:
    uploads = form.files.get(name) or []
    if not uploads:
        raise HTTPException(422, f"{name} is missing: no photo was uploaded; {hint}")
    return uploads
